"""`logger=wandb`: one Weights & Biases run per cell.

A W&B run is what W&B compares, filters and groups; a cell is what mlsweep
compares. So each cell is one run, grouped by sweep (`logger.group`, the
experiment name by default) and tagged with its axes as `key=value`, and the
W&B UI slices a sweep the way `mlsweep.report` does. Logged:
- config: the resolved cell config, credential-looking keys removed;
- history, as it happens: `prune/block_sparsity` and `prune/block_seconds`
  per decoder block (x axis `prune/block`), then each language's perplexity
  metrics and each task's accuracy as they finish;
- summary: the final result row (without its nested `config`), and
  `results_by_language`, a table with one row per language;
- exit code 0 for a done cell, 1 for a failed or interrupted one.

Several cells in one process (the local launcher) get a run each: a run left
open is finished before the next starts (`reinit="finish_previous"`), and each
cell finishes its own run in a `finally`.

The network never holds a cell up: `online` waits at most `init_timeout`
seconds for the server, then writes the run offline into the cell's folder
(upload it later with `wandb sync <dir>/wandb/offline-run-*`), and at the end
waits at most `finish_timeout` seconds for uploads. The API key is read by
wandb itself (WANDB_API_KEY or `wandb login`), never from the config.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from mlsweep.tracking import TRACKERS, CellRun, TrackerSpec, redact_text
from mlsweep.tracking.none import NoTracker

MODES = ("online", "offline", "disabled")
MAX_TAG = 64  # characters: W&B rejects longer tags
# Row keys `<metric>/<lang>` whose suffixes name the languages of the per-language table.
LANGUAGE_METRICS = ("ppl", "acc_lang")
NOT_PER_LANGUAGE = ("acc", "acc_norm", "acc_stderr", "acc_norm_stderr", "n", "time", "version")


def start(
    run: CellRun,
    *,
    mode: str = "online",
    project: str = "mlsweep",
    entity: Optional[str] = None,
    group: Optional[str] = None,
    job_type: str = "cell",
    tags: Sequence[str] = (),
    dir: Optional[str] = None,
    init_timeout: float = 30.0,
    finish_timeout: float = 120.0,
) -> Any:
    if mode == "disabled":  # nothing imported, nothing written
        return NoTracker()
    if mode not in MODES:
        raise ValueError(f"logger.mode={mode!r}: allowed values are {', '.join(MODES)}")
    import wandb  # noqa: PLC0415 (heavy: only when logging to W&B)

    root = Path(dir) if dir else run.out_dir
    root.mkdir(parents=True, exist_ok=True)
    args = dict(
        project=project,
        entity=entity,
        group=group,
        job_type=job_type,
        name=run.name,
        tags=[t[:MAX_TAG] for t in [*run.tags, *tags]],
        config=run.config,
        dir=str(root),
        reinit="finish_previous",
    )
    # console off: the cell's own log is in its folder, and wrapping stdout once per cell is what we avoid;
    # quiet: besides less chatter, wandb then skips two account look-ups (5 s each when the server is unreachable)
    settings = dict(init_timeout=init_timeout, finish_timeout=finish_timeout, console="off", quiet=True)
    try:
        wb = wandb.init(mode=mode, settings=wandb.Settings(**settings), **args)
    except Exception as e:
        if mode != "online":
            raise
        wb = wandb.init(mode="offline", settings=wandb.Settings(**settings), **args)
        message = redact_text(f"{type(e).__name__}: {e}".strip().splitlines()[0])
        print(
            f"[{run.label}] wandb    online start failed ({message}); logging offline, upload later with: "
            f"wandb sync {Path(wb.dir).parent}",
            file=sys.stderr,
            flush=True,
        )
    return WandbTracker(wb)


class WandbTracker:
    def __init__(self, run: Any):
        self.run = run
        run.define_metric("prune/block", hidden=True, summary="none")
        run.define_metric("prune/block_*", step_metric="prune/block", summary="none")

    def log(self, metrics: dict[str, Any]) -> None:
        self.run.log(metrics)

    def finish(self, row: Optional[dict[str, Any]]) -> None:
        try:
            if row is not None:
                import wandb  # noqa: PLC0415 (heavy: only when logging to W&B)

                columns, rows = language_table(row)
                if rows:
                    self.run.log({"results_by_language": wandb.Table(columns=columns, data=rows)})
                self.run.summary.update({k: v for k, v in row.items() if k != "config"})
        finally:
            self.run.finish(exit_code=0 if row is not None and row.get("status") == "done" else 1)


def language_table(row: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The row's `<metric>/<lang>` values as a table: one row per language, one column per metric.

    Languages are the suffixes of `ppl/`, `ppl_<corpus>/` and `acc_lang/` keys;
    per-task and provenance keys (`acc/<task>`, `time/...`) stay out.
    """
    split = [(k.split("/", 1)[0], k.split("/", 1)[1]) for k in row if "/" in k]
    langs = sorted({lang for metric, lang in split if metric in LANGUAGE_METRICS or metric.startswith("ppl_")})
    metrics = sorted({metric for metric, lang in split if lang in langs and metric not in NOT_PER_LANGUAGE})
    rows = [[lang] + [row.get(f"{m}/{lang}") for m in metrics] for lang in langs]
    return ["language"] + metrics, rows


def check(options: dict[str, Any]) -> None:
    """A known mode and positive timeouts (a tracker never fails a running cell, so this runs before)."""
    if options.get("mode", "online") not in MODES:
        raise ValueError(f"logger.mode={options.get('mode')!r}: allowed values are {', '.join(MODES)}")
    for key in ("init_timeout", "finish_timeout"):
        if key in options and options[key] <= 0:
            raise ValueError(f"logger.{key}={options[key]}: must be a positive number of seconds")


TRACKERS.register("wandb", TrackerSpec("wandb", start, check))
