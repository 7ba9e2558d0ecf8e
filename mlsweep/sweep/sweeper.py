"""The mlsweep sweeper's logic: Hydra's grid, composed and checked before anything runs.

On top of Hydra's basic sweeper (cartesian product of `hydra.sweeper.params`
and the command line), it
- composes and validates every cell first, so a bad value anywhere in the grid
  fails the sweep before the first model is loaded;
- folds cells that compute the same thing: a pruner that uses no calibration
  data ignores the calib axis, the dense baseline ignores sparsity too, so the
  grid `pruner=dense,wanda x calib=... x sparsity=...` runs dense once; a
  pruner ignores another pruner's `pruner.<field>` options (wanda beside
  mwanda's prob_source), and an allocation the other allocations' settings;
- keeps going when a cell fails (the cell writes a `failed` row) and reports
  the failures at the end, with a non-zero exit;
- skips cells whose `done` row is already in the sweep folder, or whose SLURM
  job is still queued or running, so launching a sweep again only runs what is
  missing (failed and killed cells; mlsweep.sweep.lifecycle);
- with `hydra.sweeper.plan_only=true` (`mlsweep plan`) prints every cell with
  its status and estimated cost instead of running anything (mlsweep.sweep.plan):
  cells that are not valid are listed with their error instead of stopping the
  plan, and checks that need the model's files are skipped when they are not on
  this machine (the plan of a 70B study needs no weights).

Hydra only instantiates plugins defined under the `hydra_plugins` package, so
the class itself is hydra_plugins/mlsweep_sweeper; it hands this module plain
values: the grid as override lists and a `compose` that returns a Cell.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Optional

from mlsweep.config.spec import CellSpec, ConfigError
from mlsweep.config.validate import validate
from mlsweep.credentials import credential_override, redact_text
from mlsweep.prune.registry import all_pruners
from mlsweep.sweep.lifecycle import scan, still_active, write_plan

NCELLS_ENV = "MLSWEEP_NCELLS"


@dataclass(frozen=True)
class Cell:
    """One cell of a sweep: the overrides that compose it, its spec, its folder in the sweep."""

    overrides: tuple[str, ...]
    spec: CellSpec
    folder: str  # hydra.sweep.subdir: the cell's folder name under the sweep folder
    notes: tuple[str, ...] = ()  # validation checks skipped by `mlsweep plan` (the model's files are elsewhere)


@dataclass(frozen=True)
class Invalid:
    """A grid point that is not a valid cell (`mlsweep plan` lists them; a launch stops at the first)."""

    overrides: tuple[str, ...]
    error: str


# overrides -> the composed cell; raises ConfigError for a config that is not a valid cell
Compose = Callable[[list[str]], Cell]
# Cells planned in this process, by overrides, so a launcher in the same process need not compose them again.
_PLANNED: dict[tuple[str, ...], Cell] = {}


def planned(overrides: Sequence[str]) -> Optional[Cell]:
    return _PLANNED.get(tuple(overrides))


def stop(message: str, code: int) -> None:
    """Exit with a short message; Hydra would wrap an exception in a long traceback."""
    print(f"[sweep] {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _drop_axes(overrides: Sequence[str], axes: Sequence[str]) -> list[str]:
    return [o for o in overrides if not any(_key(o) == a or _key(o).startswith(a + ".") for a in axes)]


def _bad(overrides: Sequence[str], error: ConfigError, invalid: Optional[list[Invalid]]) -> None:
    """Record an invalid grid point for the plan, or stop the sweep naming it (credentials masked)."""
    cell = redact_text(",".join(overrides))
    if invalid is None:
        stop(f"config error in cell {cell}:\n  {error}\nnothing was run.", 2)
    invalid.append(Invalid(tuple(redact_text(o) for o in overrides), str(error)))


def _cell(
    compose: Compose, overrides: list[str], invalid: Optional[list[Invalid]], pruners: dict, folded: dict
) -> Optional[Cell]:
    """The grid point's cell, its ignored axes dropped (None: invalid, recorded for the plan).

    `folded` keeps the cells composed from dropped overrides: the many grid points that fold into
    one cell (dense at every calibration and sparsity) compose it once.
    """
    try:
        why = credential_override(overrides)  # the grid's own params too, not only the command line
        if why:
            raise ConfigError(why)
        overrides = _own_params(compose, overrides, pruners)
        cell = compose(overrides)
        ignored = ([] if cell.spec.calib is not None else ["calib"]) + (
            [] if cell.spec.target is not None else ["sparsity"]
        )
        if not ignored:
            return cell
        dropped = tuple(_drop_axes(overrides, ignored))
        if dropped not in folded:
            folded[dropped] = compose(list(dropped))
        return folded[dropped]
    except ConfigError as e:
        _bad(overrides, e, invalid)
        return None


def _pruner_param(override: str) -> Optional[str]:
    """The field of a `pruner.<field>=...` override, else None."""
    key = _key(override)
    return key.split(".", 1)[1] if key.startswith("pruner.") else None


def _own_params(compose: Compose, overrides: list[str], pruners: dict) -> list[str]:
    """The grid point's overrides without `pruner.<field>` ones of another pruner's parameters.

    A grid that crosses wanda with mwanda's options (pruner.prob_source=input,ffn_neuron) gives
    wanda cells that ignore them, as dense ignores the calibration axis. A field no pruner has
    is kept, so a typo still fails. `pruners` caches the pruner of each set of other overrides.
    """
    fields_of = {p.name: {f.name for f in fields(p.params)} if p.params else set() for p in all_pruners()}
    known = set().union(*fields_of.values())
    params = [o for o in overrides if _pruner_param(o) in known]
    if not params:
        return overrides
    rest = tuple(o for o in overrides if o not in params)
    if rest not in pruners:
        pruners[rest] = compose(list(rest)).spec.pruner.name
    return [o for o in overrides if o not in params or _pruner_param(o) in fields_of[pruners[rest]]]


def plan_cells(grid: list[list[str]], compose: Compose, invalid: Optional[list[Invalid]] = None) -> list[Cell]:
    """Every distinct, valid cell of the grid (ignored axes dropped), checked before anything runs.

    With `invalid` (`mlsweep plan`), invalid grid points are appended there instead of stopping the
    sweep, and validation skips the checks that need model files not on this machine.
    """
    cells, seen, pruners, folded = [], set(), {}, {}
    for overrides in grid:
        cell = _cell(compose, list(overrides), invalid, pruners, folded)
        if cell is None or cell.spec.cell_id in seen:
            continue
        seen.add(cell.spec.cell_id)
        try:
            cell = replace(cell, notes=tuple(validate(cell.spec, model_files=invalid is None)))
        except ConfigError as e:
            _bad(cell.overrides, e, invalid)
            continue
        cells.append(cell)
        _PLANNED[cell.overrides] = cell
    folded = len(grid) - len(cells) - len(invalid or [])
    print(
        f"[sweep] {len(grid)} grid points -> {len(cells)} cells"
        + (f" ({folded} folded: same computation)" if folded else ""),
        flush=True,
    )
    return cells


def folder_label(cell: Cell) -> str:
    return cell.folder or "(no overrides)"


def pending_cells(cells: list[Cell], sweep_dir: Path) -> list[Cell]:
    """The cells still to run; records the whole grid in plan.json for `mlsweep status`."""
    states = scan(sweep_dir)
    write_plan(
        sweep_dir, [{"cell_id": c.spec.cell_id, "cell": folder_label(c), "overrides": list(c.overrides)} for c in cells]
    )
    todo, skipped = [], {}
    for cell in cells:
        state = states.get(cell.spec.cell_id)
        if still_active(state):
            skipped[state.status] = skipped.get(state.status, 0) + 1
        else:
            todo.append(cell)
    if skipped:
        print(f"[sweep] skipped {', '.join(f'{n} {s}' for s, n in skipped.items())}; {len(todo)} to run", flush=True)
    if not todo:
        print(f"[sweep] nothing to run: every cell is done, queued or running -> {sweep_dir}", flush=True)
    return todo


@dataclass(frozen=True)
class Outcome:
    """What came back for one launched cell: done, failed (with why), or submitted."""

    overrides: tuple[str, ...]
    status: str  # done | failed | submitted | held (another live process runs the cell)
    error: str = ""


def report_failures(outcomes: list[Outcome], sweep_dir: Path) -> None:
    failed = [f"{','.join(o.overrides)}: {o.error}" for o in outcomes if o.status == "failed"]
    submitted = sum(o.status == "submitted" for o in outcomes)
    if submitted:
        print(f"[sweep] {submitted} cells submitted -> {sweep_dir}", flush=True)
        return
    held = sum(o.status == "held" for o in outcomes)
    also = f", {held} left to the live launch that holds them" if held else ""
    print(f"[sweep] {len(outcomes) - len(failed) - held} done, {len(failed)} failed{also} -> {sweep_dir}", flush=True)
    if failed:
        stop(f"{len(failed)} of {len(outcomes)} cells failed:\n  " + "\n  ".join(failed), 1)
