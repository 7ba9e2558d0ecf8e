"""Wanda (Sun et al. 2023): score S_ij = |W_ij| * ||X_j||_2, compared per output row.

METHODS.md section 3. The activation statistic is the reference's
`scaler_row`: the mean over calibration sequences of the sum over tokens of
x_j^2, accumulated in fp32. Its 1/N scale does not change any row ranking.
"""
from __future__ import annotations

from typing import Optional

import torch

from mlsweep.prune.masks import SparsityTarget, mask_for
from mlsweep.prune.registry import PrunerSpec, apply_mask


class SquaredNorm:
    """scaler_row_j = (1/N_seq) * sum over all tokens of x_j^2 (fp32)."""

    def __init__(self, d_in: int):
        self.sumsq = torch.zeros(d_in, dtype=torch.float32)
        self.n_seq = 0

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None) -> None:
        # x: (tokens, d_in), already fp32
        if self.sumsq.device != x.device:
            self.sumsq = self.sumsq.to(x.device)
        self.sumsq += (x * x).sum(dim=0)
        self.n_seq += n_seq

    @property
    def scaler_row(self) -> torch.Tensor:
        return self.sumsq / max(self.n_seq, 1)


def score(weight: torch.Tensor, scaler_row: torch.Tensor) -> torch.Tensor:
    """|W| * sqrt(scaler_row) broadcast over rows; weight (d_out, d_in)."""
    return weight.abs() * torch.sqrt(scaler_row.to(weight.device))[None, :]


def prune(weight: torch.Tensor, stats: SquaredNorm, target: SparsityTarget, params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats.scaler_row), target, group="row"))


SPEC = PrunerSpec(name="wanda", summary="|W|*||X||, per output row", prune=prune,
                  make_collector=SquaredNorm)
