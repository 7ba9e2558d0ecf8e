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
`cwl` allocation (mlsweep/prune/allocation.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from mlsweep.prune.masks import SparsityTarget, mask_for
from mlsweep.prune.registry import PrunerSpec, apply_mask
from mlsweep.prune.wanda import SquaredNorm

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


class LanguageStats:
    """Per-language sums of x_j^2, counts of x_j > 0, sequences and tokens (fp32)."""

    def __init__(self, d_in: int):
        self.d_in = d_in
        self.sumsq: dict[Optional[str], torch.Tensor] = {}
        self.positive: dict[Optional[str], torch.Tensor] = {}
        self.n_seq: dict[Optional[str], int] = {}
        self.n_tok: dict[Optional[str], int] = {}
        self.all = SquaredNorm(d_in)  # Wanda's own statistic, bit for bit, for the pooled centre

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None) -> None:
        if lang not in self.sumsq:
            self.sumsq[lang] = torch.zeros(self.d_in, device=x.device)
            self.positive[lang] = torch.zeros(self.d_in, device=x.device)
            self.n_seq[lang], self.n_tok[lang] = 0, 0
        self.sumsq[lang] += (x * x).sum(0)
        self.positive[lang] += (x > 0).float().sum(0)
        self.n_seq[lang] += n_seq
        self.n_tok[lang] += x.shape[0]
        self.all.add(x, n_seq, lang)

    @property
    def languages(self) -> list:
        return list(self.sumsq)

    def n(self) -> torch.Tensor:
        """(languages, d_in): mean over a language's sequences of the per-sequence sum of x^2."""
        return torch.stack([self.sumsq[l] / self.n_seq[l] for l in self.languages])

    def p(self) -> torch.Tensor:
        return torch.stack([self.positive[l] / self.n_tok[l] for l in self.languages])

    def pooled(self) -> torch.Tensor:
        """Wanda's scaler_row over every calibration sequence."""
        return self.all.scaler_row


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


SPEC = PrunerSpec(name="mwanda", summary="language-aware Wanda (M-Wanda), per output row", prune=prune,
                  params=Params, make_collector=LanguageStats)
