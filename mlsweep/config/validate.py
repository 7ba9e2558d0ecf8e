"""The checks of a CellSpec that read the disk, run before any weight is loaded.

`CellSpec.from_config` already checked every value that needs nothing but
the config; these need the model's config.json (context length), its weight
files' headers (a truncated file) and tokenizer (never its weights), the text
sources (languages, splits holding well-formed text, enough text for one
evaluation window and for calib.nsamples), lm-eval's task index (names, groups expanded to the suite's
languages, one language per `calib=target` pass) and the tasks' requests,
tokenised (none longer than the context unless `eval.truncate_long`). Every
message names the config field and what is allowed. The sweeper runs them on
every cell of the grid before launching any; the cell runs them as its first
stage. `mlsweep plan` runs them with `model_files=False`: the checks that read
the model's own files are skipped when those files are not on this machine.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Optional

import torch

from mlsweep.config.spec import CellSpec, ConfigError
from mlsweep.data.calibration import CalibRequest
from mlsweep.data.formats import FORMATS
from mlsweep.data.sources import SourceSpec, check_languages, make_source
from mlsweep.evaluate.harness import check_datasets, check_include_paths, check_tasks
from mlsweep.evaluate.perplexity import join_documents
from mlsweep.evaluate.requests import check_lengths, suite_lengths
from mlsweep.evaluate.scorers import project_task
from mlsweep.evaluate.suite import CorpusSpec, SuiteSpec, eval_max_length
from mlsweep.evaluate.tasklist import check_task_list, scorer_tasks, suite_manager
from mlsweep.modeling import check_weight_files, context_length, files_here, load_config, load_tokenizer

NOT_HERE = "is not on this machine: its context, text and request checks run in the cell"


@lru_cache(maxsize=32)
def _model_config(path: str, trust_remote_code: bool, revision: Any):
    return load_config(path, trust_remote_code, revision)


@lru_cache(maxsize=32)
def _check_weights(path: str, revision: Any) -> None:
    """The weight files' headers against their sizes, once per model (a grid asks for every cell)."""
    check_weight_files(path, revision)


@lru_cache(maxsize=8)
def _tokenizer(path: str, trust_remote_code: bool, revision: Any):
    return load_tokenizer(path, trust_remote_code, revision)


def validate(spec: CellSpec, model_files: bool = True) -> list[str]:
    """Raise ConfigError naming the field for anything the cell could not run; returns the checks skipped."""
    try:
        return _validate(spec, model_files)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _validate(spec: CellSpec, model_files: bool) -> list[str]:
    m = spec.model
    here = model_files or files_here(m.path, m.revision)
    config = _model_config(m.path, m.trust_remote_code, m.revision) if here else None
    if config is not None:
        _check_weights(m.path, m.revision)
    context = context_length(config) if config is not None else None
    lengths = [("model.seqlen", m.seqlen), ("eval.seqlen", spec.suite.seqlen)]
    lengths += [("eval.max_length", spec.suite.max_length)]
    lengths += [("calib.seqlen", p.calib.seqlen) for p in spec.passes[:1] if p.calib is not None]
    for field, value in lengths:
        if context and value and value > context:
            raise ConfigError(f"{field}={value}: must be in [2, {context}] (the context length of {m.path})")
    check_suite(spec.suite, per_language_passes=any(p.label for p in spec.passes))
    for p in spec.passes:
        if p.calib is not None:
            check_calibration(p.calib, "eval.languages (calib.mix=target)" if p.label else "calib.languages")
    if config is None:
        return [f"model.path={m.path} {NOT_HERE}"]
    tokenizer = _tokenizer(m.path, m.trust_remote_code, m.revision)
    for corpus in spec.suite.corpora:
        check_windows(corpus, spec.suite.seqlen, m.path, m.trust_remote_code, m.revision)
    for p in spec.passes:
        if p.calib is not None:
            check_calib_windows(p.calib, m.path, m.trust_remote_code, m.revision)
    if spec.suite.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"eval.apply_chat_template=true: the tokenizer of {m.path} has no chat template")
    if spec.suite.tasks:
        found = suite_lengths(m.path, m.trust_remote_code, m.revision, spec.suite)
        check_lengths(found, eval_max_length(config, spec.suite), spec.suite.truncate_long, context or 0)
    return []


