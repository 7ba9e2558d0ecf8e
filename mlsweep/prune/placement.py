"""Where tensors live during the layer loop: one block on the compute device at a time.

`stem_on_device` moves everything outside the decoder blocks (embeddings,
norms, rotary tables) for the capture of block-0 inputs; `on_device` moves a
block for its turn and back; `move` carries the blocks' other arguments.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def move(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(move(v, device) for v in value)
    if isinstance(value, dict):
        return {k: move(v, device) for k, v in value.items()}
    return value


def stem_device(model: nn.Module, blocks: nn.ModuleList) -> torch.device:
    in_blocks = {id(p) for p in blocks.parameters()}
    return next(p.device for p in model.parameters() if id(p) not in in_blocks)


@contextmanager
def on_device(module: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Move a block to the compute device for its turn, then back to where it was."""
    home = next(module.parameters()).device
    module.to(device)
    try:
        yield module
    finally:
        module.to(home)


@contextmanager
def stem_on_device(model: nn.Module, blocks: nn.ModuleList, device: torch.device) -> Iterator[None]:
    """Everything outside the decoder blocks (embeddings, norms, rotary tables) on `device`."""
    in_blocks = {id(m) for m in blocks.modules()}
    moved = []
    for module in model.modules():
        if id(module) in in_blocks:
            continue
        for store in (module._parameters, module._buffers):
            for name, t in store.items():
                if t is not None and t.device != device:
                    moved.append((store, name, t.device))
                    store[name] = (
                        nn.Parameter(t.data.to(device), t.requires_grad)
                        if isinstance(t, nn.Parameter)
                        else t.to(device)
                    )
    try:
        yield
    finally:
        for store, name, home in moved:
            t = store[name]
            store[name] = nn.Parameter(t.data.to(home), t.requires_grad) if isinstance(t, nn.Parameter) else t.to(home)
