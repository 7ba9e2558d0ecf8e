"""Calibration formats (`calib.format`): how a CalibRequest becomes token rows.

`windows`: random seqlen windows of concatenated documents (the reference
loaders, METHODS.md section 1.6), cached on disk per language. Kim et al.
2024's k-shot prompts: `translation` ("{Src}: s</s>{Tgt}: t</s>" from a
parallel source, with `pivot` and `direction`), `monolingual` (the control),
and `translation_code` (translation prompts tagged `mt` plus Python code
windows tagged `code`, for pruner=wanda_ratio). Each entry builds the set
and checks its own fields before any model loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mlsweep.data.calibration import (
    CalibrationSet,
    CalibRequest,
    PromptSpec,
    build_calibration,
    build_prompts,
    merge_tagged,
)
from mlsweep.data.sources import check_languages, make_source
from mlsweep.registry import Registry

DIRECTIONS = ("xx-pivot", "pivot-xx")


@dataclass(frozen=True)
class FormatSpec:
    name: str
    build: Callable[[CalibRequest, object], tuple[CalibrationSet, dict[str, int]]]  # (request, tokenizer)
    check: Callable[[CalibRequest], None] = lambda request: None  # reads sources: run before any model loads
    # The tags its rows carry: the calibration languages, or fixed data types (translation_code: mt, code).
    tags: Callable[[CalibRequest], tuple[str, ...]] = lambda request: tuple(request.languages)


FORMATS: Registry[FormatSpec] = Registry("calib.format")


def calibrate(request: CalibRequest, tokenizer) -> tuple[CalibrationSet, dict[str, int]]:
    """The calibration set and the rows per language (or per tag) it holds."""
    return FORMATS.get(request.format).build(request, tokenizer)


def _windows(request: CalibRequest, tokenizer):
    counts = request.counts()
    source = make_source(request.source)
    docs = {lang: source.documents(lang, request.split) for lang in counts}
    key = json.dumps([asdict(request.source), request.split], sort_keys=True)
    return build_calibration(tokenizer, docs, counts, request.seqlen, request.seed, source_key=key), counts


def _prompt_spec(request: CalibRequest, fmt: str) -> PromptSpec:
    return PromptSpec(fmt, request.shots, request.pivot, request.direction, request.seqlen, request.seed)


def _prompts(fmt: str):
    def build(request: CalibRequest, tokenizer):
        counts = request.counts()
        calib = build_prompts(tokenizer, make_source(request.source), request.split, counts, _prompt_spec(request, fmt))
        return calib, counts

    return build


def _translation_code(request: CalibRequest, tokenizer):
    counts = request.counts()
    calib = build_prompts(
        tokenizer, make_source(request.source), request.split, counts, _prompt_spec(request, "translation")
    )
    n_code = request.code_nsamples or request.nsamples
    code_docs = make_source(request.code_source).documents("code", request.split)
    code = build_calibration(tokenizer, {"code": code_docs}, {"code": n_code}, request.seqlen, request.seed)
    merged = merge_tagged(calib, "mt", code)
    return merged, {"mt": len(merged.languages) - n_code, "code": n_code}


def _check_prompts(request: CalibRequest) -> None:
    if request.shots <= 0:
        raise ValueError(f"calib.shots={request.shots}: must be a positive integer (sentences per prompt)")
    if request.direction not in DIRECTIONS:
        raise ValueError(f"calib.direction={request.direction!r}: allowed values are {', '.join(DIRECTIONS)}")


def _check_translation(request: CalibRequest) -> None:
    _check_prompts(request)
    check_languages("calib.pivot", [request.pivot], make_source(request.source))


def _check_translation_code(request: CalibRequest) -> None:
    _check_translation(request)
    make_source(request.code_source).check(["code"], request.split)


FORMATS.register("windows", FormatSpec("windows", _windows))
FORMATS.register("translation", FormatSpec("translation", _prompts("translation"), _check_translation))
FORMATS.register("monolingual", FormatSpec("monolingual", _prompts("monolingual"), _check_prompts))
FORMATS.register(
    "translation_code",
    FormatSpec("translation_code", _translation_code, _check_translation_code, lambda request: ("mt", "code")),
)
