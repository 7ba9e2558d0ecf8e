"""Kim et al. 2024's BLOOM refinement of Wanda: translation features over code features.

METHODS.md section 8: separate Wanda statistics per calibration data type;
scaler = s_mt * (s_mt / s_code), i.e. S_ij = |W_ij| * s_mt_j / sqrt(s_code_j),
compared per output row. It keeps weights tied to features that are large for
translation and small for code. Their code took the two roles from a Python
set (order depends on PYTHONHASHSEED); here they are fixed parameters.
Calibration rows are tagged `mt` and `code` (calib.format=translation_code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlsweep.prune.masks import SparsityTarget, apply_mask, mask_for
from mlsweep.prune.registry import PRUNERS, PrunerSpec
from mlsweep.prune.stats import LanguageStats


@dataclass(frozen=True)
class Params:
    base: str = "mt"  # the data type whose features are kept
    sub: str = "code"  # the data type whose features are pruned away


def score(weight: torch.Tensor, stats: LanguageStats, params: Params) -> torch.Tensor:
    tags = stats.languages
    for field, tag in (("base", params.base), ("sub", params.sub)):
        if tag not in tags:
            raise ValueError(f"pruner.{field}={tag!r} is not a calibration tag; the calibration has {tags}")
    n = stats.n()
    s_base, s_sub = n[tags.index(params.base)], n[tags.index(params.sub)]
    ratio = s_base / torch.sqrt(s_sub).clamp(min=torch.finfo(torch.float32).tiny)
    return weight.abs() * ratio.to(weight.device)[None, :]


def prune(weight: torch.Tensor, stats: LanguageStats, target: SparsityTarget, params: Params) -> torch.Tensor:
    return apply_mask(weight, mask_for(score(weight, stats, params), target, group="row"))


SPEC = PRUNERS.register(
    "wanda_ratio",
    PrunerSpec(
        name="wanda_ratio",
        summary="|W| * s_mt / sqrt(s_code) (Kim et al., BLOOM)",
        prune=prune,
        params=Params,
        make_collector=LanguageStats,
        required_tags=lambda params: (params.base, params.sub),
    ),
)
