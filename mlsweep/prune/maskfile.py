"""Pruning masks on disk: bit-packed, one entry per block matrix (~1/32 of the fp32 weights).

Each mask is stored as the engine sees the matrix, (d_out, d_in): a Conv1D's
is the transpose of its stored weight, an expert's is its slice of the fused
parameter (`<block>.<experts>.<e>.gate_proj`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from torch import nn

from mlsweep.prune.arch import NO_EXCLUSIONS, find_blocks, find_matrices

MASK_FILE = "masks.npz"


def save_masks(model: nn.Module, path: Path, exclude: Mapping[str, str] = NO_EXCLUSIONS) -> None:
    """Bit-packed masks (True = pruned) of every block matrix."""
    arrays = {}
    for i, block in enumerate(find_blocks(model)):
        for name, m in find_matrices(block, exclude).items():
            zero = (m.tensor() == 0).cpu().numpy()
            arrays[f"{i}.{name}"] = np.packbits(zero.reshape(-1))
            arrays[f"{i}.{name}.shape"] = np.array(zero.shape)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_masks(path: Path) -> dict[str, np.ndarray]:
    """ "<block>.<linear>" -> flat boolean mask (True = pruned)."""
    data = np.load(path)
    out = {}
    for key in data.files:
        if not key.endswith(".shape"):
            shape = tuple(data[f"{key}.shape"])
            out[key] = np.unpackbits(data[key])[: int(np.prod(shape))].astype(bool)
    return out
