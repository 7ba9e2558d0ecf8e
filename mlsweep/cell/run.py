"""The grid cell: load -> calibrate -> prune -> check sparsity -> evaluate -> write the row.

`run_cell(spec, out_dir)` takes a CellSpec (plain values, mlsweep.config.spec)
and never sees the config object. Whatever happens, the cell ends by writing
result.json atomically: status `done` with the metrics, or `failed` with the
error (and the traceback beside it in error.txt). A config that could not
become a CellSpec is recorded the same way by `run_invalid`.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import time
import traceback
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from mlsweep import tracking
from mlsweep.cell.jobenv import job_id, job_threads
from mlsweep.cell.progress import Progress
from mlsweep.cell.prune import prune_and_evaluate
from mlsweep.config.spec import CellSpec
from mlsweep.config.validate import check_device, validate
from mlsweep.results.cellfolder import (
    MARKER_FILE,
    RESULT_FILE,
    CellHeld,
    atomic_write_json,
    claim,
    finished_row,
    process_identity,
)
from mlsweep.results.items import ITEMS_FILE, Items, save_items
from mlsweep.results.row import provenance

CHECKPOINT_DIR = "checkpoint"  # per-block pruning checkpoint of a cell (removed once the cell is done)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _peak_memory() -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_cell(spec: CellSpec, out_dir: Path, label: str = "cell") -> dict[str, Any]:
    """Run one cell and write its row; its tracker run, if it started one, is always closed."""
    tracker = tracking.Guarded(label)
    row = None
    try:
        row = _run_cell(spec, Path(out_dir), label, tracker)
        return row
    finally:
        tracker.finish(row)  # exit code 0 for a done row, 1 for a failed or interrupted cell (no row)


def run_invalid(error: Exception, config: Mapping[str, Any], out_dir: Path, label: str = "cell") -> dict[str, Any]:
    """The failed row of a config that could not become a CellSpec (nothing was loaded)."""
    out_dir = Path(out_dir)
    progress = Progress(label, out_dir)
    row: dict[str, Any] = {"cell_id": None}
    _record_failure(row, error, progress)
    return _finish(row, progress, config, _now())


def _record_failure(row: dict[str, Any], error: Exception, progress: Progress) -> None:
    row["status"] = "failed"
    row["error"] = f"{type(error).__name__}: {error}"
    progress.out_dir.mkdir(parents=True, exist_ok=True)
    (progress.out_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
    progress.line("FAILED", row["error"])


def _finish(row: dict[str, Any], progress: Progress, config: Mapping[str, Any], started: str) -> dict[str, Any]:
    """Timings, resources and provenance, then the row on disk (atomically) and the marker removed."""
    out_dir = progress.out_dir
    row.update({f"time/{k}_s": round(v, 3) for k, v in progress.seconds.items()})
    row["time/total_s"] = round(time.perf_counter() - progress.start, 3)
    row.update(_peak_memory())
    row.update({"threads": torch.get_num_threads(), "job_id": job_id()})
    row.update(provenance())
    row.update({"started_at": started, "finished_at": _now(), "config": tracking.redact(dict(config))})
    atomic_write_json(out_dir / RESULT_FILE, row)
    (out_dir / MARKER_FILE).unlink(missing_ok=True)
    if row["status"] == "done":
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    progress.line(row["status"], str(out_dir / RESULT_FILE))
    return row


def _run_cell(spec: CellSpec, out_dir: Path, label: str, tracker: tracking.Guarded) -> dict[str, Any]:
    """Run one cell and write its row; never raises for a cell-level failure.

    The cell holds its folder's lock while it runs: a second launch of the same
    sweep that reaches the cell meanwhile gets a `held` status (no row written)
    instead of running it twice or resuming from the live cell's checkpoint.
    """
    progress = Progress(label, out_dir)
    try:
        with claim(out_dir):
            return _run_claimed(spec, progress, tracker)
    except CellHeld as e:
        progress.line("skip", str(e))
        return {"cell_id": spec.cell_id, "status": "held", "error": str(e)}


def _run_claimed(spec: CellSpec, progress: Progress, tracker: tracking.Guarded) -> dict[str, Any]:
    """The cell in its claimed folder.

    A cell whose folder already holds its `done` row returns that row at once
    (a requeued or re-launched job); a failed row is kept under attempts/ and
    the cell runs again. While it runs, running.json marks the folder, so a
    killed cell is never mistaken for a finished one.
    """
    out_dir, label = progress.out_dir, progress.label
    finished = finished_row(out_dir, spec.cell_id)
    if finished is not None:
        progress.line("skip", f"already done: {out_dir / RESULT_FILE}")
        return finished
    started = _now()
    atomic_write_json(
        out_dir / MARKER_FILE,
        {"cell_id": spec.cell_id, **process_identity(), "job_id": job_id(), "started_at": started},
    )
    row: dict[str, Any] = {"cell_id": spec.cell_id, "status": "running", "error": None, **spec.axes}
    try:
        with progress.stage("validate"):
            check_device(spec.model.device)
            validate(spec)
        _start_tracker(spec, out_dir, label, tracker)
        row.update(_execute(spec, progress, tracker))
        _check_finite(row)
        row["status"] = "done"
    except Exception as e:  # the row records it; the sweep goes on
        _record_failure(row, e, progress)
    return _finish(row, progress, spec.config, started)


METRIC_HEADS = ("ppl", "bpb", "bpc", "acc", "acc_norm", "acc_lang", "sparsity_measured")


def _check_finite(row: dict[str, Any]) -> None:
    """A metric that cannot be right (NaN, infinity) fails the cell instead of reaching a table.

    NaN weights (a broken checkpoint, an fp16 overflow) give NaN perplexities
    that a mean over languages would spread silently; standard errors are not
    checked, lm-eval reports NaN for them legitimately on one item.
    """
    bad = [
        f"{k}={v}"
        for k, v in row.items()
        if isinstance(v, float) and (k.split("/")[0] in METRIC_HEADS or k.startswith("ppl_")) and not math.isfinite(v)
    ]
    if bad:
        raise FloatingPointError(
            f"metrics not finite: {', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''} "
            "(check the model's weights and model.dtype)"
        )


def _start_tracker(spec: CellSpec, out_dir: Path, label: str, into: tracking.Guarded) -> None:
    """Mirror the cell to its tracker (plain values only); a problem leaves the cell untracked, never failed."""
    try:
        parts = label.split(" ", 2)  # "cell 3/17 <overrides>" in a sweep, else "cell"
        run = tracking.CellRun(
            name=parts[2] if len(parts) == 3 and parts[2] else spec.cell_id,
            cell_id=spec.cell_id,
            tags=[f"{k}={v}" for k, v in spec.axes.items() if k != "pruner_params"],
            config=tracking.redact(dict(spec.resolved)),
            out_dir=out_dir,
            label=label,
        )
    except Exception as e:
        into.fail(e)
        return
    tracking.start(spec.logger.name, run, dict(spec.logger.options), into)


def _execute(spec: CellSpec, progress: Progress, tracker: tracking.Guarded) -> dict[str, Any]:
    threads = job_threads(spec.runtime.threads)
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    items: Items = {}  # per-item results of every pass, saved beside the row (mlsweep.results.items)
    if len(spec.passes) == 1:
        out = prune_and_evaluate(spec, spec.passes[0], progress, tracker.log, _checkpoint_dir(spec, progress), items)
        save_items(progress.out_dir / ITEMS_FILE, items)
        return out
    out: dict[str, Any] = {}
    measured, fallback = [], 0
    for p in spec.passes:  # e.g. the diagonal of Kurz et al.: calibrate in each evaluation language
        res = prune_and_evaluate(spec, p, progress, tracker.log, _checkpoint_dir(spec, progress, p.label), items)
        measured.append(res.pop("sparsity_measured"))
        fallback += res.pop("experts_fallback")
        out.update(res)
    out["sparsity_measured"] = sum(measured) / len(measured)
    out["experts_fallback"] = fallback  # over every pass's pruning
    save_items(progress.out_dir / ITEMS_FILE, items)
    return out


def _checkpoint_dir(spec: CellSpec, progress: Progress, label: Optional[str] = None) -> Optional[Path]:
    """Where this cell's per-block checkpoint goes (one folder per pass), if it keeps one."""
    if not spec.checkpoints:
        return None
    return progress.out_dir / CHECKPOINT_DIR / (f"{spec.cell_id}-{label}" if label else spec.cell_id)
