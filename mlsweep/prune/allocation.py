"""Layerwise sparsity allocation: which sparsity each decoder block gets.

`uniform`: every block at the target. `owl` (Yin et al. 2024, METHODS.md
section 5): blocks with more outlier features keep more weights. The outlier
ratio of block l is D_l = 100 * #{S > M * mean(S)} / numel(S), with S the
Wanda scores |W| * ||X|| of all the block's linears together, from a dense
statistics pass; then D' = (D - min D) / (max D - min D) * 2 * lambda and
s_l = 1 - (D'_l - mean D' + 1 - s) (s_l <= 0 becomes 0.01), as the reference
code computes it. The s_l average s and span exactly 2 * lambda; they lie in
s +- lambda when the ratios are symmetric about their mean, and can reach
s +- 2 * lambda when they are skewed (the paper states +- lambda; we keep the
reference's formula so masks match it).
"""
from __future__ import annotations

from typing import Callable

import torch

from mlsweep.prune.masks import SparsityTarget


def outlier_ratio(scores: list[torch.Tensor], m: float) -> float:
    """Percentage of scores above m times their mean, over all given score matrices."""
    flat = torch.cat([s.flatten() for s in scores])
    return float(100.0 * (flat > m * flat.mean()).sum() / flat.numel())


def owl_sparsities(ratios: list[float], sparsity: float, lam: float) -> list[float]:
    d = torch.tensor(ratios, dtype=torch.float64)
    span = d.max() - d.min()
    scaled = (d - d.min()) / span * 2 * lam if span > 0 else torch.zeros_like(d)
    keep = scaled - scaled.mean() + (1 - sparsity)
    return [float(s) if s > 0 else 0.01 for s in (1 - keep)]


def _check_layerwise(kind: str, target: SparsityTarget, lam: float) -> None:
    """Shared rules of the layerwise allocations: unstructured only, lambda in [0, min(s, 1-s)]."""
    if target.is_nm:
        raise ValueError(f"sparsity.allocation='{kind}' supports sparsity.pattern='unstructured' only")
    bound = min(target.sparsity, 1 - target.sparsity)
    if not 0 <= lam <= bound:
        raise ValueError(f"sparsity.{kind}_lambda={lam}: allowed range is [0, min(s, 1-s)] = [0, {bound:g}]")


def check_owl(target: SparsityTarget, lam: float, m: float) -> None:
    _check_layerwise("owl", target, lam)
    if m <= 0:
        raise ValueError(f"sparsity.owl_m={m}: must be positive")


def cross_language_correlation(norms: list[torch.Tensor]) -> float:
    """Mean Pearson correlation between languages' feature-norm vectors, over all pairs and linears.

    norms: one (languages, d_in) matrix a[l, j] = sqrt(n[l, j]) per linear of the block.
    """
    values = []
    for a in norms:
        c = torch.corrcoef(a.double())  # (languages, languages)
        i, j = torch.triu_indices(a.shape[0], a.shape[0], offset=1)
        values.append(c[i, j])
    return float(torch.cat(values).mean())


def check_cwl(target: SparsityTarget, lam: float, n_languages: int) -> None:
    _check_layerwise("cwl", target, lam)
    if n_languages < 2:
        raise ValueError(f"sparsity.allocation='cwl' needs calibration in at least 2 languages, got {n_languages}")


def allocate(name: str, n_blocks: int, target: SparsityTarget, scores: Callable[[], list[float]],
             lam: float = 0.08, m: float = 5.0) -> list[SparsityTarget]:
    """Per-block targets; `scores` runs the statistics pass only when the allocation needs it.

    owl: scores are outlier ratios D_l. cwl (M-Wanda, METHODS.md section 10.4): scores are
    1 - r_b, r_b the block's cross-language correlation, so more language-specific blocks
    keep more weights; both through the OWL mapping above.
    """
    if name == "uniform":
        return [target] * n_blocks
    if name == "owl":
        check_owl(target, lam, m)
    if name in ("owl", "cwl"):
        return [SparsityTarget(s) for s in owl_sparsities(scores(), target.sparsity, lam)]
    raise ValueError(f"sparsity.allocation={name!r}: allowed values are {', '.join(ALLOCATIONS)}")


ALLOCATIONS = ("uniform", "owl", "cwl")
