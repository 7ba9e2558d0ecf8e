"""Several cells per job (`hydra.launcher.cells_per_job=K`): which cells share a job, and what it saves.

Every job pays a process start-up (interpreter, imports, lm-eval's task
index, the CUDA context) and a model load before its first useful tensor
operation: minutes for an 8B model on shared storage, against a cell that
may take a few minutes of pruning and evaluation. Packing K cells of the same
model into one job pays them once; the job runs its cells one after another
and each cell after the first gets the model with its dense weights put back
(mlsweep.cell.modelcache) instead of loading it. Each cell still writes its
own row and a finished cell is skipped, so a requeued or relaunched pack
resumes at its first unfinished cell.

Cells are packed in submission order within one resource group (equal SLURM
requests), only with cells of the same model as loaded (path, revision,
dtype, device, loading options): a pack never mixes models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from mlsweep.config.spec import CellSpec
from mlsweep.sweep.costs import DTYPE_BYTES, LOAD_RATE, STARTUP, model_shape

T = TypeVar("T")
RESTORE_RATE = 10e9  # bytes/s putting dense weights back from a CPU copy (host to GPU); a load is LOAD_RATE


def model_key(spec: CellSpec) -> tuple:
    """What a job loads: cells with equal keys can share one loaded model."""
    m = spec.model
    return (m.path, m.revision, m.dtype, m.device, m.trust_remote_code, m.attn_implementation, m.device_map)


def pack(members: Sequence[T], specs: Sequence[CellSpec], k: int) -> list[list[T]]:
    """`members` (in order) in packs of at most k, each pack of one model (`specs[i]` is member i's spec)."""
    by_model: dict[tuple, list[list[T]]] = {}
    order: list[list[T]] = []
    for member, spec in zip(members, specs):
        packs = by_model.setdefault(model_key(spec), [])
        if not packs or len(packs[-1]) >= k:
            packs.append([])
            order.append(packs[-1])
        packs[-1].append(member)
    return order


def reuse_saving_s(spec: CellSpec) -> float:
    """Seconds a cell saves by running after another cell of its model in the same job (the plan's estimate):
    the start-up and the load, less putting the dense weights back. A streamed or spread model is reloaded."""
    m, engine = spec.model, spec.engine
    if engine.stream_from_disk or engine.offload_blocks or m.device_map is not None:
        return STARTUP
    weight_bytes = model_shape(m).params * DTYPE_BYTES.get(m.dtype, 4)
    return STARTUP + weight_bytes / LOAD_RATE - weight_bytes / RESTORE_RATE
