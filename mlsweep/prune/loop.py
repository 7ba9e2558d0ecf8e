"""The layer-by-layer pruning loop: the only code that touches model internals.

1. Capture the hidden states entering block 0, with the keyword arguments the
   model passes to its blocks (attention mask, position ids, rotary
   embeddings, ALiBi), one entry per calibration batch.
2. For each block: hook its linears, run the calibration batches through it
   (each linear's collector accumulates fp32 statistics), let the pruner
   rewrite each linear's weight, then re-run the pruned block so its outputs
   become the next block's inputs (sequential propagation, as the reference).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from mlsweep.prune.arch import find_blocks, find_linears
from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.registry import PrunerSpec


class _Captured(Exception):
    """Raised by the block-0 hook to stop the forward pass once inputs are caught."""


@dataclass
class Batch:
    hidden: torch.Tensor  # (batch, seqlen, hidden)
    kwargs: dict[str, Any]  # what the model passed to its blocks for this batch
    lang: Optional[str]


def _block_output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def capture_inputs(model: nn.Module, block0: nn.Module, batches: list[tuple[torch.Tensor, Optional[str]]],
                   device: torch.device) -> list[Batch]:
    """Run the model up to block 0 for every batch of token ids."""
    caught: list[Batch] = []

    def hook(_module, args, kwargs):
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        caught.append(Batch(hidden, kwargs, None))
        raise _Captured

    handle = block0.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for ids, lang in batches:
            try:
                model(input_ids=ids.to(device), use_cache=False)
            except _Captured:
                caught[-1].lang = lang
    finally:
        handle.remove()
    return caught


@torch.no_grad()
def run_block(block: nn.Module, batches: list[Batch], on_batch: Callable[[Batch], None] | None = None) -> list[torch.Tensor]:
    outs = []
    for b in batches:
        if on_batch:
            on_batch(b)
        outs.append(_block_output(block(b.hidden, **b.kwargs)))
    return outs


def _collect(block: nn.Module, linears: dict[str, nn.Linear], spec: PrunerSpec, batches: list[Batch]) -> dict:
    """One pass over the block with hooks that feed each linear's collector."""
    collectors = {name: spec.make_collector(lin.in_features) for name, lin in linears.items()}
    current = {"batch": None}

    def make_hook(name):
        def hook(_m, inp, _out):
            b = current["batch"]
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float()  # (tokens, d_in)
            collectors[name].add(x, b.hidden.shape[0], b.lang)
        return hook

    handles = [lin.register_forward_hook(make_hook(name)) for name, lin in linears.items()]
    try:
        run_block(block, batches, on_batch=lambda b: current.__setitem__("batch", b))
    finally:
        for h in handles:
            h.remove()
    return collectors


@torch.no_grad()
def prune_blocks(model: nn.Module, spec: PrunerSpec, targets: list[SparsityTarget], params: Any,
                 batches: list[tuple[torch.Tensor, Optional[str]]], device: torch.device,
                 on_block: Callable[[int, float], None] | None = None) -> list[float]:
    """Prune every block in place; returns seconds per block."""
    blocks = find_blocks(model)
    data = capture_inputs(model, blocks[0], batches, device) if spec.needs_calibration else []
    seconds = []
    for i, block in enumerate(blocks):
        tic = time.perf_counter()
        linears = find_linears(block)
        stats = _collect(block, linears, spec, data) if spec.needs_calibration else {}
        for name, lin in linears.items():
            new = spec.prune(lin.weight.data.float(), stats.get(name), targets[i], params)
            lin.weight.data.copy_(new.to(lin.weight.dtype))
        if spec.needs_calibration and i + 1 < len(blocks):
            for b, out in zip(data, run_block(block, data)):
                b.hidden = out
        seconds.append(time.perf_counter() - tic)
        if on_block:
            on_block(i, seconds[-1])
    return seconds
