"""An eval suite run on the (pruned) model: perplexity corpora, lm-eval tasks, project scorers.

Row keys: `ppl/<lang>` `bpb/<lang>` `bpc/<lang>` `eval_tokens/<lang>`
`eval_windows/<lang>` for the suite's main corpus (`<key>/<lang>` ... for the
others); `acc/<task>`, `acc_stderr/<task>`, `n/<task>` (and `acc_norm` where
lm-eval gives it) for tasks; `acc_lang/<lang>`: the mean accuracy of the
tasks of one language (task names ending in `_<lang>`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mlsweep.data.calibration import doc_hash
from mlsweep.data.sources import TextSource
from mlsweep.evaluate import kim
from mlsweep.evaluate.perplexity import join_documents, text_perplexity


@dataclass
class Corpus:
    key: str  # metric prefix ("ppl" for the main corpus)
    source: TextSource
    split: str
    languages: list[str]
    max_windows: Optional[int] = None


@dataclass
class Suite:
    corpora: list[Corpus]
    seqlen: int
    batch_size: int
    tasks: list[str] = field(default_factory=list)  # lm-eval names, or kim_xnli_<lang>
    limit: Optional[float] = None
    num_fewshot: int = 0
    include_paths: list[str] = field(default_factory=list)
    scorer_sources: dict[str, TextSource] = field(default_factory=dict)  # project scorer -> data


def _prefix(key: str, metric: str) -> str:
    return metric if key == "ppl" else (key if metric == "ppl" else f"{key}_{metric}")


# Called with each language's or task's metrics as soon as they are computed (live logging).
OnMetrics = Callable[[dict[str, Any]], None]


def perplexities(model, tokenizer, corpus: Corpus, seqlen: int, batch_size: int,
                 calib_hashes: set[str], on_metrics: Optional[OnMetrics] = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lang in corpus.languages:
        docs = corpus.source.documents(lang, corpus.split)
        overlap = calib_hashes & {doc_hash(d) for d in docs}
        if overlap:
            raise RuntimeError(f"eval: {corpus.key} {corpus.split!r} ({lang}) shares {len(overlap)} documents "
                               "with the calibration text; evaluation text must be held out")
        res = text_perplexity(model, tokenizer, join_documents(docs), seqlen, batch_size, corpus.max_windows)
        out[f"{_prefix(corpus.key, 'ppl')}/{lang}"] = res.ppl
        out[f"{_prefix(corpus.key, 'bpb')}/{lang}"] = res.bits_per_byte
        out[f"{_prefix(corpus.key, 'bpc')}/{lang}"] = res.bits_per_char
        tokens_key = "eval_tokens" if corpus.key == "ppl" else f"{corpus.key}_tokens"
        out[f"{tokens_key}/{lang}"] = res.tokens
        out[f"{tokens_key.replace('tokens', 'windows')}/{lang}"] = res.windows
        if on_metrics:
            on_metrics({k: v for k, v in out.items() if k.endswith(f"/{lang}")})
    return out


def project_tasks(tasks: list[str]) -> list[str]:
    return [t for t in tasks if t.startswith("kim_xnli_")]


def run_project_task(model, tokenizer, task: str, suite: Suite) -> dict[str, Any]:
    lang = task.removeprefix("kim_xnli_")
    source = suite.scorer_sources["kim_xnli"]
    items = [dict(r) for r in _rows(source, lang)]
    res = kim.score(model, tokenizer, kim.subset(items), suite.batch_size)
    return {f"acc/{task}": res["acc"], f"n/{task}": res["n"]}


def _rows(source, lang: str) -> list[dict]:
    from mlsweep.data.hub import _load

    return list(_load(**source._args(lang, "test")))


def language_means(flat: dict[str, Any]) -> dict[str, float]:
    """Mean accuracy per language over the leaf tasks named `..._<lang>` (known codes only)."""
    from mlsweep.data.languages import LANGS

    by_lang: dict[str, list[float]] = {}
    for key, value in flat.items():
        lang = key.rsplit("_", 1)[-1]
        if key.startswith("acc/") and "_" in key and lang in LANGS:
            by_lang.setdefault(lang, []).append(value)
    return {f"acc_lang/{lang}": statistics.mean(v) for lang, v in by_lang.items()}


def evaluate(model, tokenizer, suite: Suite, calib_hashes: set[str],
             on_metrics: Optional[OnMetrics] = None) -> dict[str, Any]:
    """Every corpus and task of the suite; `on_metrics` sees each language's / task's metrics as they finish."""
    out: dict[str, Any] = {}
    for corpus in suite.corpora:
        out.update(perplexities(model, tokenizer, corpus, suite.seqlen, suite.batch_size, calib_hashes, on_metrics))
    ours = project_tasks(suite.tasks)
    harness = [t for t in suite.tasks if t not in ours]
    flat: dict[str, Any] = {}
    if harness:
        from mlsweep.evaluate.harness import run_tasks, task_manager

        flat.update(run_tasks(model, tokenizer, harness, batch_size=suite.batch_size, limit=suite.limit,
                              num_fewshot=suite.num_fewshot, manager=task_manager(suite.include_paths)))
        if on_metrics:  # lm-eval returns all its tasks at once
            on_metrics(dict(flat))
    for task in ours:
        flat.update(run_project_task(model, tokenizer, task, suite))
        if on_metrics:
            on_metrics({k: v for k, v in flat.items() if k.endswith(f"/{task}")})
    out.update(flat)
    out.update(language_means({k: v for k, v in flat.items() if k.startswith("acc/")}))
    return out
