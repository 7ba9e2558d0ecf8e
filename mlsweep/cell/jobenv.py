"""Where a cell runs: its SLURM job, and its share of the machine's cores."""

from __future__ import annotations

import os
from typing import Optional


def job_id() -> Optional[str]:
    """The SLURM job running this process, as squeue prints it (array jobs: <array id>_<task>)."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


THREADS_ENV = "MLSWEEP_THREADS"  # set by the launcher when several cells share one machine


def job_threads(configured: int) -> int:
    """Torch threads for this cell: runtime.threads, else the launcher's share, else the SLURM allotment.

    Two cells on 2 cores each using 2 threads ran ~5x slower than one after
    the other, so concurrent cells must split the cores. 0: leave torch's default.
    """
    if configured > 0:
        return configured
    for var in (THREADS_ENV, "SLURM_CPUS_PER_TASK"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    return 0
