"""Hydra plugin shell of the mlsweep launchers (logic: mlsweep/sweep/launch.py).

`mlsweep_slurm` and `mlsweep_submitit_local` extend hydra-submitit-launcher's
configs with mlsweep's keys (resources, timeout_factor, wait, parallelism,
cells_per_job); conf/hydra/launcher/{slurm,submitit_local}.yaml select them.
"""

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf

from mlsweep.cell.jobenv import THREADS_ENV
from mlsweep.config.spec import CellSpec
from mlsweep.results.cellfolder import finished_row
from mlsweep.sweep.costs import GPU_MEMORY_GB
from mlsweep.sweep.launch import (
    collect,
    executor_params,
    local_threads,
    packed_groups,
    quiet_sacct,
    remember,
    split_params,
)
from mlsweep.sweep.resources import check_cells_per_job
from mlsweep.sweep.sweeper import planned


def failed_return(overrides: Sequence[str], error: BaseException) -> JobReturn:
    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


def submitted_returns(overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    return [JobReturn(overrides=list(ov), status=JobStatus.COMPLETED, _return_value="submitted") for ov in overrides]


class PackedCells:
    """The function of a job running several cells one after another (hydra.launcher.cells_per_job).

    Each cell runs as an unpacked job would run it (the launcher's own job function: compose, run in
    its folder, write its row); the process keeps the model between them (mlsweep.cell.modelcache). A
    finished cell returns its row at once, so a requeued pack resumes at its first unfinished cell.
    """

    def __init__(self, launcher) -> None:
        self.launcher = launcher

    def __call__(self, cells: Sequence[tuple[int, Sequence[str]]], singleton_state) -> list[JobReturn]:
        state = singleton_state
        return [self.launcher(list(ov), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state) for idx, ov in cells]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Requeued (time limit, preemption): the same pack again; its finished cells are skipped."""
        import submitit  # noqa: PLC0415 (heavy; only in a job)

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class _Submit:
    """launch() shared by both launchers: compose cells, group by resources, pack, submit arrays."""

    _EXECUTOR: str
    params: Dict[str, Any]

    def _prepare(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        """(mlsweep's own keys, submitit's parameters, the sweep folder, {resources: [job: [Member]]}, K)."""
        own, params = split_params(self.params)
        per_job = check_cells_per_job(own.get("cells_per_job", 1))
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        cells = [(initial_job_idx + i, list(ov), self._spec(ov)) for i, ov in enumerate(job_overrides)]
        allowed = [k for k in params if k not in ("submitit_folder", "_target_")]
        groups = packed_groups(
            cells,
            list(own.get("resources") or []),
            float(own.get("timeout_factor", 2.0)),
            allowed,
            float(own.get("gpu_mem_gb") or GPU_MEMORY_GB),
            per_job,
        )
        return own, params, sweep_dir, groups, per_job

    def _spec(self, overrides: Sequence[str]) -> CellSpec:
        """The cell's spec: as the sweeper planned it in this process, else composed here."""
        cell = planned(overrides)
        if cell is not None:
            return cell.spec
        return CellSpec.from_config(self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides)))

    def _executor(self, params: Dict[str, Any]):
        import submitit  # noqa: PLC0415 (heavy; only when submitting)

        init = {"folder": params["submitit_folder"]}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params["max_num_timeout"]
        return submitit.AutoExecutor(cluster=self._EXECUTOR, **init)

    def _submit(self, executor, params: Dict[str, Any], resources: Dict[str, Any], jobs: list, per_job: int) -> list:
        """Submit one array: a job per cell, or with cells_per_job > 1 a PackedCells job per pack."""
        base_keys = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**executor_params(self._EXECUTOR, {**params, **resources}, base_keys))
        state = Singleton.get_state()
        if per_job == 1:
            args = [(ov, "hydra.sweep.dir", idx, f"job_id_for_{idx}", state) for ((idx, ov, _),) in jobs]
            submitted = executor.map_array(self, *zip(*args))
        else:
            packs = [[(idx, ov) for idx, ov, _ in job] for job in jobs]
            submitted = executor.map_array(PackedCells(self), packs, [state] * len(packs))
        ids = ", ".join(j.job_id for j in submitted[:3]) + (", ..." if len(submitted) > 3 else "")
        what = " ".join(f"{k}={v}" for k, v in resources.items()) or "the launcher's resources"
        cells = sum(len(job) for job in jobs)
        print(f"[launch] {cells} cell(s) submitted in {len(submitted)} job(s) with {what}: {ids}", flush=True)
        return submitted

    def _collect(self, submitted: list, jobs: list, sweep_dir: Path, lost_after_s=None) -> list[JobReturn]:
        """Each cell's return; a cell of a failed or lost job whose `done` row is on disk counts as done
        (a pack killed after its first cells finished)."""
        returns = collect(submitted, [[ov for _, ov, _ in job] for job in jobs], failed_return, lost_after_s)
        return [done_on_disk(r, sweep_dir) for r in returns]


