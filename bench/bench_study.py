"""Benchmark: a whole study three ways: mlsweep's local sweep, mlsweep with one process per cell, the reference scripts.

Why: what a study costs is more than its pruning kernels. Every process that
starts pays Python's imports, loading the model and lm-eval's task index; the
reference code (locuslab/wanda, IST-DASLab/sparsegpt) runs one fresh script per
grid point that also re-evaluates the dense model, prunes sample by sample and
evaluates through lm-eval from scratch. This script runs the same small
lang_calib study on the bundled testbed, in one go, three ways:

- (a) mlsweep's local sweep: one process, `python -m mlsweep +experiment=lang_calib <grid> eval=testbed
  hydra.sweep.dir=<dir> -m` (the default launcher runs the cells in-process, one after another);
- (b) mlsweep with one process per cell: the same command with `hydra/launcher=submitit_local` (each cell
  its own job process, as on SLURM), once per `--cells-per-job K`; K > 1 adds
  `hydra.launcher.cells_per_job=K` (K cells of one model per job process); a launcher that does not know
  that key makes (b, K) "unavailable", reported, not a failure;
- (c) the reference way: one fresh process per grid point running bench/reference_cell.py.

Each way gets its own empty sweep folder and its own empty caches (MLSWEEP_CACHE: calibration windows
and lm-eval's task index; HF_DATASETS_CACHE), so all three start cold. CPU seconds are the children's
user + system time (getrusage(RUSAGE_CHILDREN) before and after; grandchildren count once their parent
has waited for them, as submitit's job controllers do); wall seconds are the way's elapsed time, shown
beside the share of the cores other processes used meanwhile (from /proc/stat). Targets, in CPU
seconds: (b) <= 1/3 of (c), and (b) <= 1.5 x (a). Before each way the script waits (up to 2 minutes) for a
quiet machine; a way during which other processes used 15% of the cores or more is measured again in a
fresh folder (at most `--repeats` times in all, default 2), and the run with the fewest CPU seconds counts.

Checks (exit status 1 if one fails): every cell done; (a) and each (b) give identical metric values per
cell (result.json keys ppl/, bpb/, bpc/, acc/, acc_stderr/, acc_lang/, n/, eval_tokens/, eval_windows/,
calib_count/, the measured sparsity; timings and provenance ignored); (c) agrees with (a) within
TOLERANCE per method (perplexity relative, accuracy and measured sparsity absolute), its dense re-evaluations
included; the largest differences per method are printed.

Default grid (8 cells): calib en, zh, sw x pruner {wanda, sparsegpt} x sparsity 0.5 x calib.seed 0,
plus dense and magnitude. `--full`: en, zh, sw x {wanda, sparsegpt} x {0.5, 0.7} x seeds {0, 1},
plus dense and magnitude at each sparsity (27 cells).

    .venv/bin/python bench/bench_study.py                       # default grid
    .venv/bin/python bench/bench_study.py --cells-per-job 1,4   # (b) also with 4 cells per job process
    .venv/bin/python bench/bench_study.py --full                # the larger grid
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import quiet  # bench/ is sys.path[0] when this file runs as a script
from quiet import OthersLoad, children_cpu_s

EXPERIMENT, EVAL = "lang_calib", "testbed"
CALIBRATED = ("wanda", "sparsegpt")
METHODS = ("dense", "magnitude", *CALIBRATED)
REFERENCE = Path(__file__).resolve().parent / "reference_cell.py"
TARGET_B_OVER_C, TARGET_B_OVER_A = 1 / 3, 1.5
RELAUNCH_TARGET = 0.05  # launching a finished sweep again, as a share of its first run


@dataclass(frozen=True)
class Tolerance:
    """How far (c) may be from (a): perplexity relative, accuracy and measured sparsity absolute."""

    ppl_rel: float
    acc_abs: float
    sparsity_abs: float


# Dense, magnitude and Wanda prune the same weights (Wanda's naive statistics round differently but select
# the same masks); what differs is the perplexity loop (one window at a time with float32 sums, against
# batches of 32 with float64 sums): about 1e-7 relative; lm-eval sees the same weights and batches. SparseGPT's
# naive per-sample Hessian may round differently from the engine's batched one (measured on the testbed: the
# same weights, ppl within 2e-7), so it is allowed a few flipped weights' worth: 2 of 200 items, 1e-3 in ppl.
TOLERANCE = {
    "dense": Tolerance(1e-5, 0.0, 0.0),
    "magnitude": Tolerance(1e-5, 0.0, 0.0),
    "wanda": Tolerance(1e-5, 0.0, 0.0),
    "sparsegpt": Tolerance(1e-3, 0.01, 1e-4),
}
QUIET_WAIT_S, QUIET_THRESHOLD = 120.0, 0.15  # before each way, wait (capped) for a quiet machine
METRIC_HEADS = ("ppl", "bpb", "bpc", "acc", "acc_norm", "acc_stderr", "acc_lang", "n", "eval_tokens", "eval_windows")
METRIC_HEADS += ("calib_count", "sparsity_measured", "sparsity_per_block")
UNKNOWN_KEY = ("Could not override 'hydra.launcher.cells_per_job'", "Key 'cells_per_job' not in")


@dataclass(frozen=True)
class Grid:
    languages: tuple[str, ...]
    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]

    def overrides(self) -> list[str]:
        """The sweeper params on the command line (they replace the experiment's grid)."""
        return [
            f"pruner={','.join(METHODS)}",
            f"calib={','.join(self.languages)}",
            f"sparsity.target={','.join(map(str, self.sparsities))}",
            f"calib.seed={','.join(map(str, self.seeds))}",
        ]

    def points(self) -> list[tuple]:
        """Each computation once (what the sweeper folds to): dense once, magnitude once per sparsity."""
        calibrated = itertools.product(CALIBRATED, self.languages, self.sparsities, self.seeds)
        return [key("dense"), *(key("magnitude", sparsity=s) for s in self.sparsities), *(key(*p) for p in calibrated)]


GRIDS = {"default": Grid(("en", "zh", "sw"), (0.5,), (0,)), "full": Grid(("en", "zh", "sw"), (0.5, 0.7), (0, 1))}


def key(pruner: str, calib=None, sparsity=None, seed=None) -> tuple:
    """(pruner, calib, sparsity, seed), None where the method ignores the axis."""
    used = pruner in CALIBRATED
    return (pruner, calib if used else None, float(sparsity) if pruner != "dense" else None, seed if used else None)


def row_key(row: dict) -> tuple:
    return key(row["pruner"], row["calib"], row["sparsity_target"], row["calib_seed"])


def metrics(row: dict) -> dict:
    return {k: v for k, v in row.items() if k.split("/")[0] in METRIC_HEADS}


# ---------------------------------------------------------------- measuring


@dataclass
class Way:
    name: str
    cells: int = 0
    processes: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    others: float = 0.0  # share of the cores other processes used meanwhile
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds per stage, summed over cells
    rows: dict[tuple, dict] = field(default_factory=dict)  # point -> metrics
    dense: list[tuple[tuple, dict]] = field(default_factory=list)  # (c): the dense re-evaluation of each point
    unavailable: str = ""
    runs: int = 1  # measurements made (another only when the machine was busy)
    relaunch_s: float = 0.0  # (a): wall seconds of launching the finished sweep again (nothing to run)


class Meter:
    """Wall and children's CPU seconds of a block, and the share of the cores others used meanwhile."""

    def __enter__(self):
        self.cpu, self.load = children_cpu_s(), OthersLoad()
        self.load.start()
        return self

    def __exit__(self, *exc):
        self.others = self.load.stop()
        self.wall_s, self.cpu_s = self.load.wall_s, children_cpu_s() - self.cpu


def wait_for_quiet() -> None:
    quiet.wait_for_quiet(QUIET_WAIT_S, QUIET_THRESHOLD, probe_s=1.0)


def environment(folder: Path) -> dict:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MLSWEEP_CACHE": str(folder / "cache"),
        "HF_DATASETS_CACHE": str(folder / "hf_datasets"),
    }


