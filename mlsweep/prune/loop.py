"""The layer-by-layer pruning loop: the only layer loop of the engine.

1. Capture the hidden states entering block 0, with every other argument the
   model passes to its blocks (attention mask, position ids, rotary
   embeddings, ALiBi), one entry per calibration batch.
2. For each block: hook its linears, run the calibration batches through it
   (each linear's collector accumulates fp32 statistics), let the pruner
   rewrite each linear's weight, then feed the next block: with the pruned
   block's outputs (`sequential`, the reference behaviour) or with the dense
   outputs computed during the statistics pass (`dense` propagation).
   With `true_sequential`, linears are pruned group by group in forward order
   (linears that read the same input form a group: q/k/v, then o, then
   gate/up, then down), the block re-run between groups (SparseGPT's option).

Memory: only the block being pruned is moved to the compute device; the
rest of the model stays where it is (CPU for big models). The captured
activations live on the compute device, or on the CPU with
`activations_on_cpu` and move per batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from mlsweep.prune.arch import find_blocks, find_linears
from mlsweep.prune.capture import Batch, CalibBatch, capture_inputs, run_block
from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.placement import on_device, stem_device
from mlsweep.prune.registry import PrunerSpec
from mlsweep.prune.stats import CollectorFactory, Workspace


@dataclass
class LoopOptions:
    sequential: bool = True  # propagate pruned outputs (reference) rather than dense ones
    true_sequential: bool = False
    device: Optional[torch.device] = None  # compute device; None: where the model's stem is
    activations_on_cpu: bool = False
    # Called before / after a block's turn; streaming from disk loads and saves blocks here.
    load_block: Optional[Callable[[int, nn.Module], None]] = None
    release_block: Optional[Callable[[int, nn.Module], None]] = None
    # Saves each pruned block and restores saved ones on a restart (mlsweep.prune.checkpoint).
    checkpoint: Optional[Any] = None

    def store(self, device: torch.device) -> torch.device:
        """Where captured activations live between blocks."""
        return torch.device("cpu") if self.activations_on_cpu else device

    @contextmanager
    def turn(self, i: int, block: nn.Module, device: torch.device) -> Iterator[nn.Module]:
        """The block's turn: loaded if streamed, on the compute device, released afterwards."""
        if self.load_block:
            self.load_block(i, block)
        with on_device(block, device):
            yield block
        if self.release_block:
            self.release_block(i, block)


def collect(
    block: nn.Module,
    linears: dict[str, nn.Linear],
    make_collector: CollectorFactory,
    batches: list[Batch],
    device: torch.device,
    workspace: Workspace,
) -> tuple[dict, list[torch.Tensor]]:
    """One pass over the block with hooks feeding each linear's collector; returns (stats, outputs).

    Linears that read the same input tensor (q/k/v, gate/up) share one collector: the
    statistics are the same, so accumulating them once is exact and saves the work (a
    d_in x d_in Hessian per linear for SparseGPT). `readers` on a shared collector counts
    the linears that will consume it.
    """
    collectors = {name: make_collector(lin.in_features, workspace) for name, lin in linears.items()}
    leader: dict[str, str] = {}
    # the previous linear's input: the same tensor object (not just the same address, which
    # a freed tensor can hand on) means the same statistics
    state: dict[str, Any] = {"b": None, "input": None, "name": None}

    def make_hook(name):
        def hook(_m, inp, _out):
            same_input = inp[0] is state["input"] and state["name"] is not None
            if name not in leader and same_input:
                leader[name] = leader.get(state["name"], state["name"])
            state["input"], state["name"] = inp[0], name
            if name in leader:
                return
            b = state["b"]
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float()  # (tokens, d_in)
            if b.tokens is not None:  # padding stays out of the statistics
                x = x[b.tokens.reshape(-1).to(x.device)]
            collectors[name].add(x, b.hidden.shape[0], b.lang)

        return hook

    def next_batch(b: Batch) -> None:
        state.update(b=b, input=None, name=None)

    handles = [lin.register_forward_hook(make_hook(name)) for name, lin in linears.items()]
    try:
        outs = run_block(block, batches, device, on_batch=next_batch)
    finally:
        for h in handles:
            h.remove()
    for follower, head in leader.items():
        collectors[follower] = collectors[head]
    for head in set(leader.values()):
        collectors[head].readers = 1 + sum(1 for h in leader.values() if h == head)
    return collectors, outs


def linear_groups(
    block: nn.Module, linears: dict[str, nn.Linear], sample: Batch, device: torch.device
) -> list[list[str]]:
    """Linears grouped by the input they read, in forward order (for true-sequential pruning)."""
    order: list[tuple[str, torch.Tensor]] = []

    def make_hook(name):
        def hook(_m, inp):
            order.append((name, inp[0]))  # the tensor itself: identity, not address

        return hook

    handles = [lin.register_forward_pre_hook(make_hook(n)) for n, lin in linears.items()]
    try:
        one = Batch(sample.hidden, sample.args, sample.kwargs, sample.lang)
        run_block(block, [one], device)
    finally:
        for h in handles:
            h.remove()
    groups: list[list[str]] = []
    last, seen = None, set()
    for name, tensor in order:  # consecutive calls on one input tensor form a group
        if name in seen:
            continue
        seen.add(name)
        if tensor is last:
            groups[-1].append(name)
        else:
            groups.append([name])
        last = tensor
    return groups


