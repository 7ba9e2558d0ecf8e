"""The sweep lifecycle: the grid composed and checked (`sweeper`), submission (`launch`), what a sweep
folder holds and `mlsweep status` (`lifecycle`), cost estimates and `mlsweep plan` (`costs`, `plan`),
per-cell resource rules (`resources`)."""
