"""MBS's language similarity: cosine between languages' Wanda statistics of the input to block 0.

Loads a model and runs the engine's capture of block-0 inputs (public prune API only).
"""

from __future__ import annotations

import pandas as pd
import torch

from mlsweep.analysis.probe import model_and_calibration
from mlsweep.prune.capture import block_input_norms, calibration_batches


def language_similarity(norms: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Cosine between languages' block-0 input statistics (MBS's similarity)."""
    langs = list(norms)
    v = torch.stack([norms[lang].double() for lang in langs])
    v = v / v.norm(dim=1, keepdim=True)
    return pd.DataFrame((v @ v.t()).numpy(), index=langs, columns=langs)


def similarity(
    model_path: str, source_name: str, split: str, languages: list[str], nsamples: int, seqlen: int, seed: int
) -> pd.DataFrame:
    model, calib = model_and_calibration(model_path, source_name, split, languages, nsamples, seqlen, seed)
    return language_similarity(block_input_norms(model, calibration_batches(calib.input_ids, calib.languages, 8)))
