"""One module per pruner; each registers its PrunerSpec in mlsweep.prune.registry.PRUNERS."""
