"""Downstream tasks through lm-evaluation-harness on the in-memory (pruned) model.

Guards against the harness's known traps:
- no response cache (`use_cache=None`, `cache_requests=False`): its sqlite
  cache is keyed by request, not by model, and would hand one cell's answers
  to the next;
- an explicit integer batch size, never "auto", so a size found for one
  task or model is never carried to the next;
- an explicit `max_length` (HFLM otherwise guesses it from the config and
  never checks it against the model);
- the chat template, system instruction and multi-turn few-shot setting are
  explicit suite options, recorded in the row (lm-eval's results do not say);
- a fresh HFLM wrapper per call, the model in eval mode; its input device is
  where the input embeddings compute (a model spread over devices by
  `model.device_map` has no single device). Its request tokenisations are
  kept with the tokenizer for the process's next cell (mlsweep.evaluate.tokcache).

`run_harness` is `lm_eval.simple_evaluate` without its fixed costs (RESEARCH
A6: a TaskManager of its own, torch's environment report, `git describe`, a
hub query for the model's card): the same seeding, few-shot settings and
`evaluate()` call, so the results are identical (tested).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mlsweep.devicemap import input_device
from mlsweep.evaluate.taskindex import task_manager
from mlsweep.evaluate.tasklist import PROJECT_TASKS
from mlsweep.evaluate.tokcache import memo_lm_class
from mlsweep.modeling import context_length
from mlsweep.registry import suggest

DEFAULT_MAX_LENGTH = 2048  # lm-eval's own fallback for a model without a fixed context (RESEARCH A1)
SEED = 1234  # python, numpy, torch and few-shot sampling seeds (lm-eval's default for all but python's)


@dataclass(frozen=True)
class HarnessOptions:
    """How lm-eval runs a suite's tasks (the `eval` fields of the same names)."""

    batch_size: int
    max_length: int  # tokens per request (context + continuation)
    limit: Optional[float] = None
    num_fewshot: int = 0
    apply_chat_template: bool = False
    system_instruction: Optional[str] = None
    fewshot_as_multiturn: bool = True
    seed: int = SEED


def make_lm(model, tokenizer, options: HarnessOptions, lm_class=None):
    """An HFLM around the model (or, for a dry pass, a stand-in with a `config` and a `device`)."""
    from lm_eval.models.huggingface import HFLM  # noqa: PLC0415 (heavy (task index): only when tasks run)

    if not isinstance(options.batch_size, int) or options.batch_size <= 0:
        raise ValueError(f"eval.batch_size={options.batch_size!r}: an explicit positive integer is required")
    if hasattr(model, "eval"):
        model.eval()
    lm = (lm_class or memo_lm_class(HFLM))(
        pretrained=model,
        tokenizer=tokenizer,
        backend="causal",
        batch_size=options.batch_size,
        max_batch_size=options.batch_size,
        max_length=options.max_length,
    )
    lm._device = input_device(model)  # HFLM takes the first parameter's, which may sit on disk or meta
    return lm


def run_harness(lm, tasks: list[str], options: HarnessOptions, manager, log_samples: bool = False) -> dict[str, Any]:
    """lm-eval's results dict for these tasks: simple_evaluate's steps minus its fixed costs."""
    import numpy as np  # noqa: PLC0415 (heavy: only when tasks run)
    import torch  # noqa: PLC0415 (heavy: only when tasks run)
    from lm_eval.evaluator import evaluate  # noqa: PLC0415 (heavy (task index): only when tasks run)

    random.seed(options.seed)
    np.random.seed(options.seed)
    torch.manual_seed(options.seed)
    loaded = manager.load(list(tasks))
    for task in loaded["tasks"].values():
        if task.get_config("num_fewshot") != 0:  # a task whose YAML says 0 keeps 0, as in simple_evaluate
            task.set_config(key="num_fewshot", value=options.num_fewshot)
        task.set_fewshot_seed(seed=options.seed)
    return evaluate(
        lm=lm,
        task_dict=loaded,
        limit=options.limit,
        cache_requests=False,
        bootstrap_iters=1000,
        log_samples=log_samples,  # per-sample results, for items.npz
        system_instruction=options.system_instruction,
        apply_chat_template=options.apply_chat_template,
        fewshot_as_multiturn=options.fewshot_as_multiturn,
    )


