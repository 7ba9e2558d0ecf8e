"""What a sweep folder already holds, so a relaunch only runs what is missing.

A sweep folder (outputs/<experiment>) is the study: every launch of the same
experiment fills it further. Each cell folder holds
- result.json, written atomically when the cell ends: `done` or `failed`;
- running.json while the cell runs (host, pid and its start time, SLURM job
  id): a cell killed mid-way leaves this marker and no result, so it reads as
  `killed` and is run again, never as finished; while its SLURM job or its
  local process (same host, same pid, same start time) is alive it reads as
  `running` and a relaunch skips it. A marker written on another host without
  a job id cannot be checked from here and reads as `killed`; the cell's lock
  (mlsweep.results.cellfolder.claim) still keeps a relaunch from running it
  twice while the first process lives.
A row that cannot be read (truncated, not a JSON object) is reported by its
path and counts as absent: its cell runs again, the bad file kept under attempts/.
The sweeper writes plan.json (every cell of the latest grid, with its id and
folder) and, when it submits without waiting, submitted.json (cell id -> job
id), so `mlsweep status` can tell `todo` from `queued`.

Cells are matched by cell id (a hash of what determines their numbers, see
mlsweep.config.spec.cell_id), not by folder name.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mlsweep.results.cellfolder import MARKER_FILE, RESULT_FILE, atomic_write_json, process_alive, read_row

PLAN_FILE = "plan.json"
SUBMITTED_FILE = "submitted.json"
STATUSES = ("done", "failed", "running", "queued", "killed", "todo")
ALIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING")


@dataclass
class CellState:
    status: str  # one of STATUSES
    path: Optional[Path] = None  # the cell folder
    error: Optional[str] = None  # first line of the error of a failed cell
    job_id: Optional[str] = None


def _read(path: Path) -> Optional[dict]:
    """The JSON object in `path`, or None when there is none; an unreadable file is named on stderr."""
    try:
        return read_row(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        print(f"[status] unreadable, counted as not done: {e}", file=sys.stderr, flush=True)
        return None


def alive_slurm_jobs(job_ids: Iterable[str]) -> set[str]:
    """The job ids among `job_ids` that SLURM still has pending or running (empty without SLURM)."""
    return queued_jobs(job_ids) or set()


def queued_jobs(job_ids: Iterable[str]) -> Optional[set[str]]:
    """The job ids among `job_ids` in SLURM's queue, alive; None when the queue cannot be asked.

    `-r` lists every array element on its own line: a pending array shows as `123_[1-3]` otherwise,
    and its elements would read as gone.
    """
    ids = sorted({str(j) for j in job_ids if j})
    if not ids:
        return set()
    if shutil.which("squeue") is None:
        return None
    try:
        proc = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(ids)], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        return None  # the controller did not answer; an id it no longer knows is an answer
    alive = set()
    for line in proc.stdout.split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1] in ALIVE_STATES:
            alive.add(parts[0])
    return alive


def scan(sweep_dir: Path, check_jobs: bool = True) -> dict[str, CellState]:
    """cell id -> its state, from the rows, markers and submissions under `sweep_dir`."""
    sweep_dir = Path(sweep_dir)
    states: dict[str, CellState] = {}
    markers: dict[str, CellState] = {}
    for path in sorted(sweep_dir.rglob(RESULT_FILE)):
        row = _read(path)
        if not row or not row.get("cell_id"):
            continue
        err = (row.get("error") or "").split("\n")[0] or None
        state = CellState(row.get("status", "failed"), path.parent, err)
        if states.get(row["cell_id"], CellState("todo")).status != "done":  # a done row anywhere wins
            states[row["cell_id"]] = state
    markers_raw: dict[str, dict] = {}
    for path in sorted(sweep_dir.rglob(MARKER_FILE)):
        marker = _read(path)
        if marker and marker.get("cell_id"):
            markers[marker["cell_id"]] = CellState("killed", path.parent, job_id=marker.get("job_id"))
            markers_raw[marker["cell_id"]] = marker
    submitted = _read(sweep_dir / SUBMITTED_FILE) or {}
    alive = alive_slurm_jobs([m.job_id for m in markers.values()] + list(submitted.values())) if check_jobs else set()
    for ident, m in markers.items():
        if states.get(ident, CellState("todo")).status == "done":
            continue
        m.status = "running" if _marker_alive(m, markers_raw[ident], alive) else "killed"
        states[ident] = m
    for ident, job in submitted.items():
        if ident not in states and str(job) in alive:
            states[ident] = CellState("queued", job_id=str(job))
    return states


def _marker_alive(state: CellState, marker: dict, alive_jobs: set[str]) -> bool:
    """A marker's cell still runs: its SLURM job is alive, or (no job) its process on this host is."""
    if state.job_id:
        return str(state.job_id) in alive_jobs
    return bool(process_alive(marker))


def still_active(state: Optional[CellState]) -> bool:
    return state is not None and state.status in ("done", "running", "queued")


def write_plan(sweep_dir: Path, cells: list[dict]) -> None:
    atomic_write_json(Path(sweep_dir) / PLAN_FILE, {"cells": cells})


def record_submissions(sweep_dir: Path, jobs: dict[str, str]) -> None:
    """Add cell id -> job id to submitted.json (kept across launches)."""
    path = Path(sweep_dir) / SUBMITTED_FILE
    known = _read(path) or {}
    known.update(jobs)
    atomic_write_json(path, known)


def sweep_status(sweep_dir: Path, check_jobs: bool = True) -> list[dict]:
    """One entry per planned cell (plus any cell found on disk but not in the plan), with its status."""
    sweep_dir = Path(sweep_dir)
    states = scan(sweep_dir, check_jobs)
    plan = (_read(sweep_dir / PLAN_FILE) or {}).get("cells", [])
    out, seen = [], set()
    for cell in plan:
        state = states.get(cell["cell_id"], CellState("todo"))
        out.append({**cell, "status": state.status, "error": state.error, "job_id": state.job_id})
        seen.add(cell["cell_id"])
    for ident, state in states.items():
        if ident not in seen:
            out.append(
                {
                    "cell_id": ident,
                    "cell": state.path.name if state.path else "?",
                    "status": state.status,
                    "error": state.error,
                    "job_id": state.job_id,
                }
            )
    return out


def format_status(entries: list[dict], sweep_dir: Path) -> str:
    counts = {s: sum(e["status"] == s for e in entries) for s in STATUSES}
    lines = [f"{sweep_dir}: {len(entries)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)]
    done = counts["done"]
    if entries:
        lines.append(f"progress: {done}/{len(entries)} ({100 * done / len(entries):.0f}%)")
    for e in entries:
        if e["status"] in ("failed", "killed", "running", "queued"):
            extra = f"  {e['error']}" if e.get("error") else (f"  job {e['job_id']}" if e.get("job_id") else "")
            lines.append(f"  {e['status']:<8} {e['cell']}{extra}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`mlsweep status <sweep folder> [...]`: progress, and the failures with their error lines."""

    ap = argparse.ArgumentParser(prog="mlsweep status", description=main.__doc__)
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true", help="print the entries as JSON")
    args = ap.parse_args(argv)
    bad = 0
    for folder in args.folders:
        if not folder.is_dir():
            raise SystemExit(
                f"mlsweep status: {folder} is not a folder (expected a sweep folder such as outputs/<experiment>)"
            )
        entries = sweep_status(folder)
        print(json.dumps(entries, indent=1, default=str) if args.json else format_status(entries, folder))
        bad += sum(e["status"] in ("failed", "killed") for e in entries)
    return 1 if bad else 0
