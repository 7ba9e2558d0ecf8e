"""Layerwise sparsity allocation: which sparsity each decoder block gets.

An allocation is a registry entry (`ALLOCATIONS`, one module per entry in
mlsweep/prune/allocations/): its parameters (a dataclass whose fields are
`sparsity.<field>` config keys), a check run before any weight changes, an
optional dense statistics pass that scores the blocks, and the mapping from
scores to per-block targets. `uniform` gives every block the target;
`owl` (Yin et al. 2024, METHODS.md section 5) and `cwl` (M-Wanda, section
10.4) score the blocks and spread the target with the OWL mapping below.

OWL mapping: D' = (D - min D) / (max D - min D) * 2 * lambda and
s_l = 1 - (D'_l - mean D' + 1 - s) (s_l <= 0 becomes 0.01), as the reference
code computes it. The s_l average s and span exactly 2 * lambda; they lie in
s +- lambda when the scores are symmetric about their mean, and can reach
s +- 2 * lambda when they are skewed (the paper states +- lambda; we keep the
reference's formula so masks match it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Optional

import torch

from mlsweep.prune.masks import SparsityTarget
from mlsweep.registry import Registry, suggest


def no_check(target: SparsityTarget, params: Any, n_languages: int) -> None:
    return None


def no_reading(params: Any) -> str:
    return ""


def same_target(scores: list[float], target: SparsityTarget, params: Any) -> list[SparsityTarget]:
    return [target] * len(scores)


@dataclass(frozen=True)
class AllocationSpec:
    name: str
    summary: str
    params: Optional[type] = None  # dataclass; each field is the config key sparsity.<field>
    check: Callable[[SparsityTarget, Any, int], None] = no_check  # (target, params, calibration languages)
    # The dense statistics pass: (model, calibration batches, loop options, params) -> one score per block;
    # None for an allocation that needs no data.
    scores: Optional[Callable[..., list[float]]] = None
    spread: Callable[[list[float], SparsityTarget, Any], list[SparsityTarget]] = same_target
    # Where an option chooses the reading of a paper (CWL's direction): part of the row's `reading`.
    reading: Callable[[Any], str] = no_reading

    @property
    def needs_calibration(self) -> bool:
        return self.scores is not None

    def param_names(self) -> list[str]:
        return [f.name for f in fields(self.params)] if self.params else []

    def check_params(self, values: Mapping[str, Any]) -> Any:
        unknown = sorted(set(values) - set(self.param_names()))
        if unknown:
            raise ValueError(
                f"sparsity.{unknown[0]}: not a parameter of allocation {self.name!r}."
                f"{suggest(unknown[0], self.param_names())} Allowed: "
                f"{', '.join(self.param_names()) or 'none'}"
            )
        return self.params(**values) if self.params else None

    def targets(
        self, n_blocks: int, target: SparsityTarget, scores: Callable[[], list[float]], params: Any
    ) -> list[SparsityTarget]:
        """Per-block targets; `scores` runs the statistics pass only when this allocation has one."""
        values = scores() if self.needs_calibration else [0.0] * n_blocks
        return self.spread(values, target, params)


ALLOCATIONS: Registry[AllocationSpec] = Registry("sparsity.allocation", package="mlsweep.prune.allocations")


def owl_sparsities(ratios: list[float], sparsity: float, lam: float) -> list[float]:
    d = torch.tensor(ratios, dtype=torch.float64)
    span = d.max() - d.min()
    scaled = (d - d.min()) / span * 2 * lam if span > 0 else torch.zeros_like(d)
    keep = scaled - scaled.mean() + (1 - sparsity)
    return [float(s) if s > 0 else 0.01 for s in (1 - keep)]


def check_layerwise(kind: str, target: SparsityTarget, lam: float) -> None:
    """Shared rules of the layerwise allocations: unstructured only, lambda in [0, min(s, 1-s)]."""
    if target.is_nm:
        raise ValueError(f"sparsity.allocation='{kind}' supports sparsity.pattern='unstructured' only")
    bound = min(target.sparsity, 1 - target.sparsity)
    if not 0 <= lam <= bound:
        raise ValueError(f"sparsity.{kind}_lambda={lam}: allowed range is [0, min(s, 1-s)] = [0, {bound:g}]")


def outlier_ratio(scores: list[torch.Tensor], m: float) -> float:
    """Percentage of scores above m times their mean, over all given score matrices."""
    flat = torch.cat([s.flatten() for s in scores])
    return float(100.0 * (flat > m * flat.mean()).sum() / flat.numel())


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
