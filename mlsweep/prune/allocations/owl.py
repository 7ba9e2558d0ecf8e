"""OWL (Yin et al. 2024, METHODS.md section 5): blocks with more outlier features keep more weights.

The outlier ratio of block l is D_l = 100 * #{S > M * mean(S)} / numel(S), with
S the Wanda scores |W| * ||X|| of all the block's matrices together (experts no
calibration token reached left out), from a
dense statistics pass (dense outputs propagate); the OWL mapping of
mlsweep.prune.allocation spreads the target over the blocks. The outlier
metric is the Wanda score whatever the pruner, as in the reference code.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mlsweep.prune.allocation import ALLOCATIONS, AllocationSpec, check_layerwise, outlier_ratio, owl_sparsities
from mlsweep.prune.loop import LoopOptions, walk_statistics
from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.pruners import wanda
from mlsweep.prune.stats import SquaredNorm


@dataclass(frozen=True)
class Params:
    owl_lambda: float = 0.08  # block sparsities within target +- lambda (reference README at 70%)
    owl_m: float = 5.0  # outlier = Wanda score above M x the block mean (reference README: 5)


def check(target: SparsityTarget, params: Params, n_languages: int) -> None:
    check_layerwise("owl", target, params.owl_lambda)
    if params.owl_m <= 0:
        raise ValueError(f"sparsity.owl_m={params.owl_m}: must be positive")


def outlier_ratios(model: nn.Module, batches: list, opts: LoopOptions, params: Params) -> list[float]:
    """OWL pass 1: Wanda scores of each dense block (dense propagation) -> outlier ratio per block."""
    ratios: list[float] = []

    def visit(_i, matrices, stats):
        ratios.append(
            outlier_ratio(
                [wanda.score(m.tensor().float(), stats[n].scaler_row) for n, m in matrices.items()], params.owl_m
            )
        )

    walk_statistics(model, batches, opts, SquaredNorm, visit)
    return ratios


def spread(ratios: list[float], target: SparsityTarget, params: Params) -> list[SparsityTarget]:
    return [SparsityTarget(s) for s in owl_sparsities(ratios, target.sparsity, params.owl_lambda)]


SPEC = ALLOCATIONS.register(
    "owl",
    AllocationSpec(
        name="owl",
        summary="outlier-weighted layerwise sparsity (Yin et al. 2024)",
        params=Params,
        check=check,
        scores=outlier_ratios,
        spread=spread,
    ),
)
