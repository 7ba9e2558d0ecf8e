"""The pruner registry: short name -> PrunerSpec.

A pruner is one module exposing `SPEC`; it joins by being named in `_MODULES`
and by a YAML of the same name in conf/pruner/ (a test checks both sets are
equal). The layer loop only talks to pruners through this interface.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional, Protocol

import torch


_MODULES = ("dense", "magnitude", "wanda", "sparsegpt", "mwanda", "wanda_ratio")


class Collector(Protocol):
    """Per-linear calibration statistics, fed by the layer loop's forward hooks."""

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str]) -> None:
        """x: the linear's input, (tokens, d_in) in fp32; n_seq: sequences in the batch."""


@dataclass(frozen=True)
class PrunerSpec:
    name: str
    summary: str
    # Returns the new fp32 weight (pruned entries zero; SparseGPT also updates the rest).
    prune: Callable[..., torch.Tensor]
    params: Optional[type] = None  # dataclass of method parameters; defaults = the paper's
    needs_calibration: bool = True
    prunes: bool = True  # False only for the dense baseline
    make_collector: Optional[Callable[[int], Collector]] = None  # d_in -> fresh collector
    # Checkpoint each pruned block by default (runtime.checkpoint_blocks=null): worth it where a
    # block costs minutes on a big model (SparseGPT's solver), not where it costs a forward pass.
    checkpoint_blocks: bool = False

    def check_params(self, params: dict[str, Any]) -> Any:
        """Build the params dataclass, naming unknown fields and the allowed ones."""
        allowed = [f.name for f in fields(self.params)] if self.params else []
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"pruner.{unknown[0]}: not a parameter of pruner {self.name!r}; "
                             f"allowed: {allowed or 'none'}")
        return self.params(**params) if self.params else None


_REGISTRY: dict[str, PrunerSpec] = {}


def _load() -> None:
    if not _REGISTRY:
        for mod in _MODULES:
            spec = importlib.import_module(f"mlsweep.prune.{mod}").SPEC
            _REGISTRY[spec.name] = spec


def all_pruners() -> list[PrunerSpec]:
    _load()
    return list(_REGISTRY.values())


def get_pruner(name: str) -> PrunerSpec:
    _load()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"pruner={name!r} is unknown.{hint} Available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def apply_mask(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return weight.masked_fill(mask, 0.0)


