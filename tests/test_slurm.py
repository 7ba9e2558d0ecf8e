"""Sweeps through `hydra/launcher=slurm` against a real slurmctld/slurmd (the slurm_cluster fixture).

What a researcher's sweep must survive: a relaunch of a finished sweep submits
nothing; a failed cell is the only one re-run after the fix; a job cancelled
mid-run leaves no finished-looking row, shows as killed, and is re-run; a
detached launch returns at once and `mlsweep status` follows it from disk.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Pause, start_minislurm

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

SLURM = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.timeout_min=5",
    "hydra.launcher.resources=[{max_params_b:1,mem_gb:1,cpus_per_task:1,timeout_min:5}]",
]


def mlsweep(cluster, cwd, *args, check=None, timeout=400, env=None):
    env = {**os.environ, **cluster.env(), **(env or {})}
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "mlsweep", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )
    proc.wall = time.time() - t0
    out = proc.stdout + proc.stderr
    if check is not None:
        assert proc.returncode == check, out[-4000:]
    return proc, out


def rows(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob("result.json"))]


def sbatch_files(sweep_dir: Path) -> list[Path]:
    return sorted((sweep_dir / ".submitit").rglob("*submission.sh"))


def test_2x2_sweep_on_slurm_then_a_relaunch_submits_nothing(slurm_cluster, tiny_overrides, tmp_path):
    sweep_dir = tmp_path / "sweep"
    grid = [
        *tiny_overrides,
        "name=slurm2x2",
        f"hydra.sweep.dir={sweep_dir}",
        *SLURM,
        "pruner=wanda,magnitude",
        "sparsity.target=0.5,0.6",
    ]

    _, plan = mlsweep(slurm_cluster, tmp_path, "plan", *grid, check=0)
    assert "4 cells: 4 todo" in plan
    assert plan.count("mem_gb=1 cpus_per_task=1 timeout_min=5") == 4  # the resource rule, per cell

    first, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=0)
    assert "4 done, 0 failed" in out
    done = rows(sweep_dir)
    assert len(done) == 4 and all(r["status"] == "done" for r in done)
    assert sorted((r["pruner"], r["sparsity_target"]) for r in done) == [
        ("magnitude", 0.5),
        ("magnitude", 0.6),
        ("wanda", 0.5),
        ("wanda", 0.6),
    ]
    script = sbatch_files(sweep_dir)[0].read_text()
    assert "--gpus-per-node=1" in script and "--mem=1GB" in script  # a GPU per cell, from the rule
    assert all(r["sparsity_measured"] > 0.45 for r in done)
    assert not list(sweep_dir.rglob("running.json"))
    submitted = json.loads((sweep_dir / "submitted.json").read_text())
    assert len(submitted) == 4

    _, plan = mlsweep(slurm_cluster, tmp_path, "plan", *grid, check=0)
    assert "4 cells: 4 done" in plan

    again, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=0)
    assert "skipped 4 done; 0 to run" in out and "nothing to run" in out
    assert json.loads((sweep_dir / "submitted.json").read_text()) == submitted  # nothing new submitted
    assert len(sbatch_files(sweep_dir)) == len(set(j.split("_")[0] for j in submitted.values()))
    assert "cell(s) submitted" not in out  # the launcher was not even called
    print(f"\n2x2 SLURM sweep: {first.wall:.1f} s; no-op relaunch: {again.wall:.1f} s")

    packed_dir = tmp_path / "packed"  # the same cells in one job: the model loaded once, the same numbers
    packed_grid = [o for o in grid if not o.startswith("hydra.sweep.dir=")]
    packed_grid += [f"hydra.sweep.dir={packed_dir}", "hydra.launcher.cells_per_job=4"]
    _, plan = mlsweep(slurm_cluster, tmp_path, "plan", *packed_grid, check=0)
    assert "4 cells to run in 1 jobs (hydra.launcher.cells_per_job=4" in plan
    _, out = mlsweep(slurm_cluster, tmp_path, *packed_grid, "-m", check=0)
    assert "4 cell(s) submitted in 1 job(s)" in out and "4 done, 0 failed" in out
    packed = {r["cell_id"]: r for r in rows(packed_dir)}
    (job,) = {r["job_id"] for r in packed.values()}
    assert sorted(r["model_source"] for r in packed.values()) == ["loaded"] + ["restored:copy"] * 3
    for row in done:
        same = packed[row["cell_id"]]
        metrics = [k for k in row if k.startswith(("ppl/", "eval_windows/", "sparsity_", "calib_count/"))]
        assert metrics and {k: row[k] for k in metrics} == {k: same[k] for k in metrics}
    assert len(sbatch_files(packed_dir)) == 1 and "--time=" in sbatch_files(packed_dir)[0].read_text()


def test_only_the_failed_cell_is_rerun_after_the_fix(slurm_cluster, tiny_model, text_folder, tmp_path):
    text = tmp_path / "text"
    shutil.copytree(text_folder, text)
    clean = (text / "bb" / "test.jsonl").read_text()
    shutil.copy(text / "bb" / "calib.jsonl", text / "bb" / "test.jsonl")  # bb's eval text leaks calibration text
    sweep_dir = tmp_path / "sweep"
    grid = [
        f"model.path={tiny_model}",
        "model.name=tiny",
        "model.seqlen=32",
        "model.device=cpu",
        "calib.source.name=local",
        f"calib.source.path={text}",
        "calib.nsamples=4",
        "eval.source.name=local",
        f"eval.source.path={text}",
        "eval.languages=[aa,bb]",
        "eval.max_windows=4",
        "name=slurmfix",
        f"hydra.sweep.dir={sweep_dir}",
        *SLURM,
        "pruner=wanda",
        "calib.languages=[aa],[bb]",
    ]

    _, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=1)
    assert "1 of 2 cells failed" in out
    first = {r["calib_languages"]: r for r in rows(sweep_dir)}
    assert first["bb"]["status"] == "failed" and first["aa"]["status"] == "done"
    jobs = json.loads((sweep_dir / "submitted.json").read_text())
    aa, bb = first["aa"]["cell_id"], first["bb"]["cell_id"]

    _, status = mlsweep(slurm_cluster, tmp_path, "status", str(sweep_dir), check=1)
    assert "1 done, 1 failed" in status and "calibration text" in status

    (text / "bb" / "test.jsonl").write_text(clean)  # the fix
    _, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=0)
    assert "skipped 1 done; 1 to run" in out
    assert "[launch] 1 cell(s) submitted" in out and "[launch] 2 cell(s) submitted" not in out
    again = json.loads((sweep_dir / "submitted.json").read_text())
    assert again[aa] == jobs[aa] and again[bb] != jobs[bb]  # a new job for bb only
    after = {r["calib_languages"]: r for r in rows(sweep_dir)}
    assert after["aa"] == first["aa"]  # untouched: same row, same finish time
    assert after["bb"]["status"] == "done" and after["bb"]["job_id"] == again[bb]  # run by the new job
    kept = list(sweep_dir.rglob("attempts/1.json"))  # the failed row is kept, not overwritten
    assert len(kept) == 1 and json.loads(kept[0].read_text())["status"] == "failed"


def _wait(what, predicate, timeout=180.0):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def squeue(cluster, *jobs: str) -> dict[str, str]:
    """job id -> state of those of `jobs` SLURM still has."""
    out = cluster.run("squeue", "-h", "-o", "%i %T", "-j", ",".join(jobs))
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_detached_launch_then_scancel_mid_run_then_relaunch(slurm_cluster, tmp_path):
    sweep_dir = tmp_path / "sweep"
    grid = [
        "name=slurmkill",
        f"hydra.sweep.dir={sweep_dir}",
        *SLURM,
        "calib.nsamples=64",
        "pruner=sparsegpt",
        "sparsity.target=0.5",
    ]
    pause = Pause(tmp_path, "block:0")  # the job holds right after block 0 is pruned and checkpointed
    launch, out = mlsweep(slurm_cluster, tmp_path, *grid, "hydra.launcher.wait=false", "-m", check=0, env=pause.env)
    assert "1 cells submitted" in out
    (job,) = json.loads((sweep_dir / "submitted.json").read_text()).values()
    assert job in squeue(slurm_cluster, job)  # returned while the job is still there

    pause.wait()
    (marker,) = sweep_dir.rglob("running.json")
    assert json.loads(marker.read_text())["job_id"] == job
    assert [p.name for p in sweep_dir.rglob("block_*.safetensors")] == ["block_0000.safetensors"]
    slurm_cluster.run("scancel", job)  # mid-prune
    _wait("the job to leave the queue", lambda: job not in squeue(slurm_cluster, job))
    assert not rows(sweep_dir)  # nothing that looks finished

    _, status = mlsweep(slurm_cluster, tmp_path, "status", str(sweep_dir), check=1)
    assert "1 killed" in status
    _, plan = mlsweep(slurm_cluster, tmp_path, "plan", *grid, check=0)
    assert "1 cells: 1 killed" in plan

    _, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=0)
    assert "1 done, 0 failed" in out
    (row,) = rows(sweep_dir)
    assert row["status"] == "done" and row["resumed_blocks"] == [0]  # resumed, not restarted
    assert not list(sweep_dir.rglob("block_*.safetensors"))  # the checkpoint goes once the cell is done
    _, status = mlsweep(slurm_cluster, tmp_path, "status", str(sweep_dir), check=0)
    assert "1 cells: 1 done" in status
    print(f"\ndetached launch returned in {launch.wall:.1f} s")


def test_a_relaunch_skips_cells_whose_jobs_are_queued_or_running(slurm_cluster, tiny_overrides, tmp_path):
    """The node has one GPU and each cell asks for one: the first cell is held running, the second waits queued."""
    sweep_dir = tmp_path / "sweep"
    grid = [*tiny_overrides, "name=slurmbusy", f"hydra.sweep.dir={sweep_dir}", *SLURM, "pruner=wanda,magnitude"]
    pause = Pause(tmp_path, "load")
    _, out = mlsweep(slurm_cluster, tmp_path, *grid, "hydra.launcher.wait=false", "-m", check=0, env=pause.env)
    assert "2 cells submitted" in out
    submitted = json.loads((sweep_dir / "submitted.json").read_text())
    pause.wait()
    states = squeue(slurm_cluster, *submitted.values())
    assert sorted(states.values()) == ["PENDING", "RUNNING"], states

    _, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=0)
    assert "1 running" in out and "1 queued" in out and "0 to run" in out and "nothing to run" in out
    assert "cell(s) submitted" not in out
    assert json.loads((sweep_dir / "submitted.json").read_text()) == submitted  # no second job for either
    _, status = mlsweep(slurm_cluster, tmp_path, "status", str(sweep_dir), check=0)
    assert "2 cells: 1 running, 1 queued" in status

    pause.release()
    _wait("both jobs to end", lambda: not squeue(slurm_cluster, *submitted.values()))
    assert sorted(r["status"] for r in rows(sweep_dir)) == ["done", "done"]
    assert sorted(r["job_id"] for r in rows(sweep_dir)) == sorted(submitted.values())


def while_held(cluster, tmp_path, sweep_dir, grid, stage, act):
    """Launch (waiting), hold the cell at `stage`, call `act(job id)`; returns (exit code, output, job id)."""
    pause = Pause(tmp_path, stage)
    launch = subprocess.Popen(
        [sys.executable, "-m", "mlsweep", *grid, "-m"],
        cwd=tmp_path,
        env={**os.environ, **cluster.env(), **pause.env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        pause.wait(launch)
        (marker,) = sweep_dir.rglob("running.json")
        job = json.loads(marker.read_text())["job_id"]
        act(job)
        out, _ = launch.communicate(timeout=400)
    finally:
        if launch.poll() is None:
            launch.kill()  # our own child
    return launch.returncode, out, job


def preempt(cluster, job: str, requeue: bool) -> None:
    """Send the job USR2 as SLURM does at the time limit or a preemption (`requeue`: and release the
    requeued job)."""
    cluster.run("scancel", "--signal=USR2", job)
    if requeue:
        # SLURM holds a requeued job for 2 minutes (its BeginTime); release it, as an admin can, 2 s on:
        # slurmd refuses a job credential issued in the second its previous run's was revoked
        _wait("the requeue", lambda: squeue(cluster, job).get(job) == "PENDING")
        cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now+2")


def preempt_while_held(cluster, tmp_path, sweep_dir, grid, stage, requeue):
    """Launch (waiting), hold the cell at `stage`, preempt its job; returns (exit code, output, job id)."""
    return while_held(cluster, tmp_path, sweep_dir, grid, stage, lambda job: preempt(cluster, job, requeue))


def test_a_preempted_cell_is_requeued_and_resumes_from_its_block_checkpoint(slurm_cluster, tmp_path):
    """USR2 is SLURM's time-limit and preemption signal for submitit: it checkpoints the job function and
    requeues the job while it has requeues left (hydra.launcher.max_num_timeout)."""
    sweep_dir = tmp_path / "sweep"
    grid = [
        "name=slurmpreempt",
        f"hydra.sweep.dir={sweep_dir}",
        *SLURM,
        "hydra.launcher.max_num_timeout=1",
        "calib.nsamples=64",
        "pruner=sparsegpt",
        "sparsity.target=0.6",
    ]
    code, out, job = preempt_while_held(slurm_cluster, tmp_path, sweep_dir, grid, "block:0", requeue=True)
    assert code == 0, out[-4000:]
    assert "1 done, 0 failed" in out
    (row,) = rows(sweep_dir)
    assert row["status"] == "done" and row["job_id"] == job  # the same job, requeued
    assert row["resumed_blocks"] == [0]
    assert "Restarts=1" in slurm_cluster.run("scontrol", "show", "job", job)  # submitit requeued it once


def test_a_preempted_pack_is_requeued_and_resumes_at_its_first_unfinished_cell(slurm_cluster, tiny_overrides, tmp_path):
    """Two cells in one job, preempted in the second: the requeued job skips the first (its row stays as
    it was) and resumes the second from its block checkpoint."""
    sweep_dir = tmp_path / "sweep"
    grid = [
        *tiny_overrides,
        "name=slurmpack",
        f"hydra.sweep.dir={sweep_dir}",
        *SLURM,
        "hydra.launcher.max_num_timeout=1",
        "hydra.launcher.cells_per_job=2",
        "pruner=wanda,sparsegpt",
        "sparsity.target=0.6",
    ]
    first = {}

    def act(job: str) -> None:
        (row,) = rows(sweep_dir)  # the first cell is done when the second is held
        first.update(row)
        preempt(slurm_cluster, job, requeue=True)

    code, out, job = while_held(slurm_cluster, tmp_path, sweep_dir, grid, "block:0#2", act)
    assert code == 0 and "2 done, 0 failed" in out, out[-4000:]
    assert first["status"] == "done" and first["pruner"] == "wanda"
    done = {r["pruner"]: r for r in rows(sweep_dir)}
    assert done["wanda"] == first  # skipped by the requeued job, not run again
    assert done["sparsegpt"]["status"] == "done" and done["sparsegpt"]["resumed_blocks"] == [0]
    assert done["sparsegpt"]["job_id"] == first["job_id"] == job  # one job, requeued
    assert done["sparsegpt"]["model_source"] == "loaded"  # a fresh process after the requeue
    assert "Restarts=1" in slurm_cluster.run("scontrol", "show", "job", job)


def test_max_num_timeout_zero_lets_a_timed_out_cell_fail_instead_of_requeueing(slurm_cluster, tiny_overrides, tmp_path):
    """submitit counts a USR2 as a time-out when the job asked for less than 10 minutes (its guaranteed
    walltime, min(0.8 T, T - 10 min), is then negative): with no requeue left the job ends there."""
    sweep_dir = tmp_path / "sweep"
    grid = [*tiny_overrides, "name=slurmtimeout", f"hydra.sweep.dir={sweep_dir}", *SLURM]
    code, out, job = preempt_while_held(
        slurm_cluster, tmp_path, sweep_dir, [*grid, "hydra.launcher.max_num_timeout=0"], "load", requeue=False
    )
    assert code == 1 and "1 of 1 cells failed" in out, out[-4000:]
    (row,) = rows(sweep_dir)
    assert row["status"] == "failed" and "timed-out too many times" in row["error"], row["error"]
    assert "Restarts=0" in slurm_cluster.run("scontrol", "show", "job", job)  # not requeued


def test_a_blocking_launch_fails_a_cell_whose_job_was_cancelled_without_a_result(
    slurm_cluster, tiny_overrides, tmp_path
):
    """Without accounting submitit reads a vanished job as UNKNOWN and would wait for it forever: the
    launcher sees it gone from squeue for hydra.launcher.lost_after_s and fails its cell instead."""
    sweep_dir = tmp_path / "sweep"
    grid = [*tiny_overrides, "name=slurmlost", f"hydra.sweep.dir={sweep_dir}", *SLURM, "hydra.launcher.lost_after_s=3"]
    # scancel: SIGTERM, then SIGKILL, and submitit writes no result
    code, out, job = while_held(
        slurm_cluster, tmp_path, sweep_dir, grid, "load", lambda j: slurm_cluster.run("scancel", j)
    )
    assert code == 1 and "1 of 1 cells failed" in out, out[-4000:]
    assert f"job {job} left the SLURM queue without a result" in out
    assert not rows(sweep_dir)  # nothing that looks finished
    _, status = mlsweep(slurm_cluster, tmp_path, "status", str(sweep_dir), check=1)
    assert "1 killed" in status


def _sacct_state(cluster, job: str) -> str:
    """The job's state in the accounting database: the allocation's line only (-X), not its steps'."""
    return cluster.run("sacct", "-j", job, "-n", "-X", "-o", "State").strip()