def done_on_disk(r: JobReturn, sweep_dir: Path) -> JobReturn:
    """A failed return whose cell (as the sweeper planned it) nonetheless wrote its `done` row becomes a
    completed one."""
    cell = planned(r.overrides or [])
    if r.status != JobStatus.FAILED or cell is None:
        return r
    try:
        row = finished_row(sweep_dir / cell.folder, cell.spec.cell_id)
    except ValueError:
        return r
    return r if row is None else JobReturn(overrides=r.overrides, status=JobStatus.COMPLETED, _return_value="done")


class MlsweepSlurmLauncher(_Submit, SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        own, params, sweep_dir, groups, per_job = self._prepare(job_overrides, initial_job_idx)
        quiet_sacct()
        executor = self._executor(params)
        submitted, jobs, by_cell, refused = [], [], {}, []
        for key, members in groups.items():
            try:
                done = self._submit(executor, params, json.loads(key), members, per_job)
            except Exception as e:  # sbatch refused the group (e.g. more GPUs than a node has): its cells fail
                n = sum(len(job) for job in members)
                print(f"[launch] sbatch refused {n} cell(s) asking for {key}: {e}", flush=True)
                refused += [failed_return(ov, e) for job in members for _, ov, _ in job]
                continue
            submitted += done
            jobs += members
            by_cell.update({spec.cell_id: j.job_id for job, j in zip(members, done) for _, _, spec in job})
        remember(sweep_dir, by_cell)
        if not own.get("wait", True):
            print(
                f"[launch] not waiting: follow with `mlsweep status {sweep_dir}`; "
                f"launch the same sweep again to submit what is missing",
                flush=True,
            )
            return submitted_returns([ov for job in jobs for _, ov, _ in job]) + refused
        return self._collect(submitted, jobs, sweep_dir, float(own.get("lost_after_s", 120.0))) + refused


class MlsweepLocalLauncher(_Submit, LocalLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        own, params, sweep_dir, groups, per_job = self._prepare(job_overrides, initial_job_idx)
        parallelism = max(1, int(own.get("parallelism") or 1))
        # concurrent cells split the cores (oversubscribed torch threads ran ~5x slower)
        os.environ[THREADS_ENV] = str(local_threads(parallelism))
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible and not params.get("gpus_per_node"):  # submitit_local would empty it
            params = {
                **params,
                "setup": list(params.get("setup") or []) + [f"export CUDA_VISIBLE_DEVICES={shlex.quote(visible)}"],
            }
        executor = self._executor(params)
        jobs = [job for js in groups.values() for job in js]
        wait = own.get("wait", True)
        returns: List[JobReturn] = []
        step = parallelism if wait else len(jobs)
        for s in range(0, len(jobs), step):  # waves of `parallelism` jobs
            wave = jobs[s : s + step]
            submitted = self._submit(executor, params, {}, wave, per_job)
            remember(sweep_dir, {spec.cell_id: j.job_id for job, j in zip(wave, submitted) for _, _, spec in job})
            returns += (
                self._collect(submitted, wave, sweep_dir)
                if wait
                else submitted_returns([ov for job in wave for _, ov, _ in job])
            )
        return returns


@dataclass
class MlsweepSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.mlsweep_launcher.mlsweep_launcher.MlsweepSlurmLauncher"
    # [{max_params_b: 3, gpus_per_node: 1, mem_gb: 32, timeout_min: 120}, ...] (mlsweep.sweep.resources)
    resources: List[Dict[str, Any]] = field(default_factory=list)
    timeout_factor: float = 2.0  # timeout_min >= this x the estimated run time
    wait: bool = True  # false: submit, record the job ids, return at once
    gpu_mem_gb: float = GPU_MEMORY_GB  # GiB per GPU: a cell needing more (model.device_map) asks for more GPUs
    lost_after_s: float = 120.0  # a job out of the queue this long without its result fails its cell
    cells_per_job: int = 1  # cells of one model run one after another in one job, loading it once


@dataclass
class MlsweepLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.mlsweep_launcher.mlsweep_launcher.MlsweepLocalLauncher"
    resources: List[Dict[str, Any]] = field(default_factory=list)
    timeout_factor: float = 0.0
    wait: bool = True
    parallelism: int = 1  # jobs at once; each gets cores // parallelism torch threads
    gpu_mem_gb: float = GPU_MEMORY_GB
    cells_per_job: int = 1


ConfigStore.instance().store(group="hydra/launcher", name="mlsweep_slurm", node=MlsweepSlurmConf, provider="mlsweep")
# Also under hydra-submitit-launcher's own name: Hydra merges conf/hydra/launcher/submitit_local.yaml with the
# structured config of the same name, which must therefore know mlsweep's keys.
for _name in ("mlsweep_submitit_local", "submitit_local"):
    ConfigStore.instance().store(group="hydra/launcher", name=_name, node=MlsweepLocalConf, provider="mlsweep")
