"""The pruner registry: short name -> PrunerSpec.

A pruner is one module in `mlsweep/prune/pruners/` that registers its spec
(`PRUNERS.register(name, PrunerSpec(...))`) and one YAML of the same name in
conf/pruner/ (a test checks both sets are equal). The layer loop, the cell
and the cost model only talk to pruners through this interface: what a
pruner needs (calibration, statistics) and what it costs are fields of its
spec, never tests of its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Optional

import torch

from mlsweep.prune.stats import CollectorFactory
from mlsweep.registry import Registry, suggest


def score_working_set(hidden: int, mlp: int) -> float:
    """Bytes on the device while a score-based pruner handles its largest linear: fp32 weight and scores."""
    return 2 * 4 * hidden * mlp


def vector_stats(width: int) -> float:
    """Bytes of a score-based pruner's statistics of one input: a few fp32 vectors (per language for M-Wanda)."""
    return 16 * width


def no_solver(hidden: int, mlp: int, tokens: int) -> float:
    return 0.0


def no_columns(hidden: int, mlp: int) -> int:
    return 0


def any_tags(params: Any) -> tuple[str, ...]:
    return ()


def no_reading(params: Any) -> str:
    return ""


@dataclass(frozen=True)
class PrunerSpec:
    name: str
    summary: str
    # Returns the new fp32 weight (pruned entries zero; SparseGPT also updates the rest).
    prune: Callable[..., torch.Tensor]
    params: Optional[type] = None  # dataclass of method parameters; defaults = the paper's
    needs_calibration: bool = True
    prunes: bool = True  # False only for the dense baseline
    make_collector: Optional[CollectorFactory] = None  # (d_in, workspace) -> fresh collector
    # The collector kind for given params, where they choose it (M-Wanda's prob_source); None: make_collector.
    collector_for: Optional[Callable[[Any], CollectorFactory]] = None
    # Checkpoint each pruned block by default (runtime.checkpoint_blocks=null): worth it where a
    # block costs minutes on a big model (SparseGPT's solver), not where it costs a forward pass.
    checkpoint_blocks: bool = False
    # Cost hints for `mlsweep plan` (mlsweep/sweep/costs.py), in a block's hidden width h and MLP width f:
    working_bytes: Callable[[int, int], float] = score_working_set  # device bytes beyond the block
    stats_bytes: Callable[[int], float] = vector_stats  # bytes of one collector of a d-wide input (MoE: x E)
    solver_flops: Callable[[int, int, int], float] = no_solver  # (h, f, calibration tokens) -> FLOPs per block
    swept_columns: Callable[[int, int], int] = no_columns  # weight columns solved one by one per block
    # Calibration row tags the pruner reads (wanda_ratio: its base and sub data types); () for any rows.
    required_tags: Callable[[Any], tuple[str, ...]] = any_tags
    # The method's reading of its paper where options choose one (M-Wanda): the row's `reading`, table labels.
    reading: Callable[[Any], str] = no_reading

    def collector(self, params: Any) -> Optional[CollectorFactory]:
        """The statistics these params need: `collector_for(params)`, else `make_collector`."""
        return self.collector_for(params) if self.collector_for is not None else self.make_collector

    def check_params(self, params: Mapping[str, Any]) -> Any:
        """Build the params dataclass, naming unknown fields and the allowed ones."""
        allowed = [f.name for f in fields(self.params)] if self.params else []
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(
                f"pruner.{unknown[0]}: not a parameter of pruner {self.name!r}.{suggest(unknown[0], allowed)} "
                f"Allowed: {', '.join(allowed) or 'none'}"
            )
        return self.params(**params) if self.params else None


PRUNERS: Registry[PrunerSpec] = Registry("pruner", package="mlsweep.prune.pruners")


def get_pruner(name: str) -> PrunerSpec:
    return PRUNERS.get(name)


def all_pruners() -> list[PrunerSpec]:
    return PRUNERS.values()
