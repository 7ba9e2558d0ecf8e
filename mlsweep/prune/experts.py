"""Mixture-of-experts layers in a decoder block: their structure, and the inputs routed to each expert.

Two structures, recognised by modules and parameters, never by model name:
- fused experts (transformers' experts interface, `@use_experts_implementation`:
  Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, ...): one module with 3-D parameters
  gate_up_proj (E, 2I, H) (up_proj (E, I, H) without a gate) and down_proj
  (E, H, I), laid out as its flags say (is_transposed, is_concatenated,
  has_bias), called as experts(hidden (N, H), top_k_index (N, K), weights);
- per-expert experts: a ModuleList/ModuleDict of two or more modules of one
  class holding nn.Linear layers, each called on the rows of its tokens.
The MoE layer is the experts' parent. Its other direct children that hold a
2-D parameter themselves are its routers (a TopKRouter's weight (E, H), an
nn.Linear gate, Qwen2-MoE's shared_expert_gate (1, H)): never pruned. A child
holding linears only further down (Qwen2-MoE's shared_expert) is an ordinary
MLP and is pruned as such.

Expert e's matrices (`<experts>.<e>.gate_proj` etc.) read the rows of the
tokens routed to e: gate and up read x_e = h[tokens of e], down reads
act(x_e W_gate^T) * (x_e W_up^T) (the experts' own gating). `routed_inputs`
hands them to the layer loop, one gather per expert and batch, never a loop
over tokens. Fused: a pre-hook on the experts module reads h and
top_k_index (tokens of e: those with e among their top-k, in token order)
and recomputes the down input. Per-expert: hooks see each expert's rows and
its linears' inputs; rows are matched to their tokens in the layer's input h
by exact bit-pattern keys (equal rows are equal hidden states, routed alike,
so duplicates match one to one) and put in token order; an expert whose
inputs are not rows of h fails the prune.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mlsweep.prune.matrix import Matrix
from mlsweep.prune.rows import row_keys, token_indices

# feed(matrix names reading x, x (rows, d) in the model's dtype, tok (rows,) flat token index in the
# batch, ascending, stage): stage 0 = the expert's input, 1 = what its later linears read
Feed = Callable[[tuple[str, ...], torch.Tensor, torch.Tensor, int], None]
_LAYOUT_FLAGS = ("has_gate", "is_transposed", "is_concatenated", "has_bias")


@dataclass
class MoE:
    """One mixture-of-experts layer of a block."""

    index: int  # position among the block's MoE layers
    path: str  # the MoE layer (the experts' parent) in the block
    container: str  # the experts module / list
    n_experts: int
    fused: bool
    matrices: dict[str, Matrix]
    routers: tuple[str, ...]  # 2-D router parameters, by name in the block: never pruned
    vectors: tuple[str, ...] = ()  # fused per-expert biases (E, d): not matrices, never pruned
    modules: set[int] = field(default_factory=set)  # ids of expert and router modules (no dense matrices there)
    reads: dict[str, int] = field(default_factory=dict)  # fused: matrix -> stage it reads (0: x_e, 1: down input)

    def expert_names(self, e: int) -> list[str]:
        return [n for n, m in self.matrices.items() if m.expert == (self.index, e)]


def _expert_view(t: torch.Tensor, e: int, rows: slice, transposed: bool) -> torch.Tensor:
    m = t[e].t() if transposed else t[e]  # (out, in)
    return m[rows]


def _fused_matrices(ex: nn.Module, path: str, index: int) -> tuple[dict[str, Matrix], dict[str, int]]:
    first = "gate_up_proj" if ex.has_gate else "up_proj"
    w = getattr(ex, first)
    n_experts = w.shape[0]
    out_dim = w.shape[2] if ex.is_transposed else w.shape[1]
    if ex.has_gate:
        half = out_dim // 2
        parts = (
            {"gate_proj": slice(0, half), "up_proj": slice(half, out_dim)}
            if ex.is_concatenated
            else {"gate_proj": slice(0, None, 2), "up_proj": slice(1, None, 2)}
        )
    else:
        parts = {"up_proj": slice(None)}
    matrices, reads = {}, {}
    for e in range(n_experts):
        for name, rows in parts.items():
            view = functools.partial(_expert_view, e=e, rows=rows, transposed=ex.is_transposed)
            matrices[f"{path}.{e}.{name}"] = Matrix(ex, first, f"{path}.{first}", view, (index, e))
            reads[f"{path}.{e}.{name}"] = 0
        view = functools.partial(_expert_view, e=e, rows=slice(None), transposed=ex.is_transposed)
        matrices[f"{path}.{e}.down_proj"] = Matrix(ex, "down_proj", f"{path}.down_proj", view, (index, e))
        reads[f"{path}.{e}.down_proj"] = 1
    return matrices, reads


def _is_fused(m: nn.Module) -> bool:
    if not all(hasattr(m, flag) for flag in _LAYOUT_FLAGS):
        return False
    first = getattr(m, "gate_up_proj" if m.has_gate else "up_proj", None)
    down = getattr(m, "down_proj", None)
    return isinstance(first, nn.Parameter) and isinstance(down, nn.Parameter) and first.dim() == down.dim() == 3


def _expert_list(m: nn.Module) -> Optional[list[tuple[str, nn.Module]]]:
    if not isinstance(m, (nn.ModuleList, nn.ModuleDict)) or len(m) < 2:
        return None
    items = list(m.named_children())
    if len({type(c) for _, c in items}) != 1 or isinstance(items[0][1], nn.Linear):
        return None
    if not any(isinstance(s, nn.Linear) for s in items[0][1].modules()):
        return None
    return items


def _routers(parent: nn.Module, pname: str, skip: str) -> tuple[tuple[str, ...], set[int]]:
    """The parent's direct children (other than the experts) holding a 2-D parameter themselves."""
    names, ids = [], set()
    for cname, child in parent.named_children():
        if cname == skip:
            continue
        own = [n for n, p in child.named_parameters(recurse=False) if p.dim() >= 2]
        if own:
            names += [f"{pname}{cname}.{n}" for n in own]
            ids |= {id(s) for s in child.modules()}
    return tuple(names), ids


