"""The cell pipeline: the Hydra app (`app`), one cell run (`run`), one prune-then-evaluate pass
(`prune`), progress lines (`progress`) and where the cell runs (`jobenv`)."""