def _sacct_final_state(cluster, job: str) -> str:
    return _wait(
        f"sacct to report job {job} ended",
        lambda: (s := _sacct_state(cluster, job)) not in ("", "PENDING", "RUNNING", "COMPLETING") and s,
        60,
    )


@pytest.mark.slow
def test_with_accounting_sacct_reports_completed_jobs(tiny_overrides, tmp_path):
    """MiniSlurm(accounting=True): slurmdbd on a private MariaDB, so sacct (and submitit) see real job states."""
    t0 = time.time()
    cluster = start_minislurm(tmp_path / "slurm", accounting=True)  # its own cluster: not the session fixture's
    up = time.time() - t0
    try:
        job = cluster.run("sbatch", "--parsable", f"--chdir={tmp_path}", "-o", "/dev/null", "--wrap", "true")
        job = job.strip().split(";")[0]
        assert job.isdigit(), job
        assert _sacct_final_state(cluster, job) == "COMPLETED"

        sweep_dir = tmp_path / "sweep"
        grid = [*tiny_overrides, "name=slurmacct", f"hydra.sweep.dir={sweep_dir}", *SLURM]
        _, out = mlsweep(cluster, tmp_path, *grid, "-m", check=0)
        assert "1 done, 0 failed" in out
        assert "sacct) is unavailable" not in out  # submitit read the job state from sacct, not UNKNOWN
        (cell_job,) = json.loads((sweep_dir / "submitted.json").read_text()).values()
        assert _sacct_final_state(cluster, cell_job) == "COMPLETED"
    finally:
        cluster.down()
    print(f"\naccounting cluster up in {up:.1f} s")