def check_device(device: str) -> None:
    """The cell's device exists where the cell runs (the cell checks it; plans are made on login nodes without GPUs)."""
    if device in ("auto", "cpu"):
        return
    index = int(device.split(":")[1]) if ":" in device else 0
    if device.startswith("cuda") and index >= torch.cuda.device_count():
        have = torch.cuda.device_count()
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        raise ConfigError(
            f"model.device={device}: this machine has {have or 'no'} CUDA device{'s' if have != 1 else ''}"
            f"{f' (CUDA_VISIBLE_DEVICES={visible})' if visible is not None else ''}; "
            "use model.device=auto (the GPU if there is one, else the CPU) or cpu, or run the cell on a GPU node"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("model.device=mps: MPS is not available on this machine; use model.device=auto or cpu")


def check_calibration(calib: CalibRequest, field: str) -> None:
    """Languages known to the source, the split present and holding text, the format's own fields,
    and enough sentences for the prompts a prompt format builds."""
    source = make_source(calib.source)
    check_languages(field, list(calib.languages), source)
    _check_split("calib.split", calib.split, list(calib.languages), source)
    FORMATS.get(calib.format).check(calib)
    check_prompt_counts(calib, source)


def _check_split(field: str, split: str, langs: list[str], source) -> None:
    """The source's own check (files present, text in them, records well formed), naming the config field."""
    try:
        source.check(langs, split)
    except ValueError as e:
        raise ConfigError(f"{field}={split!r} (source {source.name!r}): {e}") from e


def check_prompt_counts(calib: CalibRequest, source) -> None:
    """A prompt format's nsamples fit its sentences (mlsweep.data.prompts: translation prompts take
    `shots` consecutive pairs and skip one; monolingual prompts `shots` distinct sentences)."""
    if calib.format not in ("translation", "translation_code", "monolingual"):
        return
    step = calib.shots + 1 if calib.format != "monolingual" else calib.shots
    for lang, n in calib.counts().items():
        sentences = len(source.documents(lang, calib.split))
        if calib.format != "monolingual":
            sentences = min(sentences, len(source.documents(calib.pivot, calib.split)))
        fits = (sentences + 1) // step if calib.format != "monolingual" else sentences // step
        if n > fits:
            raise ConfigError(
                f"calib.nsamples={calib.nsamples}: {lang} gets {n} prompts of calib.shots={calib.shots}, but split "
                f"{calib.split!r} of source {source.name!r} has {sentences} sentences, enough for {fits}; "
                "lower calib.nsamples or calib.shots"
            )


def check_suite(suite: SuiteSpec, per_language_passes: bool = False) -> list[str]:
    """Every corpus and task of the suite is reachable (data on disk or in the HF cache); its lm-eval tasks."""
    for i, corpus in enumerate(suite.corpora):
        field = "eval.languages" if i == 0 else f"eval.corpora[{i - 1}].languages"
        source = make_source(corpus.source)
        check_languages(field, list(corpus.languages), source)
        split_field = "eval.split" if i == 0 else f"eval.corpora[{i - 1}].split"
        _check_split(split_field, corpus.split, list(corpus.languages), source)
    check_include_paths(suite.include_paths)  # before the folders are indexed
    leaves: list[str] = []
    if any(project_task(t) is None for t in suite.tasks):
        manager = suite_manager(suite)
        check_tasks([t for t in suite.tasks if project_task(t) is None], manager)
        leaves = check_task_list(suite, per_language_passes, manager)
        check_datasets(leaves, manager)
    elif per_language_passes:
        check_task_list(suite, per_language_passes, manager=None)
    for task in scorer_tasks(suite):
        scorer, lang = project_task(task)
        scorer.check(make_source(suite.scorer_source(scorer)), lang)
    return leaves


@lru_cache(maxsize=256)
def check_windows(corpus: CorpusSpec, seqlen: int, path: str, trust_remote_code: bool, revision: Optional[str]) -> None:
    """Each language's text holds at least one perplexity window of `seqlen` tokens (tokenizer only)."""
    tokenizer = _tokenizer(path, trust_remote_code, revision)
    source = make_source(corpus.source)
    field = "eval.languages" if corpus.key == "ppl" else f"eval.corpora ({corpus.key}) languages"
    for lang in corpus.languages:
        docs = source.documents(lang, corpus.split)
        n = _tokens_up_to(tokenizer, docs, seqlen)
        if n < seqlen:
            raise ConfigError(
                f"{field}: {lang} has {n} tokens of text in split {corpus.split!r} of source "
                f"{corpus.source.name!r}, fewer than one window of eval.seqlen={seqlen} (eval.seqlen, else "
                "model.seqlen); choose a longer split or a smaller eval.seqlen"
            )


# Calibration windows are cut at random offsets of documents drawn with replacement
# (mlsweep.data.calibration.sample_windows), so any calib.nsamples terminates; past this many windows
# per non-overlapping window of the text they mostly repeat text already drawn, while the calibration
# pass grows with nsamples (100000 windows of a small corpus ran until killed).
MAX_WINDOW_REUSE = 4


def check_calib_windows(calib: CalibRequest, path: str, trust_remote_code: bool, revision: Optional[str]) -> None:
    """Each language's calibration text holds its windows of calib.seqlen tokens, each piece of text in
    at most MAX_WINDOW_REUSE of them (tokenizer only; the code windows of translation_code too)."""
    wanted = {lang: (calib.source, n) for lang, n in calib.counts().items()} if calib.format == "windows" else {}
    if calib.format == "translation_code":
        wanted["code"] = (calib.code_source, calib.code_nsamples or calib.nsamples)
    short = []
    for lang, (source, n) in wanted.items():
        need = calib.seqlen * -(-n // MAX_WINDOW_REUSE)  # ceil(n / reuse) windows of text
        tokens = _text_tokens(source, calib.split, lang, need, path, trust_remote_code, revision)
        if n and tokens < need:
            short.append(
                f"{lang} gets {n}, but split {calib.split!r} of source {source.name!r} gives "
                f"{tokens // calib.seqlen} ({tokens} tokens)"
            )
    if short:
        raise ConfigError(
            f"calib.nsamples={calib.nsamples}: more windows of calib.seqlen={calib.seqlen} tokens than the text "
            f"gives, at most {MAX_WINDOW_REUSE} per window of text: {'; '.join(short)}. Lower calib.nsamples "
            "(or calib.seqlen), or calibrate on a longer split"
        )


@lru_cache(maxsize=256)
def _text_tokens(source: SourceSpec, split: str, lang: str, need: int, path: str, trc: bool, revision: Any) -> int:
    """Tokens of one language's text, counted until there are surely `need` (cached: a grid asks again)."""
    docs = make_source(source).documents(lang, split)
    return _tokens_up_to(_tokenizer(path, trc, revision), docs, need)


def _tokens_up_to(tokenizer, docs: list[str], need: int) -> int:
    """Tokens of the joined documents, counted on a growing prefix until there are surely `need` of them."""
    k = 1
    while True:
        n = len(tokenizer(join_documents(docs[:k]), add_special_tokens=False)["input_ids"])
        if n >= need + 8 or k >= len(docs):  # 8 spare tokens: a prefix may tokenise differently at its end
            return n
        k *= 2
