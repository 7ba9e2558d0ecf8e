"""CWL, M-Wanda's correlation-weighted layerwise sparsity (METHODS.md section 10.4; the project's reading).

For block b, r_b is the mean Pearson correlation between the calibration
languages' feature-norm vectors a[l, :] = sqrt(n[l, :]) over all language
pairs and all linears of the block (a dense statistics pass). Blocks whose
languages disagree more (low r_b) are more language-specific and keep more
weights: D_b = 1 - r_b through the OWL mapping, within target +- lambda.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mlsweep.prune.allocation import (
    ALLOCATIONS,
    AllocationSpec,
    check_layerwise,
    cross_language_correlation,
    owl_sparsities,
)
from mlsweep.prune.loop import LoopOptions, walk_statistics
from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.stats import LanguageStats


@dataclass(frozen=True)
class Params:
    cwl_lambda: float = 0.08  # block sparsities within target +- lambda (as OWL's default)


def check(target: SparsityTarget, params: Params, n_languages: int) -> None:
    check_layerwise("cwl", target, params.cwl_lambda)
    if n_languages < 2:
        raise ValueError(f"sparsity.allocation='cwl' needs calibration in at least 2 languages, got {n_languages}")


def correlation_scores(model: nn.Module, batches: list, opts: LoopOptions, params: Params) -> list[float]:
    """1 - mean cross-language correlation of each block's per-language feature norms."""
    scores: list[float] = []
    walk_statistics(
        model,
        batches,
        opts,
        LanguageStats,
        lambda _i, matrices, stats: scores.append(
            1 - cross_language_correlation([stats[n].n().sqrt() for n in matrices])
        ),
    )
    return scores


def spread(scores: list[float], target: SparsityTarget, params: Params) -> list[SparsityTarget]:
    return [SparsityTarget(s) for s in owl_sparsities(scores, target.sparsity, params.cwl_lambda)]


SPEC = ALLOCATIONS.register(
    "cwl",
    AllocationSpec(
        name="cwl",
        summary="correlation-weighted layerwise sparsity (M-Wanda)",
        params=Params,
        check=check,
        scores=correlation_scores,
        spread=spread,
    ),
)
