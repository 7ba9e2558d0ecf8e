"""The lm-eval requests of a suite, built and tokenised before any weight is loaded.

HFLM scores a loglikelihood request on its last max_length + 1 tokens: a
longer request has its context cut from the left with only a log warning, and
one whose continuation alone is longer than max_length fails with a bare
`AssertionError` (RESEARCH A1), after the pruning and the perplexity. So
validation builds every request of the suite the way the run will (the same
tasks, limit, few-shot seed and chat settings, through `run_harness`) with a
model-less HFLM: the tokenizer, plus a stand-in that only holds the config.
Its loglikelihood tokenises each request with lm-eval's own code
(`_encode_pair`) and records the lengths instead of calling a model. The
counts, per task, say which requests would be truncated (context + continuation
> max_length + 1; generation: context > max_length - max_gen_toks) and which
cannot be scored at all (the continuation or generation budget alone exceeds
max_length).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mlsweep.evaluate.harness import HarnessOptions, make_lm, run_harness
from mlsweep.evaluate.suite import SuiteSpec, eval_max_length
from mlsweep.evaluate.tasklist import harness_tasks, suite_manager
from mlsweep.modeling import load_config, load_tokenizer

# (model path, trust_remote_code, revision, the suite's request settings) -> {task: TaskLengths}: the dry
# pass runs once per process for a model and suite (the sweeper validates every cell; the cell reuses it).
_MEASURED: dict[tuple, dict[str, TaskLengths]] = {}


@dataclass(frozen=True)
class TaskLengths:
    """What the dry pass found for one task's requests (lengths in tokens)."""

    task: str
    requests: int
    truncated: int  # whose context would be cut from the left
    unscorable: int  # whose continuation alone exceeds max_length
    items: int  # documents with a truncated or unscorable request
    longest: int  # the longest request (context + continuation)


@lru_cache(maxsize=1)
def _dry_lm_class():
    from lm_eval.models.huggingface import HFLM  # noqa: PLC0415 (heavy (task index): only when tasks run)

    class DryLM(HFLM):
        """HFLM that tokenises requests exactly as HFLM does and records their lengths instead of scoring."""

        def loglikelihood(self, requests, disable_tqdm=False):
            out = []
            for req in requests:  # one at a time, so each recorded length knows its task and document
                self._request = req
                out += super().loglikelihood([req], disable_tqdm=True)
            return out

        def _loglikelihood_tokens(self, requests, disable_tqdm=False, override_bs=None):
            req = self._request
            for _, context, continuation in requests:
                self.seen.append((req.task_name, req.doc_id, len(context), len(continuation), self.max_length + 1))
            return [(0.0, False)] * len(requests)

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            return [0.0] * len(requests)  # rolling windows are cut to max_length by lm-eval itself

        def generate_until(self, requests, disable_tqdm=False):
            for req in requests:
                context, gen = req.args[0], (req.args[1] if len(req.args) > 1 else {}) or {}
                budget = int(gen.get("max_gen_toks", self.max_gen_toks))
                self.seen.append((req.task_name, req.doc_id, len(self.tok_encode(context)), budget, self.max_length))
            return [""] * len(requests)

    return DryLM


def measure(tokenizer, config, tasks: list[str], options: HarnessOptions, manager) -> dict[str, TaskLengths]:
    """{task: TaskLengths} of every request the run would send for these tasks (no model)."""
    import torch  # noqa: PLC0415 (torch is loaded by the caller already)

    stand_in = types.SimpleNamespace(config=config, device=torch.device("cpu"))
    lm = make_lm(stand_in, tokenizer, options, lm_class=_dry_lm_class())
    lm.seen = []
    run_harness(lm, tasks, options, manager)
    by_task: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tasks}
    for task, doc, n_ctx, n_cont, limit in lm.seen:
        by_task.setdefault(task, []).append((doc, n_ctx, n_cont, limit))
    out = {}
    for task, rows in by_task.items():
        long = [r for r in rows if r[1] + r[2] > r[3]]
        bad = [r for r in rows if r[2] > options.max_length]
        out[task] = TaskLengths(
            task=task,
            requests=len(rows),
            truncated=len(long),
            unscorable=len(bad),
            items=len({r[0] for r in long + bad}),
            longest=max((r[1] + r[2] for r in rows), default=0),
        )
    return out


def suite_lengths(path: str, trust_remote_code: bool, revision, suite: SuiteSpec) -> dict[str, TaskLengths]:
    """The dry pass over the suite's lm-eval tasks (all of them: every per-language pass runs a subset)."""
    key = (
        path,
        trust_remote_code,
        revision,
        suite.tasks,
        suite.include_paths,
        suite.languages,
        suite.per_language,
        suite.seqlen,
        suite.harness_options(0),
    )
    if key not in _MEASURED:
        tasks = harness_tasks(suite)
        if not tasks:
            return {}
        config = load_config(path, trust_remote_code, revision)
        options = suite.harness_options(eval_max_length(config, suite))
        tokenizer = load_tokenizer(path, trust_remote_code, revision)
        _MEASURED[key] = measure(tokenizer, config, tasks, options, suite_manager(suite))
    return _MEASURED[key]


def check_lengths(lengths: dict[str, TaskLengths], max_length: int, truncate_long: bool, context: int) -> None:
    """Raise ValueError naming the tasks whose requests do not fit (or cannot be scored at all)."""
    bad = [t for t in lengths.values() if t.unscorable]
    if bad:
        raise ValueError(
            "eval.tasks: answers longer than the evaluation context (eval.max_length resolved to "
            f"{max_length} tokens) cannot be scored, truncated or not: "
            + "; ".join(f"{t.task}: {t.unscorable} of {t.requests} requests ({t.items} items)" for t in bad)
            + f". Raise eval.max_length (the model's context is {context}) or drop these tasks"
        )
    long = [t for t in lengths.values() if t.truncated]
    if long and not truncate_long:
        raise ValueError(
            f"eval.tasks: requests longer than the evaluation context (eval.max_length resolved to {max_length} "
            "tokens): "
            + "; ".join(
                f"{t.task}: {t.truncated} of {t.requests} requests ({t.items} items), up to {t.longest} tokens"
                for t in long
            )
            + ". lm-eval would cut their contexts from the left; set eval.truncate_long=true to accept that "
            f"(counted in the row as truncated/<task>), raise eval.max_length (at most {context}), or drop these tasks"
        )