def run_logged(cmd: list[str], folder: Path) -> tuple[int, str]:
    """Run in `folder` with its own caches; (exit status, the output's last 3,000 characters)."""
    log = folder / "output.log"
    with log.open("a") as fh:
        rc = subprocess.run(cmd, cwd=folder, env=environment(folder), stdout=fh, stderr=subprocess.STDOUT).returncode
    return rc, log.read_text(errors="replace")[-3000:]


# ---------------------------------------------------------------- the three ways


def sweep_command(grid: Grid, sweep_dir: Path, extra: list[str]) -> list[str]:
    head = [sys.executable, "-m", "mlsweep", f"+experiment={EXPERIMENT}", *grid.overrides(), f"eval={EVAL}"]
    return [*head, f"hydra.sweep.dir={sweep_dir}", *extra, "-m"]


def sweep_rows(sweep_dir: Path, failures: list[str], name: str) -> list[dict]:
    rows = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/result.json"))]
    failures += [
        f"{name}: cell {r.get('cell_id')} {r['status']}: {r.get('error')}" for r in rows if r["status"] != "done"
    ]
    return rows


def fill_from_rows(way: Way, rows: list[dict]) -> None:
    way.cells = len(rows)
    way.rows = {row_key(r): metrics(r) for r in rows}
    for r in rows:
        for k, v in r.items():
            if k.startswith("time/") and k != "time/total_s":
                way.stages[k[5:-2]] = way.stages.get(k[5:-2], 0.0) + v
    way.stages["outside cells"] = way.wall_s - sum(r.get("time/total_s", 0.0) for r in rows)


