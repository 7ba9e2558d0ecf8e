"""Submitting cells through submitit: per-cell resources, per-job failures, submit-and-return.

hydra-submitit-launcher's `launch` gives every job the same resources
(hydra #2874), raises on the first job that did not complete (a `scancel`
loses the whole sweep's bookkeeping) and always blocks until every job ends.
The mlsweep launchers (hydra_plugins/mlsweep_launcher) keep its job function
(so its checkpoint/requeue behaviour is unchanged: a preempted job resubmits
itself and the cell resumes from its block checkpoint) and replace `launch`:

- cells are grouped by the resources their rule gives them (mlsweep.sweep.resources)
  and each group is submitted as one job array; with `cells_per_job: K` up to K
  cells of one model share a job, which loads the model once (mlsweep.sweep.packing);
- a job that fails or is cancelled becomes a FAILED JobReturn for its cell;
  the others are still collected;
- a SLURM job that leaves the queue without writing its result (killed
  before submitit could record it, on a cluster without accounting, where
  submitit would wait for it forever) fails its cell after `lost_after_s`;
- with `wait: false` the launcher records cell id -> job id in the sweep
  folder (submitted.json) and returns at once: nothing stays on the login
  node, `mlsweep status` reads progress from disk, and a relaunch skips cells
  whose job is still queued or running.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from mlsweep.config.spec import CellSpec
from mlsweep.sweep.costs import GPU_MEMORY_GB
from mlsweep.sweep.lifecycle import queued_jobs, record_submissions
from mlsweep.sweep.packing import pack
from mlsweep.sweep.plan import planned_cost
from mlsweep.sweep.resources import OWN_KEYS, check_rules, resources_for, with_time_limit

POLL_S = 2.0  # seconds between looks at the result files and the queue while waiting


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    own = {k: params[k] for k in OWN_KEYS if k in params}
    return own, {k: v for k, v in params.items() if k not in OWN_KEYS}


def executor_params(executor_name: str, params: dict[str, Any], base_keys: set[str]) -> dict[str, Any]:
    """submitit's names: shared keys as they are, executor-specific ones prefixed (slurm_partition)."""
    skip = {"submitit_folder", "max_num_timeout", "_target_"}
    return {(k if k in base_keys else f"{executor_name}_{k}"): v for k, v in params.items() if k not in skip}


def packed_groups(
    cells: Sequence[tuple[int, Sequence[str], CellSpec]],
    rules: list,
    timeout_factor: float,
    allowed: Sequence[str],
    gpu_mem_gb: float = GPU_MEMORY_GB,
    cells_per_job: int = 1,
) -> dict[str, list[list[tuple[int, Sequence[str], CellSpec]]]]:
    """{resources as JSON: [job: [(job index, overrides, spec)]]}, in submission order.

    Cells asking for the same resources (their rule and GPUs, as `mlsweep plan` sizes them) are packed
    up to `cells_per_job` per job, a pack holding one model (mlsweep.sweep.packing); a job's time limit
    covers the sum of its cells' estimated times (`timeout_factor` x, the rule's timeout_min a floor).
    """
    check_rules(rules, allowed)
    requests: dict[str, list] = {}
    for cell in cells:
        cost = planned_cost(cell[2], {"gpu_mem_gb": gpu_mem_gb})
        requests.setdefault(json.dumps(resources_for(cost, rules, 0.0), sort_keys=True), []).append((cell, cost))
    groups: dict[str, list] = {}
    for request, members in requests.items():
        for job in pack(members, [cell[2] for cell, _ in members], cells_per_job):
            res = with_time_limit(json.loads(request), sum(cost.hours for _, cost in job), timeout_factor)
            groups.setdefault(json.dumps(res, sort_keys=True), []).append([cell for cell, _ in job])
    return groups


def collect(
    jobs: Sequence[Any],
    cells: Sequence[Sequence[Sequence[str]]],
    failed: Callable[[Sequence[str], BaseException], Any],
    lost_after_s: Optional[float] = None,
) -> list[Any]:
    """Every cell's result, job by job: `cells[i]` are the overrides of job i's cells (one, or a pack's).

    A job that raised, was cancelled or was lost gives `failed(overrides, error)` for each of its cells
    (a pack's finished cells have their rows on disk: the caller reads them). A packed job returns a
    list of results, one per cell.

    With `lost_after_s` (SLURM jobs), a job absent from the queue that long without a result file
    is lost: SLURM killed it before submitit wrote anything, and without accounting submitit reads its
    state as UNKNOWN and would wait for it forever. The grace covers a result file written late on a
    shared filesystem.
    """
    lost = wait_for(jobs, lost_after_s) if lost_after_s is not None else set()
    out = []
    for i, (job, members) in enumerate(zip(jobs, cells)):
        if i in lost:
            error = RuntimeError(
                f"job {job.job_id} left the SLURM queue without a result (killed before it could write one); "
                f"its log: {job.paths.stderr}"
            )
            out += [failed(ov, error) for ov in members]
            continue
        try:
            result = job.results()[0]
        except Exception as e:  # UncompletedJobError (scancel, node failure) or the job's own exception
            out += [failed(ov, e) for ov in members]
            continue
        out += result if isinstance(result, list) else [result]
    return out


def wait_for(jobs: Sequence[Any], lost_after_s: float) -> set[int]:
    """Wait until every job is done or lost; the indices of the lost ones."""
    pending, lost, gone_since = set(range(len(jobs))), set(), {}
    while pending:
        pending -= {i for i in pending if jobs[i].done()}
        queued = queued_jobs(jobs[i].job_id for i in pending)
        now = time.monotonic()
        for i in sorted(pending):
            if queued is None or jobs[i].job_id in queued:  # alive, or the queue could not be asked
                gone_since.pop(i, None)
            elif now - gone_since.setdefault(i, now) >= lost_after_s and not jobs[i].done():
                pending.discard(i)
                lost.add(i)
        if pending:
            time.sleep(POLL_S)
    return lost


def remember(sweep_dir: Path, jobs_by_cell: dict[str, str]) -> None:
    if jobs_by_cell:
        record_submissions(sweep_dir, jobs_by_cell)


class QuietSacct:
    """A logging filter: submitit warns on every poll when SLURM has no accounting; say it once."""

    def __init__(self) -> None:
        self.seen = False

    def filter(self, record) -> bool:
        if "sacct" not in record.getMessage():
            return True
        if not self.seen:
            self.seen = True
            print(
                "[launch] SLURM accounting (sacct) is unavailable: job states are read from submitit's result files",
                flush=True,
            )
        return False


def quiet_sacct() -> None:
    for name in ("submitit", "hydra_plugins.hydra_submitit_launcher.submitit_launcher"):
        log = logging.getLogger(name)
        if not any(isinstance(f, QuietSacct) for f in log.filters):
            log.addFilter(QuietSacct())


def local_threads(parallelism: int) -> int:
    """Torch threads per cell when `parallelism` cells share this machine's cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, parallelism))
