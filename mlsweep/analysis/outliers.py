"""Outlier features: how unevenly a model's activations spread over its hidden features.

Activation-aware pruning beats magnitude pruning on real LLMs because a few
input features carry activations far larger than the rest (Dettmers et al.
2022; Sun et al. 2024, "massive activations"): a small weight on such a
feature matters more than a large one elsewhere. These statistics measure
that on dense calibration data, one value per block:

- `feature_ratio`: max over features j of ||X_j|| (L2 over every token) divided
  by the median over features, at the block's input (the residual stream);
  about 1-5 for a model without outlier features, tens to thousands for an LLM;
- `owl_share`: OWL's outlier ratio (Yin et al. 2024), the percentage of the
  block's Wanda scores |W_ij| * ||X_j|| above M times their mean (M = 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mlsweep.prune.allocations import owl
from mlsweep.prune.api import EngineOptions
from mlsweep.prune.capture import calibration_batches


@dataclass(frozen=True)
class OutlierStats:
    feature_ratio: list[float]  # per block input: max_j ||X_j|| / median_j ||X_j||
    owl_share: list[float]  # per block: % of Wanda scores above owl_m x mean

    def summary(self) -> dict:
        return {
            "feature_ratio": [round(v, 2) for v in self.feature_ratio],
            "owl_share": [round(v, 3) for v in self.owl_share],
            "feature_ratio_max": round(max(self.feature_ratio), 2),
            "owl_share_mean": round(sum(self.owl_share) / len(self.owl_share), 3),
        }


@torch.no_grad()
def feature_ratios(model: nn.Module, rows: torch.Tensor, batch_size: int = 8) -> list[float]:
    """Per block: max / median over features of the L2 norm of the block's input over all tokens."""
    sums = None
    for s in range(0, rows.shape[0], batch_size):
        out = model(input_ids=rows[s : s + batch_size], output_hidden_states=True, use_cache=False)
        # hidden_states[i] is block i's input for i < n_blocks; the last one is after the final norm
        sq = torch.stack([h.float().pow(2).sum(dim=(0, 1)) for h in out.hidden_states[:-1]])
        sums = sq if sums is None else sums + sq
    norms = sums.sqrt()  # (blocks, hidden)
    return (norms.max(dim=1).values / norms.median(dim=1).values).tolist()


def outlier_stats(model: nn.Module, rows: torch.Tensor, owl_m: float = 5.0) -> OutlierStats:
    """Both statistics on the dense `model` over calibration `rows` (n, seqlen) of token ids."""
    was_training = model.training
    model.eval()
    try:
        ratios = feature_ratios(model, rows)
        engine = EngineOptions()
        batches = calibration_batches(rows, None, engine.batch_size)
        shares = owl.outlier_ratios(model, batches, engine.loop_options(), owl.Params(owl_m=owl_m))
    finally:
        model.train(was_training)
    return OutlierStats(ratios, shares)


def outlier_table(
    model_path: str, source_name: str, split: str, languages: list[str], nsamples: int, seqlen: int, seed: int
):
    """Both statistics per block of the model at `model_path`, on `nsamples` windows per language."""
    import pandas as pd  # noqa: PLC0415 (the statistics themselves need no pandas)

    from mlsweep.analysis.probe import model_and_calibration  # noqa: PLC0415 (sources load lazily)

    model, calib = model_and_calibration(model_path, source_name, split, languages, nsamples, seqlen, seed)
    stats = outlier_stats(model, calib.input_ids)
    return pd.DataFrame(
        {"feature_ratio": stats.feature_ratio, "owl_share_pct": stats.owl_share},
        index=pd.RangeIndex(len(stats.feature_ratio), name="block"),
    )