def run_sweep(name: str, grid: Grid, folder: Path, extra: list[str], failures: list[str], relaunch=False) -> Way:
    folder.mkdir(parents=True)
    sweep_dir = folder / "sweep"
    way = Way(name)
    wait_for_quiet()
    with Meter() as m:
        rc, tail = run_logged(sweep_command(grid, sweep_dir, extra), folder)
    way.wall_s, way.cpu_s, way.others = m.wall_s, m.cpu_s, m.others
    if rc != 0 and any(s in tail for s in UNKNOWN_KEY):
        way.unavailable = "the launcher has no hydra.launcher.cells_per_job yet"
        return way
    if rc != 0:
        failures.append(f"{name}: exit status {rc}; output ends:\n{tail}")
    fill_from_rows(way, sweep_rows(sweep_dir, failures, name))
    if relaunch:  # the same command again: every cell is done, nothing may run
        tic = time.perf_counter()
        rc, tail = run_logged(sweep_command(grid, sweep_dir, extra), folder)
        way.relaunch_s = time.perf_counter() - tic
        if rc != 0 or "nothing to run" not in tail:
            failures.append(f"{name}: the relaunch of the finished sweep ran something (exit {rc}):\n{tail}")
    jobs = len(list(sweep_dir.rglob("*_submitted.pkl")))  # submitit: one pickle per job
    way.processes = 1 + 2 * jobs if jobs else 1  # the sweep, and per job a controller and the job itself
    return way


def reference_command(point: tuple, out: Path) -> list[str]:
    pruner, calib, sparsity, seed = point
    cmd = [sys.executable, str(REFERENCE), "--pruner", pruner, "--out", str(out)]
    if sparsity is not None:
        cmd += ["--sparsity", str(sparsity)]
    if calib is not None:
        cmd += ["--calib", calib, "--seed", str(seed)]
    return cmd


def run_reference(grid: Grid, folder: Path, failures: list[str]) -> Way:
    """(c): one process per grid point, each re-evaluating the dense model before it prunes."""
    folder.mkdir(parents=True)
    way = Way("(c) reference, process per point")
    wait_for_quiet()
    with Meter() as m:
        for i, point in enumerate(grid.points()):
            out = folder / f"point{i}.json"
            rc, tail = run_logged(reference_command(point, out), folder)
            if rc != 0 or not out.exists():
                failures.append(f"(c) {point}: exit status {rc}; output ends:\n{tail}")
                continue
            result = json.loads(out.read_text())
            way.rows[point] = result["metrics"]
            if result["dense_metrics"]:
                way.dense.append((point, result["dense_metrics"]))
            for stage, s in result["seconds"].items():
                way.stages[stage] = way.stages.get(stage, 0.0) + s
    way.wall_s, way.cpu_s, way.others = m.wall_s, m.cpu_s, m.others
    way.cells = way.processes = len(grid.points())
    way.stages["outside cells"] = way.wall_s - sum(way.stages.values())
    return way


# ---------------------------------------------------------------- checks


