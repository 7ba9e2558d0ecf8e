"""`mlsweep plan`: every cell of a sweep with its status, estimated GPU memory, GPUs and time, and the totals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from mlsweep.config.validate import NOT_HERE
from mlsweep.evaluate.tasklist import count_tasks
from mlsweep.sweep.costs import GPU_MEMORY_GB, Cost, cell_cost
from mlsweep.sweep.lifecycle import scan, still_active
from mlsweep.sweep.packing import pack, reuse_saving_s
from mlsweep.sweep.resources import check_launcher, resources_for
from mlsweep.sweep.sweeper import Cell, Invalid, folder_label


def fmt_hours(hours: float) -> str:
    """GPU time as a reader wants it: minutes under an hour, hours above."""
    return f"{hours * 60:.1f} min" if hours < 1 else f"{hours:.2f} h"


def _short(error: str, width: int = 200) -> str:
    error = " ".join(error.split())
    return error if len(error) <= width else error[: width - 3] + "..."


def cell_tasks(spec) -> int:
    """The tasks a cell evaluates, groups expanded (over all its passes)."""
    return sum(count_tasks(p.suite) for p in spec.passes)


def planned_cost(spec, launcher: Mapping[str, Any]):
    """A cell's cost as the launcher sizes it: its GPU size, its tasks per pass after group expansion."""
    gpu = float(launcher.get("gpu_mem_gb") or GPU_MEMORY_GB)
    return cell_cost(spec, gpu, round(cell_tasks(spec) / len(spec.passes)))


def _row(cell: Cell, status: str, launcher: Mapping[str, Any], rules: list, factor: float):
    """(the cell's printed fields, its cost or None when its size is unknown)."""
    tasks = str(cell_tasks(cell.spec))
    try:
        cost = planned_cost(cell.spec, launcher)
    except ValueError as e:  # size unknown: say what to set, keep planning
        return (status, folder_label(cell), "?", "?", tasks, f"? ({e})", ""), None
    res = resources_for(cost, rules, factor)
    mem = f"{cost.gpu_mem_gb:.1f}" + ("" if cost.fits else "!")  # !: more than one GPU holds
    extra = " ".join(f"{k}={v}" for k, v in res.items())
    return (status, folder_label(cell), mem, str(cost.gpus), tasks, fmt_hours(cost.gpu_hours), extra), cost


def packing_line(todo: list[tuple[Cell, Optional[Cost]]], launcher: Mapping[str, Any]) -> str:
    """With hydra.launcher.cells_per_job > 1: the jobs the cells to run (with their costs) take, and the GPU
    time packing saves; a cell of unknown size (no cost, listed above) counts as saving nothing."""
    per_job = int(launcher.get("cells_per_job") or 1)
    if per_job <= 1 or not todo:
        return ""
    jobs = pack(todo, [cell.spec for cell, _ in todo], per_job)
    saved = sum(
        reuse_saving_s(cell.spec) * cost.gpus / 3600 for job in jobs for cell, cost in job[1:] if cost is not None
    )
    return (
        f"{len(todo)} cells to run in {len(jobs)} jobs (hydra.launcher.cells_per_job={per_job}: one model per job, "
        f"loaded once): saves about {fmt_hours(saved)} GPU time of start-up and model loading"
    )


def print_plan(
    cells: list[Cell], sweep_dir: Path, launcher: Mapping[str, Any], invalid: Sequence[Invalid] = ()
) -> None:
    """One line per cell (status, GPU GB, GPUs, tasks, GPU time, resources), then the totals
    (formulas: mlsweep/sweep/costs.py); invalid grid points are listed with their error."""
    states = scan(sweep_dir) if sweep_dir.is_dir() else {}
    rules = list(launcher.get("resources") or [])
    check_launcher(launcher)
    factor = float(launcher.get("timeout_factor") or 0.0)
    gpu = float(launcher.get("gpu_mem_gb") or GPU_MEMORY_GB)
    rows, costs = [], []
    for cell in cells:
        state = states.get(cell.spec.cell_id)
        row, cost = _row(cell, state.status if state else "todo", launcher, rules, factor)
        rows.append(row)
        costs.append((cost, state))
    all_hours = sum(c.gpu_hours for c, _ in costs if c is not None)
    todo_hours = sum(c.gpu_hours for c, state in costs if c is not None and not still_active(state))
    too_big = sum(1 for c, _ in costs if c is not None and not c.fits)
    for bad in invalid:
        rows.append(("invalid", ",".join(bad.overrides) or "(no overrides)", "-", "-", "-", "-", _short(bad.error)))
    width = max([len(r[1]) for r in rows] + [4])
    print(f"{'status':<8} {'cell':<{width}} {'GPU GB':>7} {'GPUs':>4} {'tasks':>5} {'GPU time':>10}  resources")
    for status, folder, mem, gpus, tasks, hours, extra in rows:
        print(f"{status:<8} {folder:<{width}} {mem:>7} {gpus:>4} {tasks:>5} {hours:>10}  {extra}".rstrip())
    counts = {s: sum(r[0] == s for r in rows) for s in dict.fromkeys(r[0] for r in rows)}
    print(
        f"{len(rows)} cells: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; estimated GPU time: {fmt_hours(todo_hours)} to run, {fmt_hours(all_hours)} for the whole grid, "
        f"on {gpu:g} GB GPUs (hydra.launcher.gpu_mem_gb; formulas: mlsweep/sweep/costs.py) -> {sweep_dir}",
        flush=True,
    )
    packed = packing_line([(c, cost) for c, (cost, state) in zip(cells, costs) if not still_active(state)], launcher)
    if packed:
        print(packed, flush=True)
    if too_big:
        print(
            f"! {too_big} cells need more than one {gpu:g} GB GPU: evaluate them over several with "
            "model.device_map=auto (README: a model bigger than one GPU)",
            flush=True,
        )
    notes = list(dict.fromkeys(n for c in cells for n in c.notes))
    away = [n.split(" ", 1)[0].split("=", 1)[1] for n in notes if n.endswith(NOT_HERE)]
    if away:
        print("note: not on this machine, so their context, text and request checks run in the cell:", ", ".join(away))
    for note in (n for n in notes if not n.endswith(NOT_HERE)):
        print(f"note: {note}", flush=True)
