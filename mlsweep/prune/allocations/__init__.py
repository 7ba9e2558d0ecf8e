"""One module per layerwise allocation; each registers its AllocationSpec in ALLOCATIONS."""
