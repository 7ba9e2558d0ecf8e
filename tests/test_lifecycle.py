"""Idempotent cells and the sweep lifecycle with local launchers: skip done, re-run failed and killed cells."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import Pause
from test_cell import compose_cfg

from mlsweep.cell.app import run_config
from mlsweep.cell.jobenv import job_threads
from mlsweep.cell.run import CHECKPOINT_DIR
from mlsweep.results.cellfolder import MARKER_FILE, atomic_write_json
from mlsweep.sweep.lifecycle import format_status, scan, sweep_status, write_plan


def test_a_done_cell_is_returned_as_is_and_a_failed_one_is_kept_and_rerun(tmp_path, tiny_overrides):
    cfg = compose_cfg(tiny_overrides + ["pruner=sparsegpt"])
    first = run_config(cfg, tmp_path)
    assert first["status"] == "done" and first["threads"] >= 1 and first["job_id"] is None
    assert not (tmp_path / MARKER_FILE).exists() and not (tmp_path / CHECKPOINT_DIR).exists()
    again = run_config(cfg, tmp_path)
    assert again == first  # read back, not recomputed

    failed = dict(first, status="failed", error="RuntimeError: node lost")
    atomic_write_json(tmp_path / "result.json", failed)
    rerun = run_config(cfg, tmp_path)
    assert rerun["status"] == "done" and rerun["finished_at"] >= first["finished_at"]
    assert json.loads((tmp_path / "attempts" / "1.json").read_text())["error"] == "RuntimeError: node lost"


def test_a_row_of_another_cell_in_the_folder_is_not_taken_for_this_one(tmp_path, tiny_overrides):
    run_config(compose_cfg(tiny_overrides + ["sparsity.target=0.5"]), tmp_path)
    row = run_config(compose_cfg(tiny_overrides + ["sparsity.target=0.6"]), tmp_path)
    assert row["sparsity_target"] == 0.6 and row["sparsity_measured"] > 0.55


def test_scan_tells_done_failed_killed_and_todo(tmp_path):
    for name, status in (("a", "done"), ("b", "failed")):
        atomic_write_json(
            tmp_path / name / "result.json",
            {"cell_id": name, "status": status, "error": "ValueError: bad\nmore" if status == "failed" else None},
        )
    atomic_write_json(tmp_path / "c" / MARKER_FILE, {"cell_id": "c", "job_id": None})  # killed: marker, no row
    write_plan(tmp_path, [{"cell_id": x, "cell": x, "overrides": []} for x in "abcd"])
    states = scan(tmp_path)
    assert {k: v.status for k, v in states.items()} == {"a": "done", "b": "failed", "c": "killed"}
    entries = sweep_status(tmp_path)
    assert [e["status"] for e in entries] == ["done", "failed", "killed", "todo"]
    text = format_status(entries, tmp_path)
    assert "4 cells: 1 done, 1 failed, 1 killed, 1 todo" in text and "failed   b  ValueError: bad" in text


def test_threads_follow_config_then_launcher_then_slurm(monkeypatch):
    monkeypatch.delenv("MLSWEEP_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert job_threads(0) == 0
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "8")
    assert job_threads(0) == 8
    monkeypatch.setenv("MLSWEEP_THREADS", "1")
    assert job_threads(0) == 1 and job_threads(3) == 3


def mlsweep(cwd, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mlsweep", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


@pytest.mark.integration
def test_relaunch_skips_done_cells_with_the_basic_launcher(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    grid = [*tiny_overrides, "name=relaunch", f"hydra.sweep.dir={sweep}", "pruner=wanda,magnitude"]
    first = mlsweep(tmp_path, *grid, "-m")
    assert first.returncode == 0, first.stderr[-3000:]
    rows = {p: p.read_text() for p in sweep.rglob("result.json")}
    assert len(rows) == 2
    plan = mlsweep(tmp_path, *grid, "-m", "--dry-run")  # the same as `mlsweep plan <grid>`
    assert plan.returncode == 0 and "2 cells: 2 done" in plan.stdout, plan.stderr[-2000:]
    t0 = time.time()
    again = mlsweep(tmp_path, *grid, "-m")
    assert again.returncode == 0 and "skipped 2 done; 0 to run" in again.stdout + again.stderr
    assert {p: p.read_text() for p in sweep.rglob("result.json")} == rows
    grown = mlsweep(tmp_path, *grid[:-1], "pruner=wanda,magnitude,sparsegpt", "-m")
    assert "skipped 2 done; 1 to run" in grown.stdout + grown.stderr and grown.returncode == 0
    assert len(list(sweep.rglob("result.json"))) == 3
    print(f"no-op relaunch: {time.time() - t0:.1f} s")


@pytest.mark.integration
def test_submitit_local_splits_the_cores_between_parallel_cells(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    proc = mlsweep(
        tmp_path,
        *tiny_overrides,
        "name=local",
        f"hydra.sweep.dir={sweep}",
        "pruner=wanda,magnitude",
        "hydra/launcher=submitit_local",
        "hydra.launcher.parallelism=2",
        "-m",
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rows = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    cores = len(os.sched_getaffinity(0))
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    assert all(r["threads"] == max(1, cores // 2) for r in rows)


def environ_of(pid: int) -> dict[str, str]:
    """The environment a running process started with (Linux)."""
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.integration
def test_submitit_local_passes_cuda_visible_devices_to_the_cell(tmp_path, tiny_overrides):
    """submitit's local executor empties CUDA_VISIBLE_DEVICES for a job asking no GPU; the cell must see ours."""
    sweep = tmp_path / "sweep"
    pause = Pause(tmp_path, "load")  # the cell is held while we read its environment
    env = {**os.environ, **pause.env, "CUDA_VISIBLE_DEVICES": "3,1"}
    grid = [*tiny_overrides, "name=visible", f"hydra.sweep.dir={sweep}", "hydra/launcher=submitit_local", "-m"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlsweep", *grid],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        seen = environ_of(pause.wait(proc))
        pause.release()
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child
    assert seen.get("CUDA_VISIBLE_DEVICES") == "3,1"
    assert proc.returncode == 0, out[-3000:]
    (row,) = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert row["status"] == "done" and row["job_id"] is None


@pytest.mark.integration
@pytest.mark.parametrize("keep", [True, False])
def test_checkpoint_blocks_decides_whether_blocks_are_saved_while_pruning(tmp_path, tiny_overrides, keep):
    """Held after block 0: its checkpoint is on disk with checkpoint_blocks=true, absent with false."""
    pause = Pause(tmp_path, "block:0")
    cell = tmp_path / "cell"
    args = [*tiny_overrides, "pruner=wanda", f"runtime.checkpoint_blocks={str(keep).lower()}", f"hydra.run.dir={cell}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlsweep", *args],
        cwd=tmp_path,
        env={**os.environ, **pause.env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        pause.wait(proc)
        saved = [p.name for p in (cell / CHECKPOINT_DIR).rglob("block_*.safetensors")]
        pause.release()
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child
    assert saved == (["block_0000.safetensors"] if keep else [])
    assert proc.returncode == 0, out[-3000:]
    row = json.loads((cell / "result.json").read_text())
    assert row["status"] == "done" and row["resumed_blocks"] == []
    assert not (cell / CHECKPOINT_DIR).exists(), "a done cell leaves no checkpoint"


@pytest.mark.integration
def test_a_killed_cell_shows_as_killed_and_is_run_again(tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["name=kill", f"hydra.sweep.dir={sweep}", "calib.nsamples=64", "pruner=sparsegpt", "-m"]
    pause = Pause(tmp_path, "block:0")  # held right after block 0 is pruned and checkpointed
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlsweep", *grid],
        cwd=tmp_path,
        env={**os.environ, **pause.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        pause.wait(proc)
        assert [p.name for p in sweep.rglob("block_*.safetensors")] == ["block_0000.safetensors"]
        assert list(sweep.rglob(MARKER_FILE)), "the cell is marked as running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group, started above
        proc.wait()
    assert not list(sweep.rglob("result.json"))
    status = mlsweep(tmp_path, "status", str(sweep))
    assert status.returncode == 1 and "1 killed" in status.stdout
    rerun = mlsweep(tmp_path, *grid)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (row,) = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert row["status"] == "done" and not list(sweep.rglob(MARKER_FILE))
    assert row["resumed_blocks"] == [0] and "restored from the cell's checkpoint" in rerun.stderr


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_rows_plans_markers_and_items_follow_the_umask(tmp_path, tiny_overrides, umask):
    """On a shared sweep folder a colleague must read what a cell wrote (mkstemp alone gives 0600)."""
    old = os.umask(umask)
    try:
        row = run_config(compose_cfg(tiny_overrides + ["pruner=wanda"]), tmp_path / "cell")
        write_plan(tmp_path, [{"cell_id": row["cell_id"]}])
        atomic_write_json(tmp_path / "cell2" / MARKER_FILE, {"pid": os.getpid()})
    finally:
        os.umask(old)
    assert row["status"] == "done", row.get("error")
    want = 0o666 & ~umask
    for path in [tmp_path / "cell" / "result.json", tmp_path / "cell" / "items.npz", tmp_path / "plan.json"]:
        assert path.exists(), path
        assert path.stat().st_mode & 0o777 == want, (path.name, oct(path.stat().st_mode & 0o777), oct(want))
    assert (tmp_path / "cell2" / MARKER_FILE).stat().st_mode & 0o777 == want
