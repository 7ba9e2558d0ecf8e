"""Finding a causal LM's decoder blocks and the weight matrices the engine prunes in them, by module structure.

The block list is the outermost ModuleList of identical modules that hold
prunable matrices (Llama/Qwen2/Gemma `model.layers`, BLOOM/GPT-2/Falcon
`transformer.h`, GPT-NeoX `gpt_neox.layers`, OPT `model.decoder.layers`); a
ModuleList of experts inside a block is never taken for it. Model names are
never consulted. Embeddings and lm_head live outside the blocks and are
therefore never pruned.

A block's prunable matrices, each seen by the pruners as (d_out, d_in):
- `nn.Linear` weights, fused ones included (Phi-3 qkv_proj and gate_up_proj,
  Falcon and BLOOM query_key_value): one matrix each;
- transformers `Conv1D` weights (GPT-2, mGPT), stored (d_in, d_out): the
  matrix is the transposed view, so rows are output features;
- the expert matrices of mixture-of-experts layers (mlsweep.prune.experts).
Every other parameter with two or more dimensions must be a router (found by
structure, excluded with reason "router"), a fused expert bias, or listed in
the caller's exclusions (`model.exclude`: a name pattern and its reason);
anything else fails the prune before it starts, naming the tensor.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Optional

import torch
from torch import nn

from mlsweep.prune.experts import find_moes
from mlsweep.prune.matrix import Matrix, transposed

SUPPORTED = (
    "decoder blocks of nn.Linear (also fused qkv / gate_up linears), transformers Conv1D (GPT-2, mGPT), "
    "fused 3-D experts (transformers' experts interface: Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, GPT-OSS) or per-expert "
    "nn.Linear experts; tested on Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma2, Gemma-3, Cohere (Aya-23), Phi-3, "
    "Falcon, OLMo-2, GPT-2, BLOOM, OPT, XGLM, GPT-NeoX (Pythia), Mixtral, Qwen2-MoE, Qwen3-MoE and OLMoE"
)
NO_EXCLUSIONS: Mapping[str, str] = MappingProxyType({})


@dataclass
class BlockLayout:
    """What the engine prunes in one block, what it leaves dense and why, and its MoE layers."""

    matrices: dict[str, Matrix]
    excluded: dict[str, str] = field(default_factory=dict)  # parameter name in the block -> reason
    moes: list = field(default_factory=list)  # mlsweep.prune.experts.MoE


def _conv1d() -> type:
    from transformers.pytorch_utils import Conv1D  # noqa: PLC0415 (heavy; loaded with any transformers model)

    return Conv1D


def dense_matrices(block: nn.Module, skip: set[int]) -> dict[str, Matrix]:
    """nn.Linear and Conv1D weights of the block, outside the modules in `skip` (experts, routers)."""
    conv1d = _conv1d()
    out = {}
    for name, mod in block.named_modules():
        if id(mod) in skip:
            continue
        if isinstance(mod, nn.Linear):
            out[name] = Matrix(mod, "weight", f"{name}.weight")
        elif isinstance(mod, conv1d):
            out[name] = Matrix(mod, "weight", f"{name}.weight", transposed)
    return out


def _has_matrices(module: nn.Module) -> bool:
    conv1d = _conv1d()
    return any(isinstance(m, (nn.Linear, conv1d)) for m in module.modules()) or any(
        p.dim() == 3 for p in module.parameters()
    )


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The largest ModuleList of same-class modules holding prunable matrices, not nested in another one."""
    candidates = [
        m
        for m in model.modules()
        if isinstance(m, nn.ModuleList) and len(m) and len({type(c) for c in m}) == 1 and _has_matrices(m[0])
    ]
    nested = {id(sub) for c in candidates for sub in c.modules() if sub is not c}
    outer = [c for c in candidates if id(c) not in nested]
    if not outer:
        raise ValueError(
            f"model {type(model).__name__}: no stack of decoder blocks with prunable matrices found; "
            f"supported architectures: {SUPPORTED}"
        )
    return max(outer, key=len)


def block_layout(block: nn.Module, exclude: Mapping[str, str] = NO_EXCLUSIONS) -> BlockLayout:
    """The block's matrices, its exclusions (routers; `exclude` patterns) and its MoE layers.

    `exclude` maps shell-style patterns over parameter names in the block
    (`self_attn.*_norm.weight`) to the reason they stay dense. Raises
    ValueError naming any other parameter of two or more dimensions.
    """
    moes = find_moes(block)
    skip: set[int] = set()
    matrices: dict[str, Matrix] = {}
    excluded: dict[str, str] = {}
    known: set[str] = set()
    for moe in moes:
        skip |= moe.modules
        matrices.update(moe.matrices)
        excluded.update({name: "router" for name in moe.routers})
        known |= set(moe.vectors)
    matrices.update(dense_matrices(block, skip))
    for name, m in list(matrices.items()):
        reason = _exclusion(m.source, exclude)
        if reason is not None:
            excluded[m.source] = reason
            del matrices[name]
    covered = {m.source for m in matrices.values()} | set(excluded) | known
    for pname, p in block.named_parameters():
        if p.dim() < 2 or pname in covered:
            continue
        reason = _exclusion(pname, exclude)
        if reason is None:
            raise ValueError(_unknown_message(block, pname, p))
        excluded[pname] = reason
    return BlockLayout(matrices, excluded, moes)


def _exclusion(name: str, exclude: Mapping[str, str]) -> Optional[str]:
    for pattern, reason in exclude.items():
        if fnmatch.fnmatchcase(name, pattern):
            return reason
    return None


def _unknown_message(block: nn.Module, pname: str, p: torch.Tensor) -> str:
    owner = block.get_submodule(pname.rsplit(".", 1)[0]) if "." in pname else block
    return (
        f"{type(block).__name__} parameter {pname!r} {tuple(p.shape)} (in a {type(owner).__name__}) has "
        f"{p.dim()} dimensions but is not a matrix the pruning engine knows (nn.Linear, Conv1D, expert weights, "
        f"router); list it under model.exclude with the reason to leave it dense and out of sparsity_measured, "
        f"e.g. model.exclude: {{'{pname}': '<why it stays dense>'}}"
    )


def check_exclusions(exclude: Mapping[str, str]) -> dict[str, str]:
    """model.exclude: tensor-name patterns (in a block) -> a non-empty reason each."""
    for pattern, reason in exclude.items():
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(f"model.exclude: {pattern!r} is not a tensor-name pattern")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"model.exclude.{pattern}: give the reason the tensor stays dense, got {reason!r}")
    return dict(exclude)


def check_blocks(blocks: nn.ModuleList, exclude: Mapping[str, str] = NO_EXCLUSIONS) -> dict[str, str]:
    """Every block's exclusions merged (parameter name in a block -> reason); fails naming block and tensor."""
    excluded: dict[str, str] = {}
    for i, block in enumerate(blocks):
        try:
            layout = block_layout(block, exclude)
        except ValueError as e:
            raise ValueError(f"block {i}: {e}") from None
        if not layout.matrices:
            raise ValueError(f"block {i}: no prunable matrix left (model.exclude: {dict(exclude)})")
        excluded.update(layout.excluded)
    return excluded


def find_matrices(block: nn.Module, exclude: Mapping[str, str] = NO_EXCLUSIONS) -> dict[str, Matrix]:
    """Every matrix the engine prunes in a block, by its name within the block."""
    return block_layout(block, exclude).matrices
