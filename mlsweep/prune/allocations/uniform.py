"""`uniform`: every block at the target sparsity (the reference pruners' default)."""

from mlsweep.prune.allocation import ALLOCATIONS, AllocationSpec

SPEC = ALLOCATIONS.register("uniform", AllocationSpec(name="uniform", summary="every block at the target"))
