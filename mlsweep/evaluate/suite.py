"""An eval suite run on the (pruned) model: perplexity corpora, lm-eval tasks, project scorers.

Row keys: `ppl/<lang>` `bpb/<lang>` `bpc/<lang>` `eval_tokens/<lang>`
`eval_windows/<lang>` for the suite's main corpus (`<key>/<lang>` ... for the
others); `acc/<task>`, `acc_stderr/<task>`, `n/<task>` (and `acc_norm` where
lm-eval gives it) for tasks; `acc_lang/<lang>`: the mean accuracy of the
tasks of one language (the language at the end of a task's name, in any of
ISO 639-1, 639-3 or FLORES spellings: mlsweep.evaluate.tasklist). Which
tasks run (groups expanded to the suite's languages, one language per
`calib=target` pass) is mlsweep.evaluate.tasklist's; how lm-eval runs them
(max_length, chat template) is `harness_options`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from mlsweep.data.calibration import doc_hash
from mlsweep.data.sources import SourceSpec, make_source
from mlsweep.evaluate.harness import HarnessOptions, run_tasks
from mlsweep.evaluate.perplexity import join_documents, text_perplexity
from mlsweep.evaluate.scorers import project_task
from mlsweep.evaluate.tasklist import harness_tasks, scorer_tasks, suite_manager, task_language
from mlsweep.modeling import context_length
from mlsweep.results.items import Items, choice_items, window_items


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
    max_length: Optional[int] = None  # lm-eval tokens per request; None: the model's context (eval_max_length)
    apply_chat_template: bool = False  # lm-eval's default: prompts as plain text
    system_instruction: Optional[str] = None
    fewshot_as_multiturn: bool = True  # with a chat template: each few-shot example its own turn
    truncate_long: bool = False  # requests longer than max_length: refused at validation, or left-truncated
    per_language: bool = False  # one pass of calib=target: only the tasks of its one language

    @property
    def languages(self) -> tuple[str, ...]:
        """The main corpus's languages (the suite's evaluation languages)."""
        return self.corpora[0].languages

    def only(self, lang: str) -> SuiteSpec:
        """The suite restricted to one evaluation language: its main corpus and its tasks of that language."""
        return replace(self, corpora=(replace(self.corpora[0], languages=(lang,)),), per_language=True)

    def scorer_source(self, scorer) -> SourceSpec:
        return replace(scorer.source, **self.scorer_sources.get(scorer.name, {}))

    def harness_options(self, max_length: int) -> HarnessOptions:
        return HarnessOptions(
            batch_size=self.batch_size,
            max_length=max_length,
            limit=self.limit,
            num_fewshot=self.num_fewshot,
            apply_chat_template=self.apply_chat_template,
            system_instruction=self.system_instruction,
            fewshot_as_multiturn=self.fewshot_as_multiturn,
        )

    def settings(self, max_length: int) -> dict[str, Any]:
        """The lm-eval settings the row records (lm-eval's own results do not say them)."""
        return {
            "eval_max_length": max_length,
            "eval_chat_template": self.apply_chat_template,
            "eval_system_instruction": self.system_instruction,
            "eval_fewshot_as_multiturn": self.fewshot_as_multiturn,
            "eval_truncate_long": self.truncate_long,
        }


def eval_max_length(config, suite: SuiteSpec) -> int:
    """Tokens per lm-eval request: eval.max_length, else the model's context, else (ALiBi, no fixed
    context: BLOOM) the suite's seqlen. Validation holds eval.max_length to the model's context."""
    return suite.max_length or context_length(config) or suite.seqlen


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
    items: Optional[Items] = None,
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
        try:
            res = text_perplexity(model, tokenizer, join_documents(docs), seqlen, batch_size, corpus.max_windows)
        except ValueError as e:  # too little text: name the corpus, language and split
            raise ValueError(f"eval: {corpus.key} {corpus.split!r} ({lang}): {e}") from e
        out[f"{_prefix(corpus.key, 'ppl')}/{lang}"] = res.ppl
        if items is not None:
            items[f"{_prefix(corpus.key, 'ppl')}/{lang}"] = window_items(res.window_nll, res.window_tokens)
        out[f"{_prefix(corpus.key, 'bpb')}/{lang}"] = res.bits_per_byte
        out[f"{_prefix(corpus.key, 'bpc')}/{lang}"] = res.bits_per_char
        tokens_key = "eval_tokens" if corpus.key == "ppl" else f"{corpus.key}_tokens"
        out[f"{tokens_key}/{lang}"] = res.tokens
        out[f"{tokens_key.replace('tokens', 'windows')}/{lang}"] = res.windows
        if on_metrics:
            on_metrics({k: v for k, v in out.items() if k.endswith(f"/{lang}")})
    return out


def run_project_task(model, tokenizer, task: str, suite: SuiteSpec, items: Optional[Items] = None) -> dict[str, Any]:
    scorer, lang = project_task(task)
    res = scorer.score(model, tokenizer, make_source(suite.scorer_source(scorer)), lang, suite.batch_size)
    per_item = res.pop("items", None)  # {metric: (doc_ids, 0/1 per item)}
    if items is not None and per_item:
        items.update({f"{metric}/{task}": choice_items(*pair) for metric, pair in per_item.items()})
    return {f"{metric}/{task}": value for metric, value in res.items()}


def language_means(flat: dict[str, Any], languages: tuple[str, ...] = ()) -> dict[str, float]:
    """Mean accuracy per language over the tasks whose names end in a language code (any spelling;
    the suite's own spelling where the code is one of `languages`: belebele_zho_Hans counts for zh)."""

    by_lang: dict[str, list[float]] = {}
    for key, value in flat.items():
        if not key.startswith("acc/"):
            continue
        lang = task_language(key[len("acc/") :], languages)
        if lang is not None:
            by_lang.setdefault(lang, []).append(value)
    return {f"acc_lang/{lang}": statistics.mean(v) for lang, v in by_lang.items()}


def evaluate(
    model,
    tokenizer,
    suite: SuiteSpec,
    calib_hashes: set[str],
    on_metrics: Optional[OnMetrics] = None,
    items: Optional[Items] = None,
) -> dict[str, Any]:
    """Every corpus and task of the suite; `on_metrics` sees each language's / task's metrics as they finish.

    `items`, when given, receives the per-item results behind the metrics (mlsweep.results.items).
    """
    out: dict[str, Any] = {}
    for corpus in suite.corpora:
        out.update(
            perplexities(model, tokenizer, corpus, suite.seqlen, suite.batch_size, calib_hashes, on_metrics, items)
        )
    flat: dict[str, Any] = {}
    harness = harness_tasks(suite) if suite.tasks else []
    if harness:
        options = suite.harness_options(eval_max_length(model.config, suite))
        flat.update(run_tasks(model, tokenizer, harness, options, suite_manager(suite), items=items))
        if on_metrics:  # lm-eval returns all its tasks at once
            on_metrics(dict(flat))
    for task in scorer_tasks(suite):
        flat.update(run_project_task(model, tokenizer, task, suite, items))
        if on_metrics:
            on_metrics({k: v for k, v in flat.items() if k.endswith(f"/{task}")})
    out.update(flat)
    out.update(language_means({k: v for k, v in flat.items() if k.startswith("acc/")}, suite.languages))
    return out
