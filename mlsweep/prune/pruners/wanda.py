"""Wanda (Sun et al. 2023): score S_ij = |W_ij| * ||X_j||_2, compared per output row.

METHODS.md section 3. The activation statistic is the reference's
`scaler_row` (mlsweep.prune.stats.SquaredNorm): the mean over calibration
sequences of the sum over tokens of x_j^2, accumulated in fp32. Its 1/N
scale does not change any row ranking.
"""

from __future__ import annotations

import torch

from mlsweep.prune.masks import SparsityTarget, apply_mask, mask_for
from mlsweep.prune.registry import PRUNERS, PrunerSpec
from mlsweep.prune.stats import SquaredNorm


def score(weight: torch.Tensor, scaler_row: torch.Tensor) -> torch.Tensor:
    """|W| * sqrt(scaler_row) broadcast over rows; weight (d_out, d_in)."""
    return weight.abs() * torch.sqrt(scaler_row.to(weight.device))[None, :]


def prune(weight: torch.Tensor, stats: SquaredNorm, target: SparsityTarget, params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats.scaler_row), target, group="row"))


SPEC = PRUNERS.register(
    "wanda", PrunerSpec(name="wanda", summary="|W|*||X||, per output row", prune=prune, make_collector=SquaredNorm)
)