def check_identical(a: Way, b: Way, failures: list[str]) -> None:
    if b.unavailable:
        return
    if set(a.rows) != set(b.rows):
        failures.append(f"{b.name}: cells differ from (a): {sorted(set(a.rows) ^ set(b.rows), key=str)}")
    differ = [p for p in a.rows if p in b.rows and a.rows[p] != b.rows[p]]
    n = sum(len(v) for v in b.rows.values())
    print(f"{b.name} vs (a): {len(b.rows)} cells, {n} metric values, identical: {not differ}")
    for p in differ:
        keys = [k for k in a.rows[p].keys() | b.rows[p].keys() if a.rows[p].get(k) != b.rows[p].get(k)]
        failures.append(f"{b.name}: {p} differs from (a) in {sorted(keys)[:6]}")


def differences(ref: dict, row: dict, worst: dict, failures: list[str], where: str) -> None:
    """Fold one (c) result into `worst`: the largest difference per kind of metric, and the values compared."""
    for k, v in ref.items():
        if k not in row:
            failures.append(f"(c) {where}: {k} not in (a)'s row")
            continue
        kind = "ppl" if k.startswith("ppl/") else "sparsity" if k.startswith("sparsity") else "acc"
        diff = abs(v - row[k]) / abs(row[k]) if kind == "ppl" else abs(v - row[k])
        worst[kind] = max(worst.get(kind, 0.0), diff)
        worst["values"] = worst.get("values", 0) + 1


def check_reference(a: Way, c: Way, failures: list[str]) -> None:
    worst: dict[str, dict] = {method: {} for method in METHODS}
    for point, ref in c.rows.items():
        if point in a.rows:
            differences(ref, a.rows[point], worst[point[0]], failures, str(point))
    dense_row = a.rows.get(key("dense"))
    for point, ref in c.dense if dense_row else []:
        differences(ref, dense_row, worst["dense"], failures, f"dense re-evaluated in {point}")
    print("(c) vs (a): largest difference per method (tolerance in brackets)")
    print(f"{'method':<10} {'values':>6} {'ppl, relative':>22} {'acc, absolute':>22} {'sparsity, absolute':>22}")
    for method, w in worst.items():
        if not w:
            continue
        tol = TOLERANCE[method]
        limits = {"ppl": tol.ppl_rel, "acc": tol.acc_abs, "sparsity": tol.sparsity_abs}
        cols = " ".join(f"{w.get(k, 0.0):>11.2e} ({lim:>8.1e})" for k, lim in limits.items())
        print(f"{method:<10} {w['values']:>6} {cols}")
        over = [k for k, lim in limits.items() if w.get(k, 0.0) > lim]
        if over:
            failures.append(f"(c) {method}: differs from (a) beyond the tolerance in {', '.join(over)}")


# ---------------------------------------------------------------- report


def print_table(ways: list[Way]) -> None:
    print(f"{'way':<38} {'cells':>5} {'processes':>9} {'wall_s':>8} {'cpu_s':>8} {'others_cpu':>10} {'runs':>4}")
    for w in ways:
        if w.unavailable:
            print(f"{w.name:<38} unavailable: {w.unavailable}")
            continue
        print(
            f"{w.name:<38} {w.cells:>5} {w.processes:>9} {w.wall_s:>8.1f} {w.cpu_s:>8.1f} {w.others:>10.0%} {w.runs:>4}"
        )


def print_ratios(a: Way, bs: list[Way], c: Way) -> None:
    for b in bs:
        bc, ba = b.cpu_s / c.cpu_s, b.cpu_s / a.cpu_s
        print(
            f"{b.name}: cpu (b)/(c) = {bc:.3f} (target <= {TARGET_B_OVER_C:.3f}: {met(bc <= TARGET_B_OVER_C)}), "
            f"cpu (b)/(a) = {ba:.2f} (target <= {TARGET_B_OVER_A}: {met(ba <= TARGET_B_OVER_A)}); "
            f"wall (b)/(c) = {b.wall_s / c.wall_s:.3f}, wall (b)/(a) = {b.wall_s / a.wall_s:.2f}"
        )
    print(f"cpu (c)/(a) = {c.cpu_s / a.cpu_s:.2f}, wall (c)/(a) = {c.wall_s / a.wall_s:.2f}")


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_stages(ways: list[Way]) -> None:
    ways = [w for w in ways if not w.unavailable]
    names = list(dict.fromkeys(s for w in ways for s in w.stages if s != "outside cells")) + ["outside cells"]
    widths = [max(len(s), 7) for s in names]
    print("wall seconds per stage, summed over cells ('outside cells': start-up, planning, launching, waiting):")
    print(f"{'way':<38} " + " ".join(f"{s:>{n}}" for s, n in zip(names, widths)))
    for w in ways:
        cols = (f"{w.stages[s]:>{n}.1f}" if s in w.stages else f"{'-':>{n}}" for s, n in zip(names, widths))
        print(f"{w.name:<38} " + " ".join(cols))


