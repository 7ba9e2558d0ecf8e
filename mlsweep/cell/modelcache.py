"""The model a process keeps between cells, so cells of one model run one after another load it once.

A packed job (`hydra.launcher.cells_per_job`) and the local in-process sweep
run cells one after another in one process. Loading the weights is then paid
by the first cell only: the process keeps the model, and before handing it to
the next cell puts its dense weights back, because the previous cell pruned
them in place. The weights come back
- from a copy in CPU memory taken right after the load, when the machine's
  available memory holds the copy twice over (`copy`);
- else from the checkpoint's safetensors files, read tensor by tensor (`files`),
  as streaming reads them (mlsweep.prune.stream.Checkpoint).
Every parameter is restored, not only the pruned matrices, so a cell that
failed half-way through pruning leaves nothing behind. The restored model is
bit-identical to a fresh load (tests/test_modelcache.py), so a cell's numbers
never depend on the cell that ran before it; its row says which way the model
came (`model_source`).

Kept only where restoring is exact and cheap: a model loaded whole on its one
device (not streamed, not offloaded block by block, no device map: accelerate
hooks and meta tensors are not undone by copying weights). The key includes
the size and mtime of every file of the model's folder, so a checkpoint
rewritten between two cells is loaded again. A model whose parameters or
hooks changed shape or number since it was loaded (nothing in mlsweep does
this; a failure half-way through a hook might) is loaded again too.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from mlsweep.modeling import local_folder

LOADED, COPY, FILES = "loaded", "restored:copy", "restored:files"
COPY_HEADROOM = 2.0  # keep a CPU copy only when available memory is at least twice its size


@dataclass
class _Kept:
    key: tuple
    model: Any
    tokenizer: Any
    signature: tuple
    copy: Optional[dict[str, torch.Tensor]]  # parameter name -> dense CPU copy (mode `copy`)
    checkpoint: Any  # mlsweep.prune.stream.Checkpoint (mode `files`)


_kept: Optional[_Kept] = None


def folder_stamp(path: str, revision: Optional[str]) -> tuple:
    """(name, size, mtime) of each file of the model's folder; empty when the folder is not on this machine."""
    try:
        folder = Path(local_folder(path, revision))
    except ValueError:
        return ()
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


def signature(model) -> tuple:
    """What restoring weights cannot undo: parameter names, shapes, dtypes, devices, and the hooks."""
    params = tuple((n, tuple(p.shape), p.dtype, p.device) for n, p in model.named_parameters())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    return params, hooks


def available_bytes() -> int:
    """MemAvailable of /proc/meminfo (0 where it cannot be read: no copy is kept)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def parameter_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def drop() -> None:
    """Forget the kept model and free its memory (before loading another one)."""
    global _kept
    _kept = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _snapshot(model, folder: Optional[str], mode: str) -> tuple[Optional[dict], Any]:
    """(copy, checkpoint): the way this model's dense weights will come back; (None, None) if none does."""
    want_copy = mode == "copy" or (mode == "auto" and COPY_HEADROOM * parameter_bytes(model) <= available_bytes())
    if want_copy:
        return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()}, None
    if folder is None:
        return None, None
    from mlsweep.prune.stream import Checkpoint, renamings  # noqa: PLC0415 (transformers' conversion tables)

    try:
        checkpoint = Checkpoint(Path(folder), renamings(model), cast=True)
    except ValueError:  # no safetensors, or tensors converted on load (fused MoE experts)
        return None, None
    if any(n not in checkpoint.files for n, _ in model.named_parameters()):
        return None, None
    return None, checkpoint


def _restore(kept: _Kept) -> str:
    params = dict(kept.model.named_parameters())
    with torch.no_grad():
        if kept.copy is not None:
            for name, dense in kept.copy.items():
                params[name].copy_(dense)
            return COPY
        for name, p in params.items():
            (dense,) = kept.checkpoint.load([name], torch.device("cpu"), {name: p}).values()
            p.copy_(dense)
    return FILES


def model_for_cell(
    key: tuple,
    load: Callable[[], tuple[Any, Any]],
    path: str,
    revision: Optional[str] = None,
    mode: str = "auto",
) -> tuple[Any, Any, str]:
    """(model, tokenizer, how it came: `loaded`, `restored:copy` or `restored:files`), kept for the next cell.

    `key` says which model (path, revision, dtype, device, loading options); `load()` loads it fresh.
    `mode`: `auto` (a copy when memory allows, else the files), `copy` or `files` (tests).
    """
    global _kept
    key = (*key, folder_stamp(path, revision))
    kept = _kept
    if kept is not None and kept.key == key and signature(kept.model) == kept.signature:
        try:
            how = _restore(kept)
            kept.model.eval()
            return kept.model, kept.tokenizer, how
        except Exception:  # noqa: BLE001 (anything that goes wrong restoring: load it again instead)
            pass
    drop()
    model, tokenizer = load()
    try:
        folder = local_folder(path, revision)
    except ValueError:
        folder = None
    copy, checkpoint = _snapshot(model, folder, mode)
    if copy is not None or checkpoint is not None:
        _kept = _Kept(key, model, tokenizer, signature(model), copy, checkpoint)
    return model, tokenizer, LOADED
