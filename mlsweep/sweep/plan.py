"""`mlsweep plan`: every cell of a sweep with its status, estimated GPU memory and time, and the totals."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlsweep.sweep.costs import cell_cost, fmt_hours
from mlsweep.sweep.lifecycle import scan, still_active
from mlsweep.sweep.resources import check_rules, resources_for
from mlsweep.sweep.sweeper import Cell, folder_label


def print_plan(cells: list[Cell], sweep_dir: Path, launcher: Mapping[str, Any]) -> None:
    """One line per cell (status, GPU GB, GPU time, resources), then the totals (formulas: mlsweep/sweep/costs.py)."""
    states = scan(sweep_dir) if sweep_dir.is_dir() else {}
    rules = list(launcher.get("resources") or [])
    if rules:
        check_rules(rules, [k for k in launcher if k not in ("submitit_folder", "_target_")])
    factor = float(launcher.get("timeout_factor") or 0.0)
    rows, todo_hours, all_hours = [], 0.0, 0.0
    for cell in cells:
        state = states.get(cell.spec.cell_id)
        status = state.status if state else "todo"
        try:
            cost = cell_cost(cell.spec)
            res = resources_for(cost, rules, factor) if rules else {}
            mem, hours = f"{cost.gpu_mem_gb:.1f}", fmt_hours(cost.gpu_hours)
            all_hours += cost.gpu_hours
            todo_hours += 0.0 if still_active(state) else cost.gpu_hours
        except ValueError as e:  # size unknown: say what to set, keep planning
            res, mem, hours = {}, "?", f"? ({e})"
        extra = " ".join(f"{k}={v}" for k, v in res.items())
        rows.append((status, folder_label(cell), mem, hours, extra))
    width = max([len(r[1]) for r in rows] + [4])
    print(f"{'status':<8} {'cell':<{width}} {'GPU GB':>7} {'GPU time':>10}  resources")
    for status, folder, mem, hours, extra in rows:
        print(f"{status:<8} {folder:<{width}} {mem:>7} {hours:>10}  {extra}".rstrip())
    counts = {s: sum(r[0] == s for r in rows) for s in dict.fromkeys(r[0] for r in rows)}
    print(
        f"{len(rows)} cells: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f"; estimated GPU time: {fmt_hours(todo_hours)} to run, {fmt_hours(all_hours)} for the whole grid "
        f"(formulas: mlsweep/sweep/costs.py) -> {sweep_dir}",
        flush=True,
    )
