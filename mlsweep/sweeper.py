"""The mlsweep sweeper's logic: Hydra's grid, composed and checked before anything runs.

On top of Hydra's basic sweeper (cartesian product of `hydra.sweeper.params`
and the command line), it
- composes and validates every cell first, so a bad value anywhere in the grid
  fails the sweep before the first model is loaded;
- folds cells that compute the same thing: a pruner that uses no calibration
  data ignores the calib axis, the dense baseline ignores sparsity too, so the
  grid `pruner=dense,wanda x calib=... x sparsity=...` runs dense once;
- keeps going when a cell fails (the cell writes a `failed` row) and reports
  the failures at the end, with a non-zero exit;
- skips cells whose `done` row is already in the sweep folder, or whose SLURM
  job is still queued or running, so launching a sweep again only runs what is
  missing (failed and killed cells; mlsweep.lifecycle);
- with `hydra.sweeper.plan_only=true` (`mlsweep plan`) prints every cell with
  its status and estimated cost instead of running anything.

Hydra only instantiates plugins defined under the `hydra_plugins` package, so
the class itself is hydra_plugins/mlsweep_sweeper; the logic lives here.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, List, Sequence

from hydra.core.utils import JobReturn, JobStatus

from mlsweep.identity import cell_id, uses_calibration
from mlsweep.costs import cell_cost, fmt_hours
from mlsweep.lifecycle import scan, still_active, write_plan
from mlsweep.resources import resources_for
from mlsweep.prune.registry import get_pruner
from mlsweep.validate import ConfigError, validate

NCELLS_ENV = "MLSWEEP_NCELLS"


def _stop(message: str, code: int) -> None:
    """Exit with a short message; Hydra would wrap an exception in a long traceback."""
    print(f"[sweep] {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _drop_axes(overrides: Sequence[str], axes: Sequence[str]) -> List[str]:
    return [o for o in overrides if not any(_key(o) == a or _key(o).startswith(a + ".") for a in axes)]


def plan_cells(grid: list[list[str]], compose: Callable[[list[str]], Any]) -> list[tuple[list[str], Any]]:
    """[(overrides, composed config)] for every distinct, valid cell of the grid."""
    cells, seen = [], set()
    for overrides in grid:
        cfg = compose(overrides)
        spec = get_pruner(cfg.pruner.name)
        ignored = ([] if uses_calibration(cfg) else ["calib"]) + ([] if spec.prunes else ["sparsity"])
        if ignored:
            overrides = _drop_axes(overrides, ignored)
            cfg = compose(overrides)
        ident = cell_id(cfg)
        if ident in seen:
            continue
        seen.add(ident)
        try:
            validate(cfg)
        except ConfigError as e:
            _stop(f"config error in cell {','.join(overrides)}:\n  {e}\nnothing was run.", 2)
        cells.append((list(overrides), cfg))
    folded = len(grid) - len(cells)
    print(f"[sweep] {len(grid)} grid points -> {len(cells)} cells"
          + (f" ({folded} folded: same computation)" if folded else ""), flush=True)
    return cells


def _folder(cfg: Any) -> str:
    return str(cfg.hydra.job.override_dirname) or "(no overrides)"


def pending_cells(cells: list[tuple[list[str], Any]], sweep_dir: Path) -> list[tuple[list[str], Any]]:
    """The cells still to run; records the whole grid in plan.json for `mlsweep status`."""
    states = scan(sweep_dir)
    write_plan(sweep_dir, [{"cell_id": cell_id(cfg), "cell": _folder(cfg), "overrides": o} for o, cfg in cells])
    todo, skipped = [], {}
    for overrides, cfg in cells:
        state = states.get(cell_id(cfg))
        if still_active(state):
            skipped[state.status] = skipped.get(state.status, 0) + 1
        else:
            todo.append((overrides, cfg))
    if skipped:
        print(f"[sweep] skipped {', '.join(f'{n} {s}' for s, n in skipped.items())}; {len(todo)} to run",
              flush=True)
    if not todo:
        print(f"[sweep] nothing to run: every cell is done, queued or running -> {sweep_dir}", flush=True)
    return todo


def print_plan(cells: list[tuple[list[str], Any]], sweep_dir: Path, launcher: Any) -> None:
    """Every cell with its status, estimated GPU memory and GPU-hours (mlsweep.costs), and the totals."""
    states = scan(sweep_dir) if sweep_dir.is_dir() else {}
    rules = list(launcher.get("resources") or [])
    factor = float(launcher.get("timeout_factor") or 0.0)
    rows, todo_hours, all_hours = [], 0.0, 0.0
    for _, cfg in cells:
        state = states.get(cell_id(cfg))
        status = state.status if state else "todo"
        try:
            cost = cell_cost(cfg)
            res = resources_for(cost, rules, factor) if rules else {}
            mem, hours = f"{cost.gpu_mem_gb:.1f}", fmt_hours(cost.gpu_hours)
            all_hours += cost.gpu_hours
            todo_hours += 0.0 if still_active(state) else cost.gpu_hours
        except ValueError as e:  # size unknown: say what to set, keep planning
            res, mem, hours = {}, "?", f"? ({e})"
        extra = " ".join(f"{k}={v}" for k, v in res.items())
        rows.append((status, _folder(cfg), mem, hours, extra))
    width = max([len(r[1]) for r in rows] + [4])
    print(f"{'status':<8} {'cell':<{width}} {'GPU GB':>7} {'GPU time':>10}  resources")
    for status, folder, mem, hours, extra in rows:
        print(f"{status:<8} {folder:<{width}} {mem:>7} {hours:>10}  {extra}".rstrip())
    counts = {s: sum(r[0] == s for r in rows) for s in dict.fromkeys(r[0] for r in rows)}
    print(f"{len(rows)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; estimated GPU time: {fmt_hours(todo_hours)} to run, {fmt_hours(all_hours)} for the whole grid "
          f"(formulas: mlsweep/costs.py) -> {sweep_dir}", flush=True)


def report_failures(results: list[JobReturn], sweep_dir: Path) -> None:
    failed, submitted = [], 0
    for r in results:
        if r.status == JobStatus.FAILED:
            failed.append(f"{','.join(r.overrides or [])}: {type(r._return_value).__name__}: "
                          f"{str(r._return_value).splitlines()[0] if str(r._return_value) else ''}")
        elif r.return_value == "submitted":
            submitted += 1
        elif r.return_value != "done":
            failed.append(f"{','.join(r.overrides or [])}: see result.json")
    if submitted:
        print(f"[sweep] {submitted} cells submitted -> {sweep_dir}", flush=True)
        return
    print(f"[sweep] {len(results) - len(failed)} done, {len(failed)} failed -> {sweep_dir}", flush=True)
    if failed:
        _stop(f"{len(failed)} of {len(results)} cells failed:\n  " + "\n  ".join(failed), 1)
