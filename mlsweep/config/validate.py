"""The checks of a CellSpec that read the disk, run before any weight is loaded.

`CellSpec.from_config` already checked every value that needs nothing but
the config; these need the model's config.json (context length) and tokenizer
(never its weights), the text sources (languages, splits, enough text for one
window), lm-eval's task index (names, groups expanded to the suite's
languages, one language per `calib=target` pass) and the tasks' requests,
tokenised (none longer than the context unless `eval.truncate_long`). Every
message names the config field and what is allowed. The sweeper runs them on
every cell of the grid before launching any; the cell runs them as its first
stage. `mlsweep plan` runs them with `model_files=False`: the checks that read
the model's own files are skipped when those files are not on this machine.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from mlsweep.config.spec import CellSpec, ConfigError
from mlsweep.data.calibration import CalibRequest
from mlsweep.data.formats import FORMATS
from mlsweep.data.sources import check_languages, make_source
from mlsweep.evaluate.harness import check_datasets, check_include_paths, check_tasks
from mlsweep.evaluate.perplexity import join_documents
from mlsweep.evaluate.requests import check_lengths, suite_lengths
from mlsweep.evaluate.scorers import project_task
from mlsweep.evaluate.suite import CorpusSpec, SuiteSpec, eval_max_length
from mlsweep.evaluate.tasklist import check_task_list, scorer_tasks, suite_manager
from mlsweep.modeling import context_length, files_here, load_config, load_tokenizer

NOT_HERE = "is not on this machine: its context, text and request checks run in the cell"


@lru_cache(maxsize=32)
def _model_config(path: str, trust_remote_code: bool, revision: Any):
    return load_config(path, trust_remote_code, revision)


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
    if spec.suite.apply_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"eval.apply_chat_template=true: the tokenizer of {m.path} has no chat template")
    if spec.suite.tasks:
        found = suite_lengths(m.path, m.trust_remote_code, m.revision, spec.suite)
        check_lengths(found, eval_max_length(config, spec.suite), spec.suite.truncate_long, context or 0)
    return []


def check_calibration(calib: CalibRequest, field: str) -> None:
    """Languages known to the source, the split present, the format's own fields."""
    source = make_source(calib.source)
    check_languages(field, list(calib.languages), source)
    source.check(list(calib.languages), calib.split)
    FORMATS.get(calib.format).check(calib)


def check_suite(suite: SuiteSpec, per_language_passes: bool = False) -> list[str]:
    """Every corpus and task of the suite is reachable (data on disk or in the HF cache); its lm-eval tasks."""
    for i, corpus in enumerate(suite.corpora):
        field = "eval.languages" if i == 0 else f"eval.corpora[{i - 1}].languages"
        source = make_source(corpus.source)
        check_languages(field, list(corpus.languages), source)
        source.check(list(corpus.languages), corpus.split)
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


def _tokens_up_to(tokenizer, docs: list[str], need: int) -> int:
    """Tokens of the joined documents, counted on a growing prefix until there are surely `need` of them."""
    k = 1
    while True:
        n = len(tokenizer(join_documents(docs[:k]), add_special_tokens=False)["input_ids"])
        if n >= need + 8 or k >= len(docs):  # 8 spare tokens: a prefix may tokenise differently at its end
            return n
        k *= 2
