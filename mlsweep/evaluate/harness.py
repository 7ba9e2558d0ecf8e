"""Downstream tasks through lm-evaluation-harness on the in-memory (pruned) model.

Guards against the harness's known traps:
- no response cache (`use_cache=None`, `cache_requests=False`): its sqlite
  cache is keyed by request, not by model, and would hand one cell's answers
  to the next;
- an explicit integer batch size, never "auto", so a size found for one
  task or model is never carried to the next;
- a fresh HFLM wrapper per call, the model put in eval mode on its device
  and dtype before it is wrapped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from mlsweep import PACKAGE_DIR
from mlsweep.registry import suggest

PROJECT_TASKS = PACKAGE_DIR / "evaluate" / "tasks"


def task_manager(include_paths: Iterable[str | Path] = ()):
    """The task index (built once per process and include path: indexing lm-eval's tasks takes seconds)."""
    return _task_manager((str(PROJECT_TASKS), *map(str, include_paths)))


@lru_cache(maxsize=8)
def _task_manager(paths: tuple[str, ...]):
    from lm_eval.tasks import TaskManager  # noqa: PLC0415 (heavy (task index): only when tasks run)

    return TaskManager(include_path=list(paths), include_defaults=True, verbosity="ERROR")


def run_tasks(
    model,
    tokenizer,
    tasks: list[str],
    *,
    batch_size: int,
    limit: Optional[float] = None,
    num_fewshot: int = 0,
    seed: int = 1234,
    manager=None,
) -> dict[str, Any]:
    """Run lm-eval tasks; returns flat metrics `acc/<task>`, `acc_stderr/<task>`, `n/<task>`."""
    import lm_eval  # noqa: PLC0415 (heavy (task index): only when tasks run)
    from lm_eval.models.huggingface import HFLM  # noqa: PLC0415 (heavy (task index): only when tasks run)

    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"eval.batch_size={batch_size!r}: an explicit positive integer is required")
    model.eval()
    param = next(model.parameters())
    lm = HFLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        max_batch_size=batch_size,
        device=str(param.device),
        dtype=param.dtype,
    )
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=list(tasks),
        num_fewshot=num_fewshot,
        limit=limit,
        use_cache=None,
        cache_requests=False,
        log_samples=False,
        task_manager=manager or task_manager(),
        bootstrap_iters=1000,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    return flatten(out)


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


def _leaf_configs(manager, name: str, seen: set[str]) -> list[dict]:
    entry = manager.task_index.get(name)
    if entry is None or name in seen:
        return []
    seen.add(name)
    cfg = entry.cfg or {}
    children = cfg.get("task") if isinstance(cfg.get("task"), list) else None
    if children is None:
        return [cfg]
    out = []
    for child in children:
        out += _leaf_configs(manager, child if isinstance(child, str) else child.get("task", ""), seen)
    return out


def check_tasks(tasks: list[str], include_paths: Iterable[str | Path] = ()) -> None:
    """Fail before pruning: unknown task names, or hub datasets missing while offline."""

    manager = task_manager(include_paths)
    for t in tasks:
        if t not in manager.all_tasks:
            raise ValueError(f"eval.tasks: {t!r} is not an lm-eval task or group.{suggest(t, manager.all_tasks)}")
    if os.environ.get("HF_DATASETS_OFFLINE") != "1" and os.environ.get("HF_HUB_OFFLINE") != "1":
        return
    missing = []
    for cfg in [c for t in tasks for c in _leaf_configs(manager, t, set())]:
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