def _per_expert_matrices(items: list, path: str, index: int) -> dict[str, Matrix]:
    return {
        f"{path}.{key}.{lname}": Matrix(lin, "weight", f"{path}.{key}.{lname}.weight", expert=(index, e))
        for e, (key, expert) in enumerate(items)
        for lname, lin in expert.named_modules()
        if isinstance(lin, nn.Linear)
    }


def find_moes(block: nn.Module) -> list[MoE]:
    """The block's MoE layers, fused or per-expert, in module order."""
    moes: list[MoE] = []
    for ppath, parent in block.named_modules():
        prefix = f"{ppath}." if ppath else ""
        for cname, child in parent.named_children():
            path, fused = f"{prefix}{cname}", _is_fused(child)
            items = None if fused else _expert_list(child)
            routers, router_ids = _routers(parent, prefix, cname)
            if not fused and (items is None or not routers):
                continue  # not experts, or a list of MLPs nothing routes between: ordinary linears
            if fused:
                matrices, reads = _fused_matrices(child, path, len(moes))
                n = getattr(child, "gate_up_proj" if child.has_gate else "up_proj").shape[0]
                own = child.named_parameters(recurse=False)
                vectors = tuple(f"{path}.{p}" for p, t in own if t.dim() == 2 and p.endswith("_bias"))
            else:
                matrices, reads, n, vectors = _per_expert_matrices(items, path, len(moes)), {}, len(items), ()
            ids = {id(s) for s in child.modules()} | router_ids
            moes.append(MoE(len(moes), ppath, path, n, fused, matrices, routers, vectors, ids, reads))
    return moes


