"""CWL, M-Wanda's correlation-weighted layerwise sparsity (METHODS.md section 10.4; the project's reading).

For block b, r_b is the mean Pearson correlation between the calibration
languages' feature-norm vectors a[l, :] = sqrt(n[l, :]) over all language
pairs and all linears of the block (a dense statistics pass). Blocks whose
languages disagree more (low r_b) are more language-specific. The paper says
CWL adjusts sparsity by cross-lingual importance, not which way, so the
direction is an option, `sparsity.cwl_direction`:
- keep_specific (default, the first reading): language-specific blocks keep
  more weights, D_b = 1 - r_b;
- keep_shared: blocks the languages share keep more weights, D_b = r_b.
D goes through the OWL mapping (higher D: lower sparsity), the block
sparsities averaging the target within about target +- lambda.
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

# cwl_direction -> D_b from the block's mean cross-language correlation r_b (higher D keeps more weights)
DIRECTIONS = {"keep_specific": lambda r: 1 - r, "keep_shared": lambda r: r}


@dataclass(frozen=True)
class Params:
    cwl_lambda: float = 0.08  # block sparsities within target +- lambda (as OWL's default)
    cwl_direction: str = "keep_specific"  # keep_specific | keep_shared: which blocks keep more weights

    def __post_init__(self) -> None:
        if self.cwl_direction not in DIRECTIONS:
            raise ValueError(
                f"sparsity.cwl_direction={self.cwl_direction!r}: allowed values are {', '.join(DIRECTIONS)}"
            )


def check(target: SparsityTarget, params: Params, n_languages: int) -> None:
    check_layerwise("cwl", target, params.cwl_lambda)
    if n_languages < 2:
        raise ValueError(f"sparsity.allocation='cwl' needs calibration in at least 2 languages, got {n_languages}")


def correlation_scores(model: nn.Module, batches: list, opts: LoopOptions, params: Params) -> list[float]:
    """D_b of each block from the mean cross-language correlation of its per-language feature norms."""
    scores: list[float] = []
    d = DIRECTIONS[params.cwl_direction]
    walk_statistics(
        model,
        batches,
        opts,
        LanguageStats,
        lambda _i, matrices, stats: scores.append(
            d(cross_language_correlation([stats[n].n().sqrt() for n in matrices]))
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
        reading=lambda params: f"cwl={params.cwl_direction}",
    ),
)