def test_a_cell_evaluated_over_two_gpus_asks_slurm_for_two(slurm_cluster, tmp_path):
    """Llama-3-70B's config.json (no weights) with model.device_map: the plan and the sbatch script ask for
    2 GPUs; the test node has one, so SLURM refuses the job at submission and the cell is reported failed."""
    from helpers import toy_documents, train_tokenizer
    from transformers import LlamaConfig

    model = tmp_path / "llama70b"
    LlamaConfig(  # Meta-Llama-3-70B-Instruct's shape (mlsweep/conf/model/llama3_70b_instruct.yaml)
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=128256,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
    ).save_pretrained(model)
    train_tokenizer([d for lang in ("aa", "bb", "cc") for d in toy_documents(lang, 20, 0)]).save_pretrained(model)
    sweep_dir = tmp_path / "sweep"
    grid = [
        "+experiment=lang_calib",
        "model=llama3_70b_instruct",
        f"model.path={model}",
        "model.seqlen=128",
        "pruner=wanda",
        "calib=en",
        "calib.seed=0",
        "sparsity.target=0.5",
        "eval.max_windows=1",
        f"hydra.sweep.dir={sweep_dir}",
        *SLURM[:2],
        "hydra.launcher.resources=[{max_params_b:100,mem_gb:1,cpus_per_task:1,timeout_min:5}]",
        "hydra.launcher.wait=false",
    ]
    _, plan = mlsweep(slurm_cluster, tmp_path, "plan", *grid, check=0)
    (line,) = [x for x in plan.splitlines() if x.startswith("todo ")]
    assert "gpus_per_node=2" in line and "mem_gb=1 cpus_per_task=1" in line, line

    _, out = mlsweep(slurm_cluster, tmp_path, *grid, "-m", check=1)
    (script,) = sorted((sweep_dir / ".submitit").rglob("*submission*.sh"))
    text = script.read_text()
    assert "#SBATCH --gpus-per-node=2" in text and "#SBATCH --mem=1GB" in text
    assert "sbatch refused 1 cell(s)" in out and "Requested node configuration is not available" in out
    assert "1 of 1 cells failed" in out
