"""Pure mask maths shared by the pruners: which weights to zero, given scores.

Every function takes a score matrix shaped (d_out, d_in) (higher = keep) and
returns a boolean matrix of the same shape, True where the weight is pruned.
No hooks, devices or configs here: these are checked against formulas written
out in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SparsityTarget:
    """What fraction to prune and in which pattern (n = m = 0: unstructured)."""

    sparsity: float
    n: int = 0
    m: int = 0

    @property
    def is_nm(self) -> bool:
        return self.m > 0

    @property
    def pattern(self) -> str:
        return f"{self.n}:{self.m}" if self.is_nm else "unstructured"


def parse_pattern(pattern: str) -> tuple[int, int]:
    """'unstructured' -> (0, 0); 'N:M' -> (N, M). Raises ValueError naming the field."""
    if pattern == "unstructured":
        return 0, 0
    parts = pattern.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(
            f"sparsity.pattern={pattern!r}: allowed values are 'unstructured' or 'N:M' "
            "with integers 0 < N < M (e.g. '2:4', '4:8')"
        )
    n, m = int(parts[0]), int(parts[1])
    if not 0 < n < m:
        raise ValueError(f"sparsity.pattern={pattern!r}: N:M needs 0 < N < M")
    return n, m


def make_target(sparsity: float, pattern: str = "unstructured") -> SparsityTarget:
    """Validate sparsity and pattern together (N:M fixes the sparsity at N/M)."""
    if not isinstance(sparsity, (int, float)) or not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity.target={sparsity!r}: allowed values are numbers in [0, 1)")
    n, m = parse_pattern(pattern)
    if m and abs(float(sparsity) - n / m) > 1e-9:
        raise ValueError(
            f"sparsity.target={sparsity} does not match sparsity.pattern={pattern!r}: "
            f"an N:M pattern prunes exactly N/M = {n / m:g}"
        )
    return SparsityTarget(float(sparsity), n, m)


def mask_per_matrix(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """One threshold for the whole matrix, as the reference magnitude pruner does.

    threshold = sort(score.flatten())[int(numel * s)]; prune score <= threshold.
    Ties at the threshold are pruned too, so the result can exceed s by a few
    elements; that is the reference behaviour and kept on purpose.
    """
    k = int(score.numel() * sparsity)
    if k == 0:
        return torch.zeros_like(score, dtype=torch.bool)
    thresh = torch.sort(score.flatten())[0][k]
    return score <= thresh


def mask_per_row(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune exactly int(d_in * s) lowest scores in every output row, ties to the lower column.

    The comparison group of Wanda: every row of every linear reaches the same
    sparsity. The reference prunes the first k indices of a stable ascending
    sort; a full sort per row was most of the mask's cost, so this selects
    instead and yields the same set: v = the k-th smallest score of the row
    (`kthvalue`, linear time); every score below v is pruned, and of the scores
    equal to v the lowest-index ones until k are pruned. torch.sort and
    kthvalue both order NaN after every number, so a row whose k-th smallest
    is NaN prunes all its numbers and its lowest-index NaNs.
    """
    k = int(score.shape[1] * sparsity)
    if k == 0:
        return torch.zeros_like(score, dtype=torch.bool)
    v = torch.kthvalue(score, k, dim=1, keepdim=True).values  # (d_out, 1)
    mask = score <= v
    nan_rows = v.isnan().squeeze(1)
    if nan_rows.any():
        mask[nan_rows] = True
    excess = mask.sum(dim=1) - k  # entries tied at v beyond the k-th
    rows = (excess > 0).nonzero().squeeze(1)
    if rows.numel():  # give back the highest-index ties: the stable sort places them last
        s, vr = score[rows], v[rows]
        tie = torch.where(vr.isnan(), s.isnan(), s == vr)
        rank = torch.cumsum(tie, dim=1)  # 1-based rank of each tie in column order
        mask[rows] &= ~(tie & (rank > tie.sum(dim=1, keepdim=True) - excess[rows, None]))
    return mask


def mask_nm(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """In each row, within every group of m consecutive input columns, prune the n lowest."""
    d_out, d_in = score.shape
    if d_in % m:
        raise ValueError(f"sparsity.pattern={n}:{m}: a linear has {d_in} input columns, not a multiple of {m}")
    groups = score.reshape(d_out, d_in // m, m)  # (d_out, groups, m)
    idx = torch.topk(groups, n, dim=-1, largest=False)[1]
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(d_out, d_in)


def apply_mask(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The weight with its masked entries set to zero (a new tensor)."""
    return weight.masked_fill(mask, 0.0)


def mask_for(score: torch.Tensor, target: SparsityTarget, group: str) -> torch.Tensor:
    """Dispatch on pattern; `group` is the unstructured comparison group ('matrix' or 'row')."""
    if target.is_nm:
        return mask_nm(score, target.n, target.m)
    if group == "matrix":
        return mask_per_matrix(score, target.sparsity)
    return mask_per_row(score, target.sparsity)