# ---------------------------------------------------------------- main


def parse_ks(text: str) -> list[int]:
    ks = [int(k) for k in text.split(",")]
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--cells-per-job {text!r}: whole numbers >= 1, comma-separated")
    return ks


def warm_up(folder: Path) -> None:
    """Import the heavy modules once (not measured), so no way pays for a cold page cache."""
    folder.mkdir(parents=True)
    run_logged([sys.executable, "-c", "import torch, transformers, lm_eval.evaluator, hydra, submitit"], folder)


def measured(run, folder: Path, repeats: int) -> Way:
    """A way measured (`run(folder) -> Way`), again in a fresh folder while other processes used at least
    QUIET_THRESHOLD of the cores, at most `repeats` times in all; the run with the fewest CPU seconds counts."""
    runs = []
    for i in range(repeats):
        way = run(folder / f"run{i}")
        runs.append(way)
        done = way.unavailable or f"{way.wall_s:.1f} s wall, {way.cpu_s:.1f} s cpu, others {way.others:.0%}"
        print(f"{way.name}: {done}", flush=True)
        if way.unavailable or way.others < QUIET_THRESHOLD:
            break
    best = min(runs, key=lambda w: w.cpu_s)
    best.runs = len(runs)
    return best


def run_all(grid: Grid, ks: list[int], tmp: Path, repeats: int, failures: list[str]) -> tuple[Way, list[Way], Way]:
    warm_up(tmp / "warm")
    local = partial(run_sweep, "(a) mlsweep, local sweep", grid, extra=[], failures=failures, relaunch=True)
    a = measured(local, tmp / "a", repeats)
    bs = []
    for k in ks:
        extra = ["hydra/launcher=submitit_local"] + ([f"hydra.launcher.cells_per_job={k}"] if k > 1 else [])
        name = f"(b) mlsweep, process per job, K={k}"
        bs.append(measured(partial(run_sweep, name, grid, extra=extra, failures=failures), tmp / f"b{k}", repeats))
    c = measured(partial(run_reference, grid, failures=failures), tmp / "c", repeats)
    print()
    return a, bs, c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="3 languages x 2 pruners x 2 sparsities x 2 seeds (27 cells)")
    ap.add_argument("--cells-per-job", type=parse_ks, default=[1], help="K[,K2...]: (b) once per K (default 1)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="at most this many measurements of a way (another only if the machine was busy)",
    )
    ap.add_argument("--workdir", type=Path, help="keep the sweeps and logs in this new folder (default: temporary)")
    args = ap.parse_args()
    grid = GRIDS["full" if args.full else "default"]
    print(f"{EXPERIMENT} on the testbed, eval={EVAL}: {len(grid.points())} cells; {' '.join(grid.overrides())}")
    print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    tic, failures = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="bench_study-") as tmp:
        a, bs, c = run_all(grid, args.cells_per_job, args.workdir or Path(tmp), args.repeats, failures)
    for b in bs:
        check_identical(a, b, failures)
    check_reference(a, c, failures)
    print()
    print_table([a, *bs, c])
    available = [b for b in bs if not b.unavailable]
    if a.cpu_s > 0 and c.cpu_s > 0 and available:
        print_ratios(a, available, c)
    if a.relaunch_s and a.wall_s:
        share = a.relaunch_s / a.wall_s
        print(
            f"relaunch of (a)'s finished sweep: {a.relaunch_s:.1f} s wall, {share:.1%} of its first run "
            f"(target <= {RELAUNCH_TARGET:.0%}: {met(share <= RELAUNCH_TARGET)})"
        )
    print()
    print_stages([a, *bs, c])
    print(f"total benchmark time {time.perf_counter() - tic:.0f} s")
    busy = [w.name for w in (a, *bs, c) if not w.unavailable and w.others >= QUIET_THRESHOLD]
    consequence = "on 2 shared cores that inflates wall and CPU seconds unevenly; re-run on a quiet machine"
    return quiet.finish(busy, QUIET_THRESHOLD, consequence, failures)


if __name__ == "__main__":
    sys.exit(main())
