"""Magnitude pruning: score |W_ij|, no data (METHODS.md section 2).

Unstructured: one threshold over the whole matrix (the reference's comparison
group). N:M: per row within groups of M consecutive input columns.
"""

import torch

from mlsweep.prune.masks import SparsityTarget, apply_mask, mask_for
from mlsweep.prune.registry import PRUNERS, PrunerSpec


def score(weight: torch.Tensor) -> torch.Tensor:
    return weight.abs()


def prune(weight: torch.Tensor, stats, target: SparsityTarget, params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight), target, group="matrix"))


SPEC = PRUNERS.register(
    "magnitude", PrunerSpec(name="magnitude", summary="|W|, per-matrix threshold", prune=prune, needs_calibration=False)
)
