"""A sweep folder under stress: unreadable rows, live cells, concurrent launches, escaping names, credentials.

Each test runs the real `python -m mlsweep` (Hydra, the mlsweep sweeper and the basic launcher) on the
tiny model; a live cell is held at a named stage through the cell's test hook (helpers.Pause).
"""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from helpers import Pause
from test_cell import compose_cfg

from mlsweep.cell.app import run_config
from mlsweep.credentials import credential_override
from mlsweep.results.cellfolder import ATTEMPTS_DIR, FOLDER_MAX, MARKER_FILE, claim, read_row, safe_folder
from mlsweep.sweep.lifecycle import scan
from mlsweep.sweep.resources import check_launcher

pytestmark = pytest.mark.integration


def mlsweep(cwd, *args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mlsweep", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def sweep_grid(tiny_overrides, sweep, pruners="wanda,magnitude"):
    return [*tiny_overrides, "name=safety", f"hydra.sweep.dir={sweep}", f"pruner={pruners}", "-m"]


BAD_ROWS = ["[1, 2]", "42", '{"cell_id": "abc", "stat']  # a list, a number, a truncated object


def test_unreadable_rows_are_named_and_their_cells_run_again(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    grid = sweep_grid(tiny_overrides, sweep, pruners="wanda,magnitude,sparsegpt,dense")
    assert mlsweep(tmp_path, *grid).returncode == 0
    rows = sorted(sweep.rglob("result.json"))
    assert len(rows) == 4
    *bad, good = rows
    kept = good.read_text()
    for path, content in zip(bad, BAD_ROWS):
        path.write_text(content)
        with pytest.raises(ValueError, match=re.escape(f"{path}: not")):
            read_row(path)

    status = mlsweep(tmp_path, "status", str(sweep))
    assert "Traceback" not in status.stderr, status.stderr[-2000:]
    for path in bad:
        assert f"unreadable, counted as not done: {path}" in status.stderr
    assert "4 cells: 1 done, 3 todo" in status.stdout

    plan = mlsweep(tmp_path, *grid[:-1], "--dry-run")
    assert plan.returncode == 0 and "4 cells: 3 todo, 1 done;" in plan.stdout, plan.stdout[-2000:]

    again = mlsweep(tmp_path, *grid)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "skipped 1 done; 3 to run" in again.stdout + again.stderr
    assert good.read_text() == kept
    for path, content in zip(bad, BAD_ROWS):
        assert json.loads(path.read_text())["status"] == "done"
        assert (path.parent / ATTEMPTS_DIR / "1.json").read_text() == content  # kept, never lost


def test_a_live_local_cell_is_running_and_a_second_launch_leaves_it_alone(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    grid = sweep_grid(tiny_overrides, sweep, pruners="sparsegpt")
    pause = Pause(tmp_path, "block:0")  # held right after block 0 is pruned and checkpointed
    first = subprocess.Popen(
        [sys.executable, "-m", "mlsweep", *grid],
        cwd=tmp_path,
        env={**os.environ, **pause.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        pause.wait(first)
        status = mlsweep(tmp_path, "status", str(sweep))
        assert "1 running" in status.stdout and "killed" not in status.stdout, status.stdout

        second = mlsweep(tmp_path, *grid)
        assert second.returncode == 0, second.stderr[-3000:]
        assert "skipped 1 running; 0 to run" in second.stdout + second.stderr
        assert not list(sweep.rglob("result.json"))

        (marker,) = sweep.rglob(MARKER_FILE)  # the sweeper's scan said running; the cell's lock says so too
        row = run_config(compose_cfg([*tiny_overrides, "pruner=sparsegpt"]), marker.parent)
        assert row["status"] == "held" and "another process" in row["error"]
        assert not (marker.parent / "result.json").exists()
        pause.release()
        out, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # our own process group, started above
            first.wait()
    assert first.returncode == 0, out[-3000:]
    (row,) = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert row["status"] == "done" and row["resumed_blocks"] == []  # never resumed from its own checkpoint


def test_two_simultaneous_launches_run_each_cell_once(tmp_path, tiny_overrides):
    sweep = tmp_path / "sweep"
    grid = sweep_grid(tiny_overrides, sweep, pruners="wanda,magnitude,sparsegpt")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mlsweep", *grid[:-1], "runtime.threads=1", "-m"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    validated = [line for o in outs for line in o.splitlines() if "] validate " in line]
    assert len(validated) == 3, validated  # each cell computed by one launch only
    rows = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    assert not list(sweep.rglob(f"{ATTEMPTS_DIR}/*.json"))


def test_a_marker_of_a_dead_process_reads_killed_and_of_this_one_running(tmp_path):
    from mlsweep.results.cellfolder import atomic_write_json, process_identity

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    atomic_write_json(tmp_path / "a" / MARKER_FILE, {"cell_id": "a", **process_identity(), "job_id": None})
    atomic_write_json(
        tmp_path / "b" / MARKER_FILE,
        {"cell_id": "b", **process_identity(), "pid": int(dead.stdout), "job_id": None},
    )
    reused = {"cell_id": "c", **process_identity(), "pid_start": "another boot:1", "job_id": None}
    atomic_write_json(tmp_path / "c" / MARKER_FILE, reused)  # a live pid that started at another time
    assert {k: v.status for k, v in scan(tmp_path).items()} == {"a": "running", "b": "killed", "c": "killed"}


def test_a_held_cell_folder_cannot_be_claimed_twice(tmp_path):
    with claim(tmp_path / "cell"):
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from mlsweep.results.cellfolder import claim, CellHeld\n"
                "try:\n    claim(sys.argv[1]).__enter__()\nexcept CellHeld as e:\n    print('held:', e)",
                str(tmp_path / "cell"),
            ],
            capture_output=True,
            text=True,
        )
        assert probe.stdout.startswith("held:"), probe.stdout + probe.stderr
    with claim(tmp_path / "cell"):  # released with its holder
        pass


def test_names_and_folders_from_overrides_stay_inside_the_sweep(tmp_path, tiny_overrides, tiny_model):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    relative = os.path.relpath(tiny_model, work)  # ../../../.. up, then down to the model: would leave the sweep
    overrides = [o for o in tiny_overrides if not o.startswith("model.path=")]
    run = mlsweep(work, *overrides, "name=../../escape", f"model.path={relative}", "pruner=magnitude", "-m")
    assert run.returncode == 0, run.stderr[-3000:]
    (row_path,) = (tmp_path).rglob("result.json")
    assert (work / "outputs") in row_path.parents, row_path
    sweep = row_path.parent.parent
    assert sweep.parent == work / "outputs" and sweep.name == ".._.._escape"
    assert "/" not in row_path.parent.name and "model.path=.._" in row_path.parent.name
    status = mlsweep(work, "status", str(sweep))
    assert "1 cells: 1 done" in status.stdout, status.stdout


def test_safe_folder_keeps_names_distinct_and_short():
    assert safe_folder("pruner=wanda,sparsity.target=0.5") == "pruner=wanda,sparsity.target=0.5"
    assert safe_folder("..") == "__" and safe_folder("a/../b") == "a_.._b" and safe_folder("") == ""
    long_a, long_b = "x=" + "a" * 300, "x=" + "a" * 299 + "b"
    assert len(safe_folder(long_a).encode()) <= FOLDER_MAX and safe_folder(long_a) != safe_folder(long_b)


def test_credentials_are_refused_as_overrides_and_never_printed(tmp_path, tiny_overrides, monkeypatch):
    secret = "k3y-0f-the-user-9f8e7d"
    env = {"WANDB_API_KEY": secret}
    for extra in (["+report.api_token=abc"], [f"model.name={secret}"], [f"model.name=tiny,{secret}", "-m"]):
        run = mlsweep(tmp_path, *tiny_overrides, *extra, env=env)
        assert run.returncode != 0
        assert "api_token: looks like a credential" in run.stderr or "credential held in the environment" in run.stderr
        assert secret not in run.stdout + run.stderr
    assert not (tmp_path / "outputs").exists()
    # in an experiment's grid (hydra.sweeper.params) the sweeper refuses it too, without echoing it
    monkeypatch.setenv("WANDB_API_KEY", secret)
    assert credential_override(["pruner=wanda", f"model.name={secret}"]).endswith("not run")
    assert secret not in credential_override([f"model.name={secret}"])
    assert credential_override(["pruner=wanda", "model.name=tiny"]) == ""


def test_a_cuda_cell_on_a_machine_without_cuda_fails_before_loading(tmp_path, tiny_overrides):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = compose_cfg([o for o in tiny_overrides if not o.startswith("model.device=")] + ["model.device=cuda"])
    row = run_config(cfg, tmp_path)
    assert row["status"] == "failed" and "model.device=cuda" in row["error"] and "no CUDA device" in row["error"]
    assert "time/load_s" not in row


@pytest.mark.parametrize(
    "rules, field",
    [
        ([{"max_params_b": "ten"}], "resources[0].max_params_b='ten': must be a number"),
        ([{"max_params_b": 10, "mem_gb": "lots"}], "resources[0].mem_gb='lots': must be a number"),
        ([{"max_params_b": 10, "gpus": 2}], "resources[0].gpus: not a launcher parameter"),
        (["big"], "resources[0]='big': a rule is a mapping"),
    ],
)
def test_malformed_resource_rules_are_named(rules, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        check_launcher({"resources": rules, "gpus_per_node": 1, "mem_gb": 8, "timeout_min": 60})


def test_plan_refuses_a_malformed_rule_without_a_traceback(tmp_path, tiny_overrides):
    run = mlsweep(
        tmp_path, "plan", *tiny_overrides, "hydra/launcher=slurm", "+hydra.launcher.resources=[{max_params_b: ten}]"
    )
    assert run.returncode == 2 and "max_params_b='ten': must be a number" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
