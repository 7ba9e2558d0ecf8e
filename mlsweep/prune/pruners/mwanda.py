"""M-Wanda (Choenni & Titov 2025, arXiv 2505.21171), as specified in METHODS.md section 10.

The paper's text gives three ingredients; the authors' code could not be
checked, so this module implements the project's reading, with every
coefficient a parameter and the two doubtful choices as options (recorded in
the row's `reading` and shown in table labels).

Statistics per calibration language l (Wanda's rule per language):
n[l, j] = mean over l's sequences of the sum over its tokens of x_j^2, x the
linear's input; a[l, j] = sqrt(n[l, j]); s_j = sd_l a[l, j] (population sd,
0 with one language); pooled_j = Wanda's scaler_row over every sequence.

Activation probability p[l, j], `prob_source`:
- input (the first reading): share of l's tokens with x_j > 0, for every
  linear. For q/k/v and gate/up x is the normalised residual stream and for
  down_proj it is act(g) * u, so "> 0" is not a neuron firing.
- ffn_neuron (LAPE, Tang et al. 2024, as Kurz et al. use it): share of l's
  tokens on which FFN neuron j fires, act_fn(gate_proj(x))_j > 0 (gated MLP)
  or act(fc1(x))_j > 0 (plain MLP; BLOOM: GELU(dense_h_to_4h(x))), measured at
  the activation (found by structure, mlsweep.prune.ffn). Applied to input
  column j of the linear that reads the neurons (down_proj, fc2,
  dense_4h_to_h); every other linear gets g = 1. Not applied to the neuron's
  own rows of gate/up (fc1): a constant per output row cannot change a
  comparison made within each row (Wanda's, and N:M groups), so it would be
  a no-op.

Combination over languages, `aggregate` (lambda = lambda_var for every one):
- pooled_sd (default): A_j = sqrt(pooled_j) + lambda * s_j; P_j = mean_l p[l, j]
- mean: A_j = mean_l a[l, j] + lambda * s_j; P_j = mean_l p[l, j]
  (the literal METHODS.md formula; rewards what every language uses)
- max: A_j = max_l a[l, j] + lambda * s_j; P_j = max_l p[l, j]
  (a feature or neuron any one language relies on is kept, as Lang-Prune)
Score S_ij = |W_ij| * A_j * P_j ** gamma (gamma = 0: no probability term),
compared per output row as Wanda (N:M: per group of M inputs in a row). With
one language, lambda_var = 0 and gamma = 0 every reading gives Wanda's mask
exactly. The fourth ingredient, correlation-weighted layerwise sparsity
(CWL), is the `cwl` allocation (mlsweep/prune/allocations/cwl.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch

from mlsweep.prune.masks import SparsityTarget, apply_mask, mask_for
from mlsweep.prune.registry import PRUNERS, PrunerSpec
from mlsweep.prune.stats import LanguageStats, NeuronLanguageStats

# prob_source -> the statistics it needs and the (languages, d_in) probabilities of one linear (None: g = 1)
PROB_SOURCES: dict[str, tuple[type, Callable[[LanguageStats], Optional[torch.Tensor]]]] = {
    "input": (LanguageStats, lambda st: st.p()),
    "ffn_neuron": (NeuronLanguageStats, lambda st: st.neuron_p()),
}


def _centre_pooled(stats: LanguageStats, a: torch.Tensor) -> torch.Tensor:
    return stats.pooled().sqrt()


# aggregate -> (centre of the norm from (stats, a), combination of the probabilities over languages)
AGGREGATES: dict[str, tuple[Callable, Callable[[torch.Tensor], torch.Tensor]]] = {
    "pooled_sd": (_centre_pooled, lambda p: p.mean(0)),
    "mean": (lambda stats, a: a.mean(0), lambda p: p.mean(0)),
    "max": (lambda stats, a: a.max(0).values, lambda p: p.max(0).values),
}


@dataclass(frozen=True)
class Params:
    lambda_var: float = 1.0  # weight of the cross-language spread of the feature norm
    gamma: float = 0.5  # exponent of the activation-probability term (0: off)
    prob_source: str = "input"  # input (x_j > 0 on each linear's input) | ffn_neuron (LAPE firing, down_proj)
    aggregate: str = "pooled_sd"  # pooled_sd | mean | max over languages

    def __post_init__(self) -> None:
        if self.lambda_var < 0:
            raise ValueError(f"pruner.lambda_var={self.lambda_var}: must be >= 0")
        if self.gamma < 0:
            raise ValueError(f"pruner.gamma={self.gamma}: must be >= 0")
        for field, allowed in (("prob_source", PROB_SOURCES), ("aggregate", AGGREGATES)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"pruner.{field}={getattr(self, field)!r}: allowed values are {', '.join(allowed)}")


def feature_norm(stats: LanguageStats, params: Params) -> torch.Tensor:
    """A_j: the aggregate's centre of a[l, j] plus lambda_var times their sd over languages."""
    a = stats.n().sqrt()  # (languages, d_in)
    centre = AGGREGATES[params.aggregate][0](stats, a)
    spread = a.std(0, unbiased=False) if a.shape[0] > 1 else torch.zeros_like(centre)
    return centre + params.lambda_var * spread if params.lambda_var else centre


def probability_term(stats: LanguageStats, params: Params) -> Optional[torch.Tensor]:
    """g_j = P_j ** gamma, or None where the term is 1 (gamma = 0, or a linear that reads no neurons)."""
    if not params.gamma:
        return None
    p = PROB_SOURCES[params.prob_source][1](stats)
    return None if p is None else AGGREGATES[params.aggregate][1](p) ** params.gamma


def score(weight: torch.Tensor, stats: LanguageStats, params: Params) -> torch.Tensor:
    A = feature_norm(stats, params)
    g = probability_term(stats, params)
    return weight.abs() * (A if g is None else A * g).to(weight.device)[None, :]


def prune(weight: torch.Tensor, stats: LanguageStats, target: SparsityTarget, params: Params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats, params), target, group="row"))


def reading(params: Params) -> str:
    return f"prob={params.prob_source}, agg={params.aggregate}"


SPEC = PRUNERS.register(
    "mwanda",
    PrunerSpec(
        name="mwanda",
        summary="language-aware Wanda (M-Wanda), per output row",
        prune=prune,
        params=Params,
        make_collector=LanguageStats,
        collector_for=lambda params: PROB_SOURCES[params.prob_source][0] if params.gamma else LanguageStats,
        reading=reading,
    ),
)