def routed_tokens(top_k_index: torch.Tensor, n_experts: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(expert, its tokens in ascending order) for every expert some token is routed to; one sort per batch."""
    k = top_k_index.shape[-1]
    flat = top_k_index.reshape(-1)
    order = torch.argsort(flat, stable=True)  # by expert, then by (token, slot): tokens ascend within an expert
    counts = torch.bincount(flat, minlength=n_experts).tolist()
    for e, tok in enumerate(torch.split(order // k, counts)):
        if e < n_experts and tok.numel():
            yield e, tok


def down_input(experts: nn.Module, e: int, x: torch.Tensor) -> torch.Tensor:
    """What expert e's down projection reads for rows x (n, H): its gating of x W_gate_up^T (+ bias)."""
    name = "gate_up_proj" if experts.has_gate else "up_proj"
    w = getattr(experts, name)[e]
    y = x @ w if experts.is_transposed else F.linear(x, w)
    if experts.has_bias:
        y = y + getattr(experts, f"{name}_bias")[e]
    return experts._apply_gate(y) if experts.has_gate else experts.act_fn(y)


def _first_arg(args: tuple, kwargs: dict, key: str, pos: int = 0) -> Any:
    return args[pos] if len(args) > pos else kwargs[key]  # positional in transformers' MoE layers


def _tap_fused(moe: MoE, module: nn.Module, feed: Feed) -> list:
    names = {e: moe.expert_names(e) for e in range(moe.n_experts)}

    def hook(mod, args, kwargs):
        h = _first_arg(args, kwargs, "hidden_states")
        h = h.reshape(-1, h.shape[-1])
        idx = _first_arg(args, kwargs, "top_k_index", 1)
        for e, tok in routed_tokens(idx, moe.n_experts):
            x = h[tok]  # (n_e, H)
            feed(tuple(n for n in names[e] if moe.reads[n] == 0), x, tok, 0)
            feed(tuple(n for n in names[e] if moe.reads[n] == 1), down_input(mod, e, x), tok, 1)

    return [module.register_forward_pre_hook(hook, with_kwargs=True)]


class _PerExpertTap:
    """Hooks of one per-expert MoE layer: its input, each expert's rows and the inputs of its linears."""

    def __init__(self, moe: MoE, block: nn.Module, feed: Feed):
        self.moe, self.feed = moe, feed
        self.h = self.keys = self.call = None
        layer = block.get_submodule(moe.path) if moe.path else block
        container = block.get_submodule(moe.container)
        self.handles = [layer.register_forward_pre_hook(self.enter, with_kwargs=True)]
        for e, (_key, expert) in enumerate(container.named_children()):
            self.handles.append(expert.register_forward_pre_hook(functools.partial(self.start, e), with_kwargs=True))
            self.handles.append(expert.register_forward_hook(self.finish))
            for name in moe.expert_names(e):
                lin = moe.matrices[name].owner
                self.handles.append(lin.register_forward_hook(functools.partial(self.linear, name)))

    def enter(self, _mod, args, kwargs):
        h = _first_arg(args, kwargs, "hidden_states")
        self.h, self.keys = h.reshape(-1, h.shape[-1]), None

    def start(self, e, _mod, args, kwargs):
        x = args[0] if args else next(iter(kwargs.values()))
        rows = x.reshape(-1, x.shape[-1])
        if self.keys is None:  # once per layer call, only if an expert runs
            self.keys = row_keys(self.h)
        tok = token_indices(self.h, self.keys, rows)
        tok, perm = torch.sort(tok)
        self.call = dict(input=x, tok=tok, perm=perm, linears=[])

    def linear(self, name, _mod, inp, _out):
        if self.call is not None:
            self.call["linears"].append((name, inp[0]))

    def finish(self, _mod, _args, _out):
        call, self.call = self.call, None
        groups: list[tuple[list[str], torch.Tensor]] = []
        for name, tensor in call["linears"]:  # consecutive linears on one tensor read the same rows
            if groups and groups[-1][1] is tensor:
                groups[-1][0].append(name)
            else:
                groups.append(([name], tensor))
        for names, tensor in groups:
            rows = tensor.reshape(-1, tensor.shape[-1])
            if rows.shape[0] != len(call["perm"]):
                raise ValueError(f"expert linear {names[0]} reads {rows.shape[0]} rows for {len(call['perm'])} tokens")
            stage = 0 if tensor is call["input"] else 1
            self.feed(tuple(names), rows[call["perm"]], call["tok"], stage)


@contextmanager
def routed_inputs(block: nn.Module, moes: list[MoE], feed: Feed) -> Iterator[None]:
    """Within the context, every forward of the block feeds each expert matrix's routed input rows."""
    handles = []
    try:
        for moe in moes:
            if moe.fused:
                handles += _tap_fused(moe, block.get_submodule(moe.container), feed)
            else:
                handles += _PerExpertTap(moe, block, feed).handles
        yield
    finally:
        for h in handles:
            h.remove()
