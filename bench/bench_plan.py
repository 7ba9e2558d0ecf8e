"""Benchmark: deciding what a sweep runs (composing its grid) with one Hydra composition per point vs the sweeper's.

Why: before a launch or `mlsweep plan` prints anything, every grid point becomes a cell spec. Composing
each point through Hydra's `load_sweep_config` costs about 0.4 s on 2 cores; the sweeper's GridComposer
(hydra_plugins/mlsweep_sweeper/grid_compose.py) composes each set of group choices once and applies the
value overrides as Hydra does. This script measures, side by side in one process:

- the demo's grid (`+experiment=lang_calib`, 144 points): every point composed and turned into its cell
  spec (CellSpec.from_config) by both ways; the cell ids and folders must be identical (exit 1 if not);
- then, as a user runs it, `mlsweep plan` on a 1,008-point grid (the demo crossed with 14 calibration
  seeds) in a fresh process: wall seconds against the target of 30 s on 2 cores.

    .venv/bin/python bench/bench_plan.py
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time

from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

import mlsweep.cell.app  # noqa: F401  (registers the schemas and resolvers)
from hydra_plugins.mlsweep_sweeper.grid_compose import GridComposer
from mlsweep import CONF_DIR
from mlsweep.config.spec import CellSpec

EXPERIMENT = "lang_calib"
PLAN_TARGET_S = 30.0


def grid_specs(compose, grid) -> tuple[list[tuple[str, str]], float]:
    t0 = time.perf_counter()
    out = []
    for point in grid:
        with compose(point) as cfg:
            out.append((CellSpec.from_config(cfg).cell_id, str(cfg.hydra.sweep.subdir)))
    return out, time.perf_counter() - t0


def hydra_every_point(loader, master):
    """The reference: Hydra's own composition of every point (as a context, like GridComposer.composed)."""
    return lambda point: contextlib.nullcontext(loader.load_sweep_config(master, list(point)))


def compose_side_by_side() -> bool:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        cli = [f"+experiment={EXPERIMENT}"]
        master = loader.load_configuration("config", cli, run_mode=RunMode.MULTIRUN)
        parser = OverridesParser.create(config_loader=loader)
        params = [f"{k}={v}" for k, v in master.hydra.sweeper.params.items()]
        grid = BasicSweeper.split_arguments(parser.parse_overrides(params + cli), None)[0]
        composer = GridComposer(loader, master)
        fast, fast_s = grid_specs(composer.composed, grid)
        full, full_s = grid_specs(hydra_every_point(loader, master), grid)
    same = fast == full
    print(f"{EXPERIMENT}: {len(grid)} grid points, {len(composer.bases)} sets of group choices")
    print(f"{'way':<26} {'seconds':>8} {'s/point':>8}")
    print(f"{'hydra, every point':<26} {full_s:8.2f} {full_s / len(grid):8.3f}")
    print(f"{'grid composer':<26} {fast_s:8.2f} {fast_s / len(grid):8.3f}")
    print(f"speedup (hydra / grid composer): {full_s / fast_s:.2f}x; cell ids and folders identical: {same}")
    return same


def plan_thousand() -> float:
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mlsweep", "plan", f"+experiment={EXPERIMENT}", "calib.seed=range(0,14)"],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
        raise SystemExit(1)
    summary = [line for line in proc.stdout.splitlines() if "grid points" in line]
    print(f"mlsweep plan, {summary[0].strip() if summary else '?'}: {wall:.1f} s wall (target {PLAN_TARGET_S:.0f} s)")
    return wall


def main() -> int:
    print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}")
    ok = compose_side_by_side()
    plan_thousand()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
