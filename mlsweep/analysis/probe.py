"""What the model-side analyses (similarity, outliers) start from: a model on CPU and calibration windows."""

from __future__ import annotations

import torch

from mlsweep.data.calibration import CalibrationSet, build_calibration
from mlsweep.data.sources import SourceSpec, make_source
from mlsweep.modeling import load_model


def model_and_calibration(
    model_path: str, source_name: str, split: str, languages: list[str], nsamples: int, seqlen: int, seed: int
) -> tuple[torch.nn.Module, CalibrationSet]:
    """The fp32 model at `model_path` and `nsamples` windows per language of `source_name`'s `split`."""
    model, tok = load_model(model_path, "float32", torch.device("cpu"))
    source = make_source(SourceSpec(name=source_name))
    docs = {lang: source.documents(lang, split) for lang in languages}
    return model, build_calibration(tok, docs, {lang: nsamples for lang in languages}, seqlen, seed)
