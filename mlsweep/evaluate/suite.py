"""An eval suite run on the (pruned) model: perplexity corpora, lm-eval tasks, project scorers.

Row keys: `ppl/<lang>` `bpb/<lang>` `bpc/<lang>` `eval_tokens/<lang>`
`eval_windows/<lang>` for the suite's main corpus (`<key>/<lang>` ... for the
others); `acc/<task>`, `acc_stderr/<task>`, `n/<task>` (and `acc_norm` where
lm-eval gives it) for tasks; `acc_lang/<lang>`: the mean accuracy of the
tasks of one language (task names ending in `_<lang>`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from mlsweep.data.calibration import doc_hash
from mlsweep.data.languages import LANGS
from mlsweep.data.sources import SourceSpec, make_source
from mlsweep.evaluate.harness import run_tasks, task_manager
from mlsweep.evaluate.perplexity import join_documents, text_perplexity
from mlsweep.evaluate.scorers import project_task


@dataclass(frozen=True)
class CorpusSpec:
    key: str  # metric prefix ("ppl" for the main corpus)
    source: SourceSpec
    split: str
    languages: tuple[str, ...]
    max_windows: Optional[int] = None


@dataclass(frozen=True)
class SuiteSpec:
    """An eval suite as plain values (built by mlsweep.config.spec; sources are built when evaluated)."""

    name: str
    corpora: tuple[CorpusSpec, ...]  # the main corpus first
    seqlen: int
    batch_size: int
    tasks: tuple[str, ...] = ()  # lm-eval names, or project scorers `<scorer>_<lang>`
    limit: Optional[float] = None
    num_fewshot: int = 0
    include_paths: tuple[str, ...] = ()
    # per project scorer: source fields replacing those of its default data (mlsweep.evaluate.scorers)
    scorer_sources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        """The main corpus's languages (the suite's evaluation languages)."""
        return self.corpora[0].languages

    def only(self, lang: str) -> SuiteSpec:
        """The suite restricted to one evaluation language: its main corpus and its `_<lang>` tasks."""
        return replace(
            self,
            corpora=(replace(self.corpora[0], languages=(lang,)),),
            tasks=tuple(t for t in self.tasks if t.endswith(f"_{lang}")),
        )

    def scorer_source(self, scorer) -> SourceSpec:
        return replace(scorer.source, **self.scorer_sources.get(scorer.name, {}))

    def split_tasks(self) -> tuple[list[str], list[str]]:
        """(lm-eval tasks, project-scorer tasks)."""
        ours = [t for t in self.tasks if project_task(t) is not None]
        return [t for t in self.tasks if t not in ours], ours


def _prefix(key: str, metric: str) -> str:
    return metric if key == "ppl" else (key if metric == "ppl" else f"{key}_{metric}")


# Called with each language's or task's metrics as soon as they are computed (live logging).
OnMetrics = Callable[[dict[str, Any]], None]


def perplexities(
    model,
    tokenizer,
    corpus: CorpusSpec,
    seqlen: int,
    batch_size: int,
    calib_hashes: set[str],
    on_metrics: Optional[OnMetrics] = None,
) -> dict[str, Any]:
    source = make_source(corpus.source)
    out: dict[str, Any] = {}
    for lang in corpus.languages:
        docs = source.documents(lang, corpus.split)
        overlap = calib_hashes & {doc_hash(d) for d in docs}
        if overlap:
            raise RuntimeError(
                f"eval: {corpus.key} {corpus.split!r} ({lang}) shares {len(overlap)} documents "
                "with the calibration text; evaluation text must be held out"
            )
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


def run_project_task(model, tokenizer, task: str, suite: SuiteSpec) -> dict[str, Any]:
    scorer, lang = project_task(task)
    res = scorer.score(model, tokenizer, make_source(suite.scorer_source(scorer)), lang, suite.batch_size)
    return {f"{metric}/{task}": value for metric, value in res.items()}


def language_means(flat: dict[str, Any]) -> dict[str, float]:
    """Mean accuracy per language over the leaf tasks named `..._<lang>` (known codes only)."""

    by_lang: dict[str, list[float]] = {}
    for key, value in flat.items():
        lang = key.rsplit("_", 1)[-1]
        if key.startswith("acc/") and "_" in key and lang in LANGS:
            by_lang.setdefault(lang, []).append(value)
    return {f"acc_lang/{lang}": statistics.mean(v) for lang, v in by_lang.items()}


def evaluate(
    model, tokenizer, suite: SuiteSpec, calib_hashes: set[str], on_metrics: Optional[OnMetrics] = None
) -> dict[str, Any]:
    """Every corpus and task of the suite; `on_metrics` sees each language's / task's metrics as they finish."""
    out: dict[str, Any] = {}
    for corpus in suite.corpora:
        out.update(perplexities(model, tokenizer, corpus, suite.seqlen, suite.batch_size, calib_hashes, on_metrics))
    harness, ours = suite.split_tasks()
    flat: dict[str, Any] = {}
    if harness:
        flat.update(
            run_tasks(
                model,
                tokenizer,
                harness,
                batch_size=suite.batch_size,
                limit=suite.limit,
                num_fewshot=suite.num_fewshot,
                manager=task_manager(suite.include_paths),
            )
        )
        if on_metrics:  # lm-eval returns all its tasks at once
            on_metrics(dict(flat))
    for task in ours:
        flat.update(run_project_task(model, tokenizer, task, suite))
        if on_metrics:
            on_metrics({k: v for k, v in flat.items() if k.endswith(f"/{task}")})
    out.update(flat)
    out.update(language_means({k: v for k, v in flat.items() if k.startswith("acc/")}))
    return out
