"""Hydra plugin shell of the mlsweep launchers (logic: mlsweep/sweep/launch.py).

`mlsweep_slurm` and `mlsweep_submitit_local` extend hydra-submitit-launcher's
configs with mlsweep's keys (resources, timeout_factor, wait, parallelism);
conf/hydra/launcher/{slurm,submitit_local}.yaml select them.
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
from mlsweep.sweep.costs import GPU_MEMORY_GB
from mlsweep.sweep.launch import (
    collect,
    executor_params,
    group_by_resources,
    local_threads,
    quiet_sacct,
    remember,
    split_params,
)
from mlsweep.sweep.sweeper import planned


def failed_return(overrides: Sequence[str], error: BaseException) -> JobReturn:
    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


def submitted_returns(overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    return [JobReturn(overrides=list(ov), status=JobStatus.COMPLETED, _return_value="submitted") for ov in overrides]


class _Submit:
    """launch() shared by both launchers: compose cells, group by resources, submit arrays."""

    _EXECUTOR: str
    params: Dict[str, Any]

    def _prepare(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        own, params = split_params(self.params)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        cells = [(initial_job_idx + i, list(ov), self._spec(ov)) for i, ov in enumerate(job_overrides)]
        allowed = [k for k in params if k not in ("submitit_folder", "_target_")]
        groups = group_by_resources(
            cells,
            list(own.get("resources") or []),
            float(own.get("timeout_factor", 2.0)),
            allowed,
            float(own.get("gpu_mem_gb") or GPU_MEMORY_GB),
        )
        return own, params, sweep_dir, groups

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

    def _submit(self, executor, params: Dict[str, Any], resources: Dict[str, Any], members: list) -> list:
        base_keys = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**executor_params(self._EXECUTOR, {**params, **resources}, base_keys))
        job_params = [
            (ov, "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()) for idx, ov, _ in members
        ]
        jobs = executor.map_array(self, *zip(*job_params))
        ids = ", ".join(j.job_id for j in jobs[:3]) + (", ..." if len(jobs) > 3 else "")
        what = " ".join(f"{k}={v}" for k, v in resources.items()) or "the launcher's resources"
        print(f"[launch] {len(jobs)} cell(s) submitted with {what}: {ids}", flush=True)
        return jobs


class MlsweepSlurmLauncher(_Submit, SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        own, params, sweep_dir, groups = self._prepare(job_overrides, initial_job_idx)
        quiet_sacct()
        executor = self._executor(params)
        jobs, overrides, by_cell, refused = [], [], {}, []
        for key, members in groups.items():
            try:
                submitted = self._submit(executor, params, json.loads(key), members)
            except Exception as e:  # sbatch refused the group (e.g. more GPUs than a node has): its cells fail
                print(f"[launch] sbatch refused {len(members)} cell(s) asking for {key}: {e}", flush=True)
                refused += [failed_return(ov, e) for _, ov, _ in members]
                continue
            jobs += submitted
            overrides += [ov for _, ov, _ in members]
            by_cell.update({spec.cell_id: j.job_id for (_, _, spec), j in zip(members, submitted)})
        remember(sweep_dir, by_cell)
        if not own.get("wait", True):
            print(
                f"[launch] not waiting: follow with `mlsweep status {sweep_dir}`; "
                f"launch the same sweep again to submit what is missing",
                flush=True,
            )
            return submitted_returns(overrides) + refused
        return collect(jobs, overrides, failed_return, float(own.get("lost_after_s", 120.0))) + refused


class MlsweepLocalLauncher(_Submit, LocalLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        own, params, sweep_dir, groups = self._prepare(job_overrides, initial_job_idx)
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
        members = [m for ms in groups.values() for m in ms]
        wait = own.get("wait", True)
        returns: List[JobReturn] = []
        step = parallelism if wait else len(members)
        for s in range(0, len(members), step):  # waves of `parallelism` cells
            wave = members[s : s + step]
            jobs = self._submit(executor, params, {}, wave)
            remember(sweep_dir, {spec.cell_id: j.job_id for (_, _, spec), j in zip(wave, jobs)})
            returns += (
                collect(jobs, [ov for _, ov, _ in wave], failed_return)
                if wait
                else submitted_returns([ov for _, ov, _ in wave])
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


@dataclass
class MlsweepLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.mlsweep_launcher.mlsweep_launcher.MlsweepLocalLauncher"
    resources: List[Dict[str, Any]] = field(default_factory=list)
    timeout_factor: float = 0.0
    wait: bool = True
    parallelism: int = 1  # cells at once; each gets cores // parallelism torch threads
    gpu_mem_gb: float = GPU_MEMORY_GB


ConfigStore.instance().store(group="hydra/launcher", name="mlsweep_slurm", node=MlsweepSlurmConf, provider="mlsweep")
# Also under hydra-submitit-launcher's own name: Hydra merges conf/hydra/launcher/submitit_local.yaml with the
# structured config of the same name, which must therefore know mlsweep's keys.
for _name in ("mlsweep_submitit_local", "submitit_local"):
    ConfigStore.instance().store(group="hydra/launcher", name=_name, node=MlsweepLocalConf, provider="mlsweep")
