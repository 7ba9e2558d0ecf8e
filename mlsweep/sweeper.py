"""The mlsweep sweeper's logic: Hydra's grid, composed and checked before anything runs.

On top of Hydra's basic sweeper (cartesian product of `hydra.sweeper.params`
and the command line), it
- composes and validates every cell first, so a bad value anywhere in the grid
  fails the sweep before the first model is loaded;
- folds cells that compute the same thing: a pruner that uses no calibration
  data ignores the calib axis, the dense baseline ignores sparsity too, so the
  grid `pruner=dense,wanda x calib=... x sparsity=...` runs dense once;
- keeps going when a cell fails (the cell writes a `failed` row) and reports
  the failures at the end, with a non-zero exit.

Hydra only instantiates plugins defined under the `hydra_plugins` package, so
the class itself is hydra_plugins/mlsweep_sweeper; the logic lives here.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, List, Sequence

from hydra.core.utils import JobReturn, JobStatus

from mlsweep.cell import cell_id, uses_calibration
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


def link_latest(sweep_dir: Path) -> None:
    """outputs/<experiment>/latest -> this sweep, so scripts can find it."""
    link = sweep_dir.parent / "latest"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(sweep_dir.name)
    except OSError:
        pass


def report_failures(results: list[JobReturn], sweep_dir: Path) -> None:
    failed = []
    for r in results:
        if r.status == JobStatus.FAILED:
            failed.append(f"{r.overrides}: {r._return_value!r}")
        elif r.return_value != "done":
            failed.append(f"{','.join(r.overrides or [])}: see result.json")
    print(f"[sweep] {len(results) - len(failed)} done, {len(failed)} failed -> {sweep_dir}", flush=True)
    if failed:
        _stop(f"{len(failed)} of {len(results)} cells failed:\n  " + "\n  ".join(failed), 1)
