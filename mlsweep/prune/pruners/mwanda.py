"""M-Wanda (Choenni & Titov 2025, arXiv 2505.21171), as specified in METHODS.md section 10.

The paper's text gives three ingredients; their exact formulas could not be
checked against the authors' code, so this module implements the project's
reading, with every coefficient a parameter:

1. Language-tagged statistics (paper): per input feature j and calibration
   language l, n[l, j] = mean over l's sequences of the sum over its tokens of
   x_j^2 (Wanda's rule per language), and p[l, j] = share of l's tokens with
   x_j > 0 (activation probability).
2. Language-aware norm (paper: "language-aware activation statistics"; formula
   ours): a[l, j] = sqrt(n[l, j]); A_j = centre_j + lambda_var * std_l a[l, j]
   (population sd over languages). centre = 'pooled' (default): Wanda's own
   norm over all calibration sequences, so that lambda_var = 0 and gamma = 0
   give Wanda's mask exactly, with any mix; centre = 'language_mean': mean_l
   a[l, j], the literal METHODS.md formula (equal to Wanda only with one
   language).
3. Activation-probability term (paper; formula ours): g_j = (mean_l p[l, j])
   ** gamma. Score S_ij = |W_ij| * A_j * g_j, compared per output row as Wanda
   (N:M: per group of M inputs in a row).
The fourth ingredient, correlation-weighted layerwise sparsity (CWL), is the
`cwl` allocation (mlsweep/prune/allocations/cwl.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlsweep.prune.masks import SparsityTarget, apply_mask, mask_for
from mlsweep.prune.registry import PRUNERS, PrunerSpec
from mlsweep.prune.stats import LanguageStats

CENTRES = ("pooled", "language_mean")


@dataclass(frozen=True)
class Params:
    lambda_var: float = 1.0  # weight of the cross-language spread of the feature norm
    gamma: float = 0.5  # exponent of the activation-probability term (0: off)
    centre: str = "pooled"  # pooled (Wanda's norm) | language_mean

    def __post_init__(self) -> None:
        if self.lambda_var < 0:
            raise ValueError(f"pruner.lambda_var={self.lambda_var}: must be >= 0")
        if self.gamma < 0:
            raise ValueError(f"pruner.gamma={self.gamma}: must be >= 0")
        if self.centre not in CENTRES:
            raise ValueError(f"pruner.centre={self.centre!r}: allowed values are {', '.join(CENTRES)}")


def feature_norm(stats: LanguageStats, params: Params) -> torch.Tensor:
    a = stats.n().sqrt()  # (languages, d_in)
    centre = stats.pooled().sqrt() if params.centre == "pooled" else a.mean(0)
    spread = a.std(0, unbiased=False) if a.shape[0] > 1 else torch.zeros_like(centre)
    return centre + params.lambda_var * spread


def score(weight: torch.Tensor, stats: LanguageStats, params: Params) -> torch.Tensor:
    A = feature_norm(stats, params)
    g = stats.p().mean(0) ** params.gamma if params.gamma else torch.ones_like(A)
    return weight.abs() * (A * g).to(weight.device)[None, :]


def prune(weight: torch.Tensor, stats: LanguageStats, target: SparsityTarget, params: Params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats, params), target, group="row"))


SPEC = PRUNERS.register(
    "mwanda",
    PrunerSpec(
        name="mwanda",
        summary="language-aware Wanda (M-Wanda), per output row",
        prune=prune,
        params=Params,
        make_collector=LanguageStats,
    ),
)
