"""The layer-by-layer pruning loop: the only layer loop of the engine.

1. Capture the hidden states entering block 0, with every other argument the
   model passes to its blocks (attention mask, position ids, rotary
   embeddings, ALiBi), one entry per calibration batch.
2. For each block: hook its matrices (mlsweep.prune.arch: linears, Conv1D,
   and through mlsweep.prune.experts the routed inputs of every expert; the
   hooks are in mlsweep.prune.passes), run the calibration batches through
   it (each matrix's collector accumulates fp32 statistics), let the pruner rewrite each matrix, then feed the next
   block: with the pruned block's outputs (`sequential`, the reference
   behaviour) or with the dense outputs computed during the statistics pass
   (`dense` propagation). With `true_sequential`, matrices are pruned group
   by group in forward order (those that read the same input form a group:
   q/k/v, then o, then gate/up, then down; all experts' gate/up, then all
   their downs), the block re-run between groups (SparseGPT's option).

Routed experts: every expert matrix is pruned at its block's target from the
statistics of the tokens routed to it (mlsweep.prune.stats). An expert that
no calibration token reaches has no statistics; it is pruned by magnitude
(|W|, the `magnitude` pruner's rule) instead, and counted in the report:
its inputs are unobserved, and magnitude is the data-free rule (Wanda's
score when all input norms are equal), whereas statistics pooled over the
block's tokens would describe inputs the router never sends it.
The statistics-only pass (`walk_statistics`) leaves such experts out.

Memory: only the block being pruned is moved to the compute device; the
rest of the model stays where it is (CPU for big models). The captured
activations live on the compute device, or on the CPU with
`activations_on_cpu` and move per batch. All experts of a block collect at
once: E collectors for their (gate/up) inputs of width H and E for their
down inputs of width I, for SparseGPT 4 E (H^2 + I^2) bytes of Hessians
(Mixtral-8x7B: 7.1 GB; Qwen3-30B-A3B: 2.4 GB), freed expert by expert as
they are pruned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from mlsweep.prune.arch import NO_EXCLUSIONS, BlockLayout, block_layout, check_blocks, find_blocks
from mlsweep.prune.capture import Batch, CalibBatch, capture_inputs, run_block
from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.passes import collect, matrix_groups
from mlsweep.prune.placement import on_device, stem_device
from mlsweep.prune.pruners import magnitude
from mlsweep.prune.registry import PrunerSpec
from mlsweep.prune.report import block_sparsity
from mlsweep.prune.stats import CollectorFactory, PassStats, Workspace


@dataclass
class LoopOptions:
    sequential: bool = True  # propagate pruned outputs (reference) rather than dense ones
    true_sequential: bool = False
    device: Optional[torch.device] = None  # compute device; None: where the model's stem is
    activations_on_cpu: bool = False
    # Tensor-name patterns in a block -> why they stay dense (model.exclude); routers are excluded by structure.
    exclude: Mapping[str, str] = field(default_factory=lambda: NO_EXCLUSIONS)
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


@dataclass
class LoopResult:
    seconds: list[float]  # per block
    excluded: dict[str, str]  # tensor name in a block -> why it stayed dense
    fallback: list[str] = field(default_factory=list)  # "<block>.<experts>.<e>": no calibration token, magnitude


def _prune_matrices(
    layout: BlockLayout, names: list[str], spec: PrunerSpec, stats: Optional[PassStats], target: SparsityTarget, params
) -> set[tuple[int, int]]:
    """Rewrite each named matrix; returns the experts pruned by the magnitude fallback."""
    collectors = stats.finish() if stats is not None else {}
    fallback = set()
    for name in names:
        m = layout.matrices[name]
        weight = m.tensor().float().contiguous()  # (d_out, d_in); Conv1D and expert views copied
        if stats is not None and stats.unrouted(name):
            fallback.add(m.expert)
            new = magnitude.prune(weight, None, target, None)
            collectors.pop(name, None)
        else:
            new = spec.prune(weight, collectors.pop(name, None), target, params)
        m.write(new)
        del new  # statistics (a d_in x d_in Hessian for SparseGPT) are freed matrix by matrix
    return fallback


@torch.no_grad()
def walk_statistics(
    model: nn.Module,
    batches: list[CalibBatch],
    opts: LoopOptions,
    make_collector: CollectorFactory,
    visit: Callable[[int, dict, dict], None],
) -> None:
    """A statistics-only pass: no pruning, dense outputs propagate (OWL's first pass, analyses).

    visit(i, matrices, stats) sees the block's matrices with statistics (not experts no token reached).
    """
    blocks = find_blocks(model)
    check_blocks(blocks, opts.exclude)
    device = opts.device or stem_device(model, blocks)
    data = capture_inputs(model, blocks, batches, device, opts.store(device))
    workspace = Workspace()
    try:
        for i, block in enumerate(blocks):
            with opts.turn(i, block, device):
                layout = block_layout(block, opts.exclude)
                stats, outs = collect(block, layout, list(layout.matrices), make_collector, data, device, workspace)
                seen = {n: m for n, m in layout.matrices.items() if not stats.unrouted(n)}
                collectors = stats.finish()
                visit(i, seen, {n: collectors[n] for n in seen})
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
) -> tuple[Optional[list[torch.Tensor]], list[str]]:
    """Prune one block in place; returns its dense outputs (kept from the statistics pass only
    for dense propagation: with sequential propagation the pruned block is re-run) and the
    experts pruned by the fallback ('<experts>.<e>')."""
    layout = block_layout(block, opts.exclude)
    if not spec.needs_calibration:
        _prune_matrices(layout, list(layout.matrices), spec, None, target, params)
        return None, []
    groups = matrix_groups(block, layout, data[0], device) if opts.true_sequential else [list(layout.matrices)]
    dense_outs, fallback = None, set()
    for g, names in enumerate(groups):
        keep = g == 0 and not opts.sequential  # dense propagation feeds the next block the first pass's outputs
        stats, outs = collect(block, layout, names, spec.collector(params), data, device, workspace, keep)
        dense_outs = outs if keep else dense_outs
        fallback |= _prune_matrices(layout, names, spec, stats, target, params)
    return dense_outs, sorted(f"{layout.moes[k].container}.{e}" for k, e in fallback)


# Called after each pruned block with (block index, seconds, measured sparsity), e.g. to log progress.
BlockCallback = Callable[[int, float, float], None]


@torch.no_grad()
def prune_blocks(
    model: nn.Module,
    spec: PrunerSpec,
    targets: list[SparsityTarget],
    params: Any,
    batches: list[CalibBatch],
    opts: LoopOptions,
    on_block: Optional[BlockCallback] = None,
) -> LoopResult:
    """Prune every block in place; returns seconds per block, the exclusions and the fallback experts.

    Every block's tensors are checked first (an unknown 2-D parameter fails here, before any
    work). `on_block(i, seconds, sparsity)` is called after each block with its measured sparsity
    (counted while the block is still loaded: a streamed block leaves after its turn).
    Scratch buffers (mlsweep.prune.stats.Workspace) live for this call only.
    """
    blocks = find_blocks(model)
    result = LoopResult([], check_blocks(blocks, opts.exclude))
    device = opts.device or stem_device(model, blocks)
    data = capture_inputs(model, blocks, batches, device, opts.store(device)) if spec.needs_calibration else []
    workspace = Workspace()
    try:
        for i, block in enumerate(blocks):
            tic = time.perf_counter()
            sparsity = _block_turn(i, block, blocks, spec, targets[i], params, data, opts, device, workspace, result)
            result.seconds.append(time.perf_counter() - tic)
            if on_block:
                on_block(i, result.seconds[-1], sparsity)
    finally:
        workspace.clear()
    return result


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
    result: LoopResult,
) -> float:
    """Prune (or restore) block i, hand its outputs to the next block; returns its sparsity."""
    ckpt = opts.checkpoint
    last = i + 1 == len(blocks)
    with opts.turn(i, block, device):
        if ckpt is not None and ckpt.has(i):  # pruned before a restart: restore, only recompute outputs
            dense_outs = run_block(block, data, device) if data and not last and not opts.sequential else None
            fallback = ckpt.restore(i, block).get("fallback", [])
        else:
            dense_outs, experts = _prune_block(block, spec, target, params, data, opts, device, workspace)
            fallback = [f"{i}.{name}" for name in experts]
            if ckpt is not None:
                ckpt.save(i, block, {"fallback": fallback})
        result.fallback += fallback
        if data and not last:
            outs = run_block(block, data, device) if opts.sequential else dense_outs
            for b, out in zip(data, outs):
                b.hidden = out
        return block_sparsity(block, opts.exclude)
