"""Per-block pruning checkpoints: a preempted or timed-out cell resumes at the next block.

SparseGPT on an 8B model spends tens of minutes in the layer loop; a SLURM
preemption there should not throw that away. After each pruned block, its
state dict is written (atomically: temp file, then rename) as
block_<i>.safetensors. A restarted run loads the saved blocks instead of
pruning them again and only recomputes their outputs for the next block (a
forward pass, cheap next to the statistics and the solver), so the resumed
result equals the uninterrupted one.

`key` names the computation (the cell id); a folder written for another key
is cleared rather than reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

_MANIFEST = "manifest.json"


class BlockCheckpoint:
    def __init__(self, folder: Path, key: str):
        self.folder = Path(folder)
        self.key = key
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / _MANIFEST
        if manifest.exists() and json.loads(manifest.read_text()).get("key") != key:
            for f in self.folder.glob("block_*.safetensors"):
                f.unlink()
        manifest.write_text(json.dumps({"key": key}))
        self.resumed: list[int] = []  # blocks restored rather than pruned (for the report and the tests)

    def _path(self, i: int) -> Path:
        return self.folder / f"block_{i:04d}.safetensors"

    def has(self, i: int) -> bool:
        return self._path(i).exists()

    def save(self, i: int, block: nn.Module, info: Optional[dict[str, Any]] = None) -> None:
        """The block's tensors, and `info` (what the report says about the block, JSON) in the metadata."""
        state = {k: v.detach().to("cpu").contiguous() for k, v in block.state_dict().items()}
        tmp = self.folder / f".block_{i:04d}.tmp"
        save_file(state, str(tmp), metadata={"info": json.dumps(info or {})})
        os.replace(tmp, self._path(i))

    def restore(self, i: int, block: nn.Module) -> dict[str, Any]:
        """Load block i's saved tensors into it; returns the `info` saved with them."""
        state = load_file(str(self._path(i)))
        with safe_open(str(self._path(i)), framework="pt") as f:
            info = json.loads((f.metadata() or {}).get("info", "{}"))
        with torch.no_grad():
            for name, tensor in block.state_dict().items():
                if name in state:
                    tensor.copy_(state[name].to(tensor.device, tensor.dtype))
        self.resumed.append(i)
        return info
