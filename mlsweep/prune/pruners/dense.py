"""The dense baseline: the unpruned model, evaluated like every other cell."""

import torch

from mlsweep.prune.registry import PRUNERS, PrunerSpec


def prune(weight: torch.Tensor, stats, target, params) -> torch.Tensor:
    return weight


SPEC = PRUNERS.register(
    "dense",
    PrunerSpec(name="dense", summary="no pruning (baseline)", prune=prune, needs_calibration=False, prunes=False),
)
