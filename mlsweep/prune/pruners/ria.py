"""RIA, Relative Importance and Activations (Zhang, Bai, Lin, Zhao, Hou & Cannistraci, ICLR 2024,
"Plug-and-Play: An Efficient Post-training Pruning Method for Large Language Models").

For a linear with weight W (d_out, d_in), output row i and input column j:
    RI_ij = |W_ij| / sum_i' |W_i'j| + |W_ij| / sum_j' |W_ij'|
    S_ij  = RI_ij * ||X_j||_2 ** a,   a = 0.5
The first sum runs down column j (every output that input j feeds), the
second along row i (every input of output i): a weight is important
relative to both its input channel and its output neuron. ||X_j||_2 is
Wanda's activation norm, sqrt(scaler_row_j) (mlsweep.prune.stats.SquaredNorm;
its 1/sqrt(N) scale is a constant factor that changes no ranking).

Defaults, checked in the authors' code (biomedical-cybernetics/Relative-
importance-and-activation-pruning@b87b897e, main.py and lib/prune.py; the
paper's own text could not be read here): a = 0.5 (`--a`); unstructured
pruning compares the whole matrix, one threshold per linear with ties pruned
(`--per_outneuron` is off by default); `group: row` is their
`--per_outneuron`, Wanda's per-output comparison. N:M: per row, the N lowest
of every M consecutive inputs (their direct N:M; the channel permutation of
the paper's second part is not implemented). Zero row or column sums (a dead
input) give RI = 0 rather than 0/0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlsweep.prune.masks import SparsityTarget, apply_mask, mask_for
from mlsweep.prune.registry import PRUNERS, PrunerSpec
from mlsweep.prune.stats import SquaredNorm

GROUPS = ("matrix", "row")


@dataclass(frozen=True)
class Params:
    a: float = 0.5  # exponent of the activation norm
    group: str = "matrix"  # unstructured comparison group: matrix (the authors' default) | row (Wanda's)

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError(f"pruner.a={self.a}: must be >= 0")
        if self.group not in GROUPS:
            raise ValueError(f"pruner.group={self.group!r}: allowed values are {', '.join(GROUPS)}")


def relative_importance(weight: torch.Tensor) -> torch.Tensor:
    """RI_ij = |W_ij| / (column j's sum of |W|) + |W_ij| / (row i's sum of |W|); weight (d_out, d_in)."""
    w = weight.abs()
    tiny = torch.finfo(w.dtype).tiny
    return w / w.sum(0, keepdim=True).clamp(min=tiny) + w / w.sum(1, keepdim=True).clamp(min=tiny)


def score(weight: torch.Tensor, scaler_row: torch.Tensor, params: Params) -> torch.Tensor:
    norm = torch.sqrt(scaler_row.to(weight.device))  # ||X_j||_2 up to a constant
    return relative_importance(weight) * (norm**params.a)[None, :]


def prune(weight: torch.Tensor, stats: SquaredNorm, target: SparsityTarget, params: Params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats.scaler_row, params), target, group=params.group))


SPEC = PRUNERS.register(
    "ria",
    PrunerSpec(
        name="ria",
        summary="relative importance x ||X||^0.5 (RIA), one threshold per matrix",
        prune=prune,
        params=Params,
        make_collector=SquaredNorm,
    ),
)
