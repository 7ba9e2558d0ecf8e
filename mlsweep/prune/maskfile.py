"""Pruning masks on disk: bit-packed, one entry per block linear (~1/32 of the fp32 weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from mlsweep.prune.arch import find_blocks, find_linears

MASK_FILE = "masks.npz"


def save_masks(model: nn.Module, path: Path) -> None:
    """Bit-packed masks (True = pruned) of every block linear."""
    arrays = {}
    for i, block in enumerate(find_blocks(model)):
        for name, lin in find_linears(block).items():
            zero = (lin.weight == 0).cpu().numpy()
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