def _prune_linears(
    linears: dict[str, nn.Linear], names: list[str], spec: PrunerSpec, stats: dict, target: SparsityTarget, params: Any
) -> None:
    for name in names:
        lin = linears[name]
        new = spec.prune(lin.weight.data.float(), stats.pop(name, None), target, params)
        lin.weight.data.copy_(new.to(lin.weight.dtype))
        del new  # statistics (a d_in x d_in Hessian for SparseGPT) are freed linear by linear


@torch.no_grad()
def walk_statistics(
    model: nn.Module,
    batches: list[CalibBatch],
    opts: LoopOptions,
    make_collector: CollectorFactory,
    visit: Callable[[int, dict[str, nn.Linear], dict], None],
) -> None:
    """A statistics-only pass: no pruning, dense outputs propagate (OWL's first pass, analyses)."""
    blocks = find_blocks(model)
    device = opts.device or stem_device(model, blocks)
    data = capture_inputs(model, blocks, batches, device, opts.store(device))
    workspace = Workspace()
    try:
        for i, block in enumerate(blocks):
            with opts.turn(i, block, device):
                linears = find_linears(block)
                stats, outs = collect(block, linears, make_collector, data, device, workspace)
                visit(i, linears, stats)
            for b, out in zip(data, outs):
                b.hidden = out
    finally:
        workspace.clear()


def _prune_block(
    block: nn.Module,
    spec: PrunerSpec,
    target: SparsityTarget,
    params: Any,
    data: list[Batch],
    opts: LoopOptions,
    device: torch.device,
    workspace: Workspace,
) -> Optional[list[torch.Tensor]]:
    """Prune one block in place; returns its dense outputs (from the statistics pass) if it had one."""
    linears = find_linears(block)
    if not spec.needs_calibration:
        _prune_linears(linears, list(linears), spec, {}, target, params)
        return None
    groups = linear_groups(block, linears, data[0], device) if opts.true_sequential else [list(linears)]
    dense_outs = None
    for g, names in enumerate(groups):
        stats, outs = collect(block, {n: linears[n] for n in names}, spec.make_collector, data, device, workspace)
        dense_outs = outs if g == 0 else dense_outs
        _prune_linears(linears, names, spec, stats, target, params)
    return dense_outs


# Called after each pruned block with (block index, seconds, measured sparsity), e.g. to log progress.
BlockCallback = Callable[[int, float, float], None]


def block_sparsity(block: nn.Module) -> float:
    """Zeros / weights over the block's linears."""
    linears = find_linears(block).values()
    return sum(int((lin.weight == 0).sum()) for lin in linears) / sum(lin.weight.numel() for lin in linears)


@torch.no_grad()
def prune_blocks(
    model: nn.Module,
    spec: PrunerSpec,
    targets: list[SparsityTarget],
    params: Any,
    batches: list[CalibBatch],
    opts: LoopOptions,
    on_block: Optional[BlockCallback] = None,
) -> list[float]:
    """Prune every block in place; returns seconds per block.

    `on_block(i, seconds, sparsity)` is called after each block with its measured
    sparsity (counted while the block is still loaded: a streamed block leaves after its turn).
    Scratch buffers (mlsweep.prune.stats.Workspace) live for this call only.
    """
    blocks = find_blocks(model)
    device = opts.device or stem_device(model, blocks)
    data = capture_inputs(model, blocks, batches, device, opts.store(device)) if spec.needs_calibration else []
    seconds: list[float] = []
    workspace = Workspace()
    try:
        for i, block in enumerate(blocks):
            tic = time.perf_counter()
            sparsity = _block_turn(
                i, block, blocks, spec, targets[i], params, data, opts, device, workspace, measure=on_block is not None
            )
            seconds.append(time.perf_counter() - tic)
            if on_block:
                on_block(i, seconds[-1], sparsity)
    finally:
        workspace.clear()
    return seconds


def _block_turn(
    i: int,
    block: nn.Module,
    blocks: nn.ModuleList,
    spec: PrunerSpec,
    target: SparsityTarget,
    params: Any,
    data: list[Batch],
    opts: LoopOptions,
    device: torch.device,
    workspace: Workspace,
    measure: bool,
) -> float:
    """Prune (or restore) block i, hand its outputs to the next block; returns its sparsity if measured."""
    ckpt = opts.checkpoint
    last = i + 1 == len(blocks)
    with opts.turn(i, block, device):
        if ckpt is not None and ckpt.has(i):  # pruned before a restart: restore, only recompute outputs
            dense_outs = run_block(block, data, device) if data and not last and not opts.sequential else None
            ckpt.restore(i, block)
        else:
            dense_outs = _prune_block(block, spec, target, params, data, opts, device, workspace)
            if ckpt is not None:
                ckpt.save(i, block)
        if data and not last:
            outs = run_block(block, data, device) if opts.sequential else dense_outs
            for b, out in zip(data, outs):
                b.hidden = out
        return block_sparsity(block) if measure else 0.0