def run_tasks(
    model,
    tokenizer,
    tasks: list[str],
    options: Optional[HarnessOptions] = None,
    manager=None,
    items: Optional[dict] = None,
    **fields: Any,
) -> dict[str, Any]:
    """Run lm-eval tasks on the model; flat metrics `acc/<task>`, `acc_stderr/<task>`, `n/<task>`.

    `options`, or HarnessOptions' fields as keywords (`batch_size=16, limit=40`; max_length defaults to
    the model's context, else DEFAULT_MAX_LENGTH). `items`, when given, receives each leaf task's
    per-item correctness (lm-eval's `log_samples`): `acc/<task>` (and `acc_norm/<task>`) ->
    {doc_id, correct} (mlsweep.results.items).
    """
    if options is None:
        context = context_length(model.config) or DEFAULT_MAX_LENGTH
        options = HarnessOptions(**{"batch_size": 8, "max_length": context, **fields})
    lm = make_lm(model, tokenizer, options)
    out = run_harness(lm, tasks, options, manager or task_manager((PROJECT_TASKS,)), log_samples=items is not None)
    if items is not None:
        items.update(per_item(out))
    return flatten(out)


PER_ITEM_METRICS = ("acc", "acc_norm")


def per_item(out: dict[str, Any]) -> dict[str, Any]:
    """{`<metric>/<task>`: {doc_id, correct}} from lm-eval's samples (`log_samples=True`)."""
    from mlsweep.results.items import choice_items  # noqa: PLC0415 (numpy arrays only when items are kept)

    found: dict[str, Any] = {}
    for task, rows in out.get("samples", {}).items():
        for metric in PER_ITEM_METRICS:
            kept = [r for r in rows if r.get("filter") == "none" and metric in r]
            if kept:
                found[f"{metric}/{task}"] = choice_items([r["doc_id"] for r in kept], [r[metric] for r in kept])
    return found


def flatten(out: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    samples = out.get("n-samples", {})
    for section in ("results", "groups"):
        for task, metrics in out.get(section, {}).items():
            for key, value in metrics.items():
                if "," not in key or not isinstance(value, (int, float)):
                    continue
                metric, filt = key.split(",", 1)
                name = metric if filt == "none" else f"{metric}[{filt}]"
                flat[f"{name}/{task}"] = value
            if task in samples:
                flat[f"n/{task}"] = samples[task].get("effective")
    return flat


_FILE_BUILDERS = {"json", "csv", "text", "parquet", "arrow"}


def check_include_paths(include_paths: Iterable[str | Path]) -> None:
    """Each eval.include_paths folder exists (lm-eval would index nothing and report its tasks unknown)."""
    for i, folder in enumerate(include_paths):
        if not Path(folder).expanduser().is_dir():
            raise ValueError(f"eval.include_paths[{i}]={str(folder)!r}: folder does not exist")


def check_tasks(tasks: list[str], manager) -> None:
    """Every name is an lm-eval task, group or tag (with a did-you-mean)."""
    for t in tasks:
        if t not in manager.all_tasks:
            raise ValueError(f"eval.tasks: {t!r} is not an lm-eval task or group.{suggest(t, manager.all_tasks)}")


def check_datasets(leaf_tasks: list[str], manager) -> None:
    """Offline (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE): every hub dataset the tasks read is cached."""
    if os.environ.get("HF_DATASETS_OFFLINE") != "1" and os.environ.get("HF_HUB_OFFLINE") != "1":
        return
    missing = []
    for task in leaf_tasks:
        entry = manager.task_index.get(task)
        cfg = (entry.cfg if entry is not None else None) or {}
        path, name = cfg.get("dataset_path"), cfg.get("dataset_name")
        if not path or "custom_dataset" in cfg or path in _FILE_BUILDERS:
            continue
        try:
            import datasets  # noqa: PLC0415 (heavy (pyarrow): only when a hub dataset is read)

            datasets.load_dataset_builder(path, name)
        except Exception:
            missing.append(f"{path}" + (f" --config {name}" if name else ""))
    if missing:
        cmds = "\n  ".join(f"python -m mlsweep.data.download {m}" for m in sorted(set(missing)))
        raise ValueError(
            f"eval.tasks: the hub is offline and these datasets are not cached: "
            f"{', '.join(sorted(set(missing)))}. Download them first on a machine with network:\n  {cmds}"
        )
