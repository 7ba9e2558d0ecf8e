"""Several cells per job (hydra.launcher.cells_per_job): packed by model, the numbers of one cell per job."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import Pause

from mlsweep.sweep.costs import Cost
from mlsweep.sweep.launch import packed_groups
from mlsweep.sweep.packing import pack
from mlsweep.sweep.resources import check_cells_per_job

GRID = ["pruner=dense,magnitude,wanda", "sparsity.target=0.5,0.6"]  # 5 cells: dense is run once
METRICS = ("ppl/", "eval_windows/", "sparsity_", "calib_count/")


def _spec(path: str) -> SimpleNamespace:
    """What packing reads of a cell spec: its model's loading fields."""
    model = SimpleNamespace(
        path=path, revision=None, dtype="float32", device="cpu", trust_remote_code=False, attn_implementation=None
    )
    return SimpleNamespace(model=SimpleNamespace(**vars(model), device_map=None))


def test_a_pack_holds_one_model_and_at_most_k_cells():
    specs = [_spec(p) for p in ["a", "b", "a", "a", "b", "a"]]
    assert pack(list(range(6)), specs, 2) == [[0, 2], [1, 4], [3, 5]]
    assert pack(list(range(6)), specs, 1) == [[i] for i in range(6)]
    assert pack(list(range(6)), specs, 10) == [[0, 2, 3, 5], [1, 4]]


def test_a_packed_job_asks_for_the_time_of_all_its_cells(monkeypatch):
    import mlsweep.sweep.launch as launch

    monkeypatch.setattr(launch, "planned_cost", lambda spec, launcher: Cost(10.0, 0.5, 1.0))  # 30 minutes each
    cells = [(i, [f"x={i}"], _spec("a")) for i in range(5)]
    rules = [{"max_params_b": 10, "timeout_min": 20, "mem_gb": 8}]
    one = packed_groups(cells, rules, 2.0, ["mem_gb", "timeout_min"], cells_per_job=1)
    assert [(json.loads(k)["timeout_min"], len(v)) for k, v in one.items()] == [(60, 5)]
    three = packed_groups(cells, rules, 2.0, ["mem_gb", "timeout_min"], cells_per_job=3)
    assert sorted((json.loads(k)["timeout_min"], [len(job) for job in v]) for k, v in three.items()) == [
        (120, [2]),
        (180, [3]),
    ]


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_cells_per_job_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match=r"hydra.launcher.cells_per_job=.*at least 1"):
        check_cells_per_job(bad)


def _sweep(cwd: Path, sweep: Path, overrides, per_job: int, env=None, **popen):
    args = [
        *overrides,
        *GRID,
        "name=packed",
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=submitit_local",
        f"hydra.launcher.cells_per_job={per_job}",
        "-m",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "mlsweep", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **popen,
    )


def _rows(sweep: Path) -> dict[str, dict]:
    return {r["cell_id"]: r for r in (json.loads(p.read_text()) for p in sweep.rglob("result.json"))}


def _metrics(row: dict) -> dict:
    return {k: v for k, v in row.items() if k.startswith(METRICS)}


@pytest.mark.integration
def test_cells_packed_three_per_job_give_the_rows_of_one_cell_per_job(tmp_path, tiny_overrides):
    runs = {}
    for per_job in (1, 3):
        proc = _sweep(tmp_path, tmp_path / f"k{per_job}", tiny_overrides, per_job)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-4000:]
        runs[per_job] = (_rows(tmp_path / f"k{per_job}"), out)
    alone, packed = runs[1][0], runs[3][0]
    assert len(alone) == 5 and alone.keys() == packed.keys()
    for cell_id, row in alone.items():
        assert row["status"] == packed[cell_id]["status"] == "done"
        assert _metrics(row) and _metrics(row) == _metrics(packed[cell_id]), cell_id
    assert "3 cell(s) submitted in 1 job(s)" in runs[3][1] and "2 cell(s) submitted in 1 job(s)" in runs[3][1]
    jobs = {}  # the local job each cell ran in (submitit's job ids, recorded by the launcher)
    for cell_id, job in json.loads((tmp_path / "k3" / "submitted.json").read_text()).items():
        jobs.setdefault(job, []).append(packed[cell_id]["model_source"])
    assert sorted(sorted(sources) for sources in jobs.values()) == [
        ["loaded", "restored:copy"],
        ["loaded", "restored:copy", "restored:copy"],
    ]
    assert {row["model_source"] for row in alone.values()} == {"loaded"}
    assert len(set(json.loads((tmp_path / "k1" / "submitted.json").read_text()).values())) == 5


@pytest.mark.integration
def test_a_pack_killed_in_its_second_cell_keeps_the_first_and_a_relaunch_runs_the_rest(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    pause = Pause(tmp_path, "prune#2")  # the second cell of the pack, pruned, not yet evaluated
    proc = _sweep(tmp_path, sweep, tiny_overrides, 5, env=pause.env)
    try:
        os.kill(pause.wait(proc), signal.SIGKILL)  # the job process, as a node failure would
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()  # our own child
    assert proc.returncode == 1 and "1 done, 4 failed" in out, out[-4000:]
    (first,) = _rows(sweep).values()
    assert first["status"] == "done" and first["pruner"] == "dense"

    again = _sweep(tmp_path, sweep, tiny_overrides, 5)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0 and "skipped 1 done; 4 to run" in out, out[-4000:]
    rows = _rows(sweep)
    assert len(rows) == 5 and all(r["status"] == "done" for r in rows.values())
    assert rows[first["cell_id"]]["started_at"] == first["started_at"]  # not run again
