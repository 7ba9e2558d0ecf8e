"""One pass of the calibration batches through a block, with the layer loop's hooks (mlsweep.prune.loop).

`collect` feeds every matrix's collector: dense matrices (nn.Linear,
Conv1D) from forward hooks on their modules, routed experts from
mlsweep.prune.experts, and a collector that reads the MLP activation (LAPE
neuron firing) from mlsweep.prune.ffn; `matrix_groups` orders the matrices by the input they
read, for true-sequential pruning. With loop.py and experts.py these are the
only code that hooks into a model.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from mlsweep.prune.arch import BlockLayout
from mlsweep.prune.capture import Batch, run_block
from mlsweep.prune.experts import routed_inputs
from mlsweep.prune.ffn import FfnTap
from mlsweep.prune.stats import CollectorFactory, PassStats, Workspace


def collect(
    block: nn.Module,
    layout: BlockLayout,
    names: list[str],
    make_collector: CollectorFactory,
    batches: list[Batch],
    device: torch.device,
    workspace: Workspace,
    keep_outputs: bool = True,
) -> tuple[PassStats, list[torch.Tensor]]:
    """One pass over the block with hooks feeding the collectors of `names`; returns (stats, outputs).

    keep_outputs=False: the block's outputs are not kept (an empty list is returned), for a caller
    that recomputes them after pruning. The workspace's scratch buffers are released when the pass
    ends, so they do not sit beside the solver's matrices.

    Dense matrices that read the same input tensor (q/k/v, gate/up) share one collector: the
    statistics are the same, so accumulating them once is exact and saves the work (a d_in x d_in
    Hessian per matrix for SparseGPT). Expert matrices get their routed rows from experts.py.
    """
    matrices = layout.matrices
    routed = {n for n in names if matrices[n].expert is not None}
    stats = PassStats({n: matrices[n].d_in for n in names}, routed, make_collector, workspace)
    # the previous matrix's input: the same tensor object (not just the same address, which
    # a freed tensor can hand on) means the same statistics
    state: dict[str, Any] = {"b": None, "input": None, "name": None}

    def dense_hook(name):
        def hook(_m, inp, _out):
            same_input = inp[0] is state["input"] and state["name"] is not None
            if name not in stats.leader and same_input:
                stats.leader[name] = stats.head(state["name"])
            state["input"], state["name"] = inp[0], name
            if name in stats.leader:
                return
            b = state["b"]
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float()  # (tokens, d_in)
            if b.tokens is not None:  # padding stays out of the statistics
                x = x[b.tokens.reshape(-1).to(x.device)]
            stats.add((name,), x, b.hidden.shape[0], b.lang)

        return hook

    def feed(group: tuple[str, ...], x: torch.Tensor, tok: torch.Tensor, _stage: int) -> None:
        b = state["b"]
        n_seq, seqlen = b.hidden.shape[:2]
        if b.tokens is not None:
            keep = b.tokens.reshape(-1).to(tok.device)[tok]
            x, tok = x[keep], tok[keep]
        lengths = torch.bincount(tok // seqlen, minlength=n_seq).tolist()  # rows per sequence
        stats.add(group, x.float(), n_seq, b.lang, lengths)

    def feed_ffn(name: str, h: torch.Tensor) -> None:  # the MLP activation, for the linear reading its neurons
        if name in stats.collectors:
            b = state["b"]
            h = h.detach().reshape(-1, h.shape[-1]).float()
            stats.collectors[name].add_ffn(h[b.tokens.reshape(-1).to(h.device)] if b.tokens is not None else h, b.lang)

    tap = FfnTap(block, feed_ffn) if getattr(make_collector, "reads_ffn_activation", False) else None

    def next_batch(b: Batch) -> None:
        if state["b"] is not None:
            stats.end_batch(state["b"].hidden.shape[0], state["b"].lang, device)
        state.update(b=b, input=None, name=None)
        if tap is not None:
            tap.next_batch()

    dense = [n for n in names if matrices[n].expert is None]
    handles = [matrices[n].owner.register_forward_hook(dense_hook(n)) for n in dense]
    try:
        with routed_inputs(block, layout.moes if routed else [], feed), tap.hooked() if tap else nullcontext():
            outs = run_block(block, batches, device, on_batch=next_batch, keep=keep_outputs)
        if state["b"] is not None:
            stats.end_batch(state["b"].hidden.shape[0], state["b"].lang, device)
    finally:
        for h in handles:
            h.remove()
        workspace.clear()
    return stats, outs


def matrix_groups(block: nn.Module, layout: BlockLayout, sample: Batch, device: torch.device) -> list[list[str]]:
    """Matrices grouped by the input they read, in forward order (for true-sequential pruning).

    A MoE layer's experts form one group per stage (all gate/up, then all down), placed where its
    first expert runs; an expert the sample does not reach joins the group of its peers' stage.
    """
    matrices = layout.matrices
    order: list[tuple[Any, Any]] = []  # (matrix name or (moe, stage), the tensor it reads)
    stage_of: dict[str, int] = {}

    def pre_hook(name):
        def hook(_m, inp):
            order.append((name, inp[0]))  # the tensor itself: identity, not address

        return hook

    def feed(group, _x, _tok, stage):
        moe = matrices[group[0]].expert[0]
        stage_of.update(dict.fromkeys(group, stage))
        order.append(((moe, stage), object()))  # a stage never merges with its neighbours

    dense = [n for n, m in matrices.items() if m.expert is None]
    handles = [matrices[n].owner.register_forward_pre_hook(pre_hook(n)) for n in dense]
    try:
        with routed_inputs(block, layout.moes, feed):
            run_block(block, [Batch(sample.hidden, sample.args, sample.kwargs, sample.lang)], device)
    finally:
        for h in handles:
            h.remove()
    stages: dict[tuple[int, int], list[str]] = {}
    for moe in layout.moes:
        by_suffix = {_suffix(moe.container, n): s for n, s in stage_of.items() if n in moe.matrices}
        for n in moe.matrices:
            s = moe.reads.get(n, stage_of.get(n, by_suffix.get(_suffix(moe.container, n), 1)))
            stages.setdefault((moe.index, s), []).append(n)
    groups: list[list[str]] = []
    last, seen = None, set()
    for key, tensor in order:  # consecutive calls on one input tensor form a group
        if key in seen:
            continue
        seen.add(key)
        names = stages.get(key, []) if isinstance(key, tuple) else [key]
        if tensor is last and groups:
            groups[-1].extend(names)
        else:
            groups.append(list(names))
        last = tensor
    placed = {n for g in groups for n in g}
    rest = [n for key, names in stages.items() if key not in seen for n in names if n not in placed]
    return [g for g in groups if g] + ([rest] if rest else [])


def _suffix(container: str, name: str) -> str:
    """An expert matrix's name within its expert: '<container>.<e>.down_proj' -> 'down_proj'."""
    return name[len(container) + 1 :].split(".", 1)[1]
