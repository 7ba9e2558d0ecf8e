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
    """scaler_row_j = (1/N_seq) * sum over all tokens of x_j^2 (fp32).

    Updated one sequence at a time with the reference's running mean
    (scaler *= n/(n+1); scaler += ||x_j||^2 / (n+1), the norm taken over the
    sequence's tokens), so that the floating-point result, and hence every
    near-tie in the masks, is the reference's, whatever the batch size.
    """

    def __init__(self, d_in: int):
        self.scaler_row = torch.zeros(d_in, dtype=torch.float32)
        self.n_seq = 0

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None) -> None:
        # x: (tokens, d_in) fp32, the batch's sequences one after the other
        if self.scaler_row.device != x.device:
            self.scaler_row = self.scaler_row.to(x.device)
        for seq in per_sequence(x, n_seq):
            self.scaler_row *= self.n_seq / (self.n_seq + 1)
            self.n_seq += 1
            self.scaler_row += torch.norm(seq.t(), p=2, dim=1) ** 2 / self.n_seq


def per_sequence(x: torch.Tensor, n_seq: int) -> list[torch.Tensor]:
    """Split a batch's rows back into its sequences (padding-masked rows: one chunk per batch)."""
    if n_seq > 1 and x.shape[0] % n_seq == 0:
        return list(x.reshape(n_seq, -1, x.shape[-1]))
    return [x] if n_seq == 1 else [x] + [x[:0]] * (n_seq - 1)


def score(weight: torch.Tensor, scaler_row: torch.Tensor) -> torch.Tensor:
    """|W| * sqrt(scaler_row) broadcast over rows; weight (d_out, d_in)."""
    return weight.abs() * torch.sqrt(scaler_row.to(weight.device))[None, :]


def prune(weight: torch.Tensor, stats: SquaredNorm, target: SparsityTarget, params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats.scaler_row), target, group="row"))


SPEC = PrunerSpec(name="wanda", summary="|W|*||X||, per output row", prune=prune,
                  make_collector=SquaredNorm)
