"""The MLP activation of a decoder block, found by structure, for statistics on FFN neurons.

LAPE (Tang et al. 2024, "Language-Specific Neurons"; used by Kurz et al.)
measures whether an FFN neuron fires: act_fn(gate_proj(x))_j > 0 in a gated
MLP (Llama, Gemma, Qwen2), act(fc1(x))_j > 0 in a plain one (BLOOM's
gelu_impl(dense_h_to_4h(x)), GPT-NeoX, OPT, XGLM). Neuron j is input column j
of the linear that reads the neurons (down_proj, fc2, dense_4h_to_h).

Found without names: an activation is a parameterless leaf module (not
dropout, softmax or identity) of a module that also holds linears, whose
output keeps its input's shape; its reader is the next linear of the same
module that is called on a fresh input (not one an earlier linear of the
module read, as up_proj reads gate_proj's) with in_features equal to the
output's width. The pairing is made on the first forward and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

_NOT_ACTIVATIONS = (nn.Linear, nn.Dropout, nn.Identity, nn.Softmax)

# (name of the linear that reads the neurons, the activation's output) -> None
Feed = Callable[[str, torch.Tensor], None]


def find_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """The block's nn.Linear modules by name (an MLP of Conv1D layers is not one this module reads)."""
    return {name: mod for name, mod in block.named_modules() if isinstance(mod, nn.Linear)}


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def activation_candidates(block: nn.Module) -> dict[str, nn.Module]:
    """Parameterless leaf modules that sit beside linears: where an MLP's activation can be."""
    parents = {_parent(n) for n in find_linears(block)}
    out = {}
    for name, m in block.named_modules():
        leaf = next(m.children(), None) is None
        bare = next(m.parameters(recurse=False), None) is None
        if leaf and bare and not isinstance(m, _NOT_ACTIVATIONS) and _parent(name) in parents and name:
            out[name] = m
    return out


class FfnTap:
    """Hooks that hand each activation's output to `feed` under the name of the linear reading it."""

    def __init__(self, block: nn.Module, feed: Feed):
        self.block, self.feed = block, feed
        self.readers: dict[str, str] = {}  # activation -> linear that reads its neurons
        self._pending: dict[str, tuple[str, torch.Tensor]] = {}  # parent module -> (activation, output)
        self._seen: dict[str, list[torch.Tensor]] = {}  # parent module -> inputs its linears read

    def next_batch(self) -> None:
        self._pending.clear()
        self._seen.clear()

    def _on_activation(self, name: str):
        def hook(_m, inp, out):
            if isinstance(out, torch.Tensor) and inp and isinstance(inp[0], torch.Tensor) and out.shape == inp[0].shape:
                self._pending[_parent(name)] = (name, out)

        return hook

    def _on_linear(self, name: str, linear: nn.Linear):
        def hook(_m, inp):
            x, parent = inp[0], _parent(name)
            seen = self._seen.setdefault(parent, [])
            pending = self._pending.get(parent)
            fresh = not any(x is s for s in seen)  # identity: up_proj reads the tensor gate_proj read
            if pending is not None and fresh and linear.in_features == pending[1].shape[-1]:
                act, out = pending
                del self._pending[parent]
                if self.readers.setdefault(act, name) == name:
                    self.feed(name, out)
            seen.append(x)

        return hook

    @contextmanager
    def hooked(self) -> Iterator[FfnTap]:
        handles = [
            m.register_forward_hook(self._on_activation(n)) for n, m in activation_candidates(self.block).items()
        ]
        handles += [
            lin.register_forward_pre_hook(self._on_linear(n, lin)) for n, lin in find_linears(self.block).items()
        ]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()
        if not self.readers:
            raise ValueError(
                "statistics at the MLP activation (FFN neuron firing) were asked for, but no activation "
                "module whose output a linear reads was found in this block; the model's MLP is not one of "
                "the structures mlsweep.prune.ffn recognises"
            )
