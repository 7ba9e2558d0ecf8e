"""The pruning engine, usable without Hydra.

    from mlsweep.prune import prune_model
    report = prune_model(model, calibration, "wanda", 0.5)

The face of the package: the core is `mlsweep.prune.api`, the layer loop
`loop`, one module per pruner in `pruners/`, one per layerwise allocation in
`allocations/`, pure mask maths in `masks`. The engine imports nothing from
the rest of mlsweep but the generic registry.
"""

from mlsweep.prune.api import EngineOptions, prune_model
from mlsweep.prune.report import PruneReport, measure_sparsity

__all__ = ["EngineOptions", "PruneReport", "measure_sparsity", "prune_model"]
