"""What a prune call reports: measured sparsity over every matrix the engine prunes, per block and per matrix."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from mlsweep.prune.arch import NO_EXCLUSIONS, find_blocks, find_matrices


@dataclass
class PruneReport:
    method: str
    target: float
    pattern: str
    overall: float  # zeros / weights over every pruned matrix (linears, Conv1D, experts) of every block
    per_block: list[float]
    per_linear: dict[str, float]  # "<block index>.<matrix name in block>" -> sparsity
    seconds_per_block: list[float] = field(default_factory=list)
    allocated: list[float] = field(default_factory=list)  # target sparsity given to each block
    resumed: list[int] = field(default_factory=list)  # blocks restored from a checkpoint, not pruned again
    excluded: dict[str, str] = field(default_factory=dict)  # >=2-D tensor in a block left dense -> reason
    fallback_experts: list[str] = field(default_factory=list)  # "<block>.<experts>.<e>" no calibration token reached


def zero_counts(block: nn.Module, exclude: Mapping[str, str] = NO_EXCLUSIONS) -> dict[str, tuple[int, int]]:
    """(zeros, weights) of every matrix the engine prunes in a block."""
    return {name: m.zeros() for name, m in find_matrices(block, exclude).items()}


def block_sparsity(block: nn.Module, exclude: Mapping[str, str] = NO_EXCLUSIONS) -> float:
    """Zeros / weights over the block's matrices."""
    counts = zero_counts(block, exclude).values()
    return sum(z for z, _ in counts) / sum(n for _, n in counts)


def summarize(counts: list[dict[str, tuple[int, int]]]) -> tuple[float, list[float], dict[str, float]]:
    """Sparsity over all block matrices, per block and per matrix, from per-block zero counts."""
    per_linear: dict[str, float] = OrderedDict()
    per_block = []
    for i, block in enumerate(counts):
        per_linear.update({f"{i}.{name}": z / n for name, (z, n) in block.items()})
        per_block.append(sum(z for z, _ in block.values()) / sum(n for _, n in block.values()))
    zeros = sum(z for block in counts for z, _ in block.values())
    total = sum(n for block in counts for _, n in block.values())
    return zeros / total, per_block, per_linear


def measure_sparsity(
    model: nn.Module, exclude: Mapping[str, str] = NO_EXCLUSIONS
) -> tuple[float, list[float], dict[str, float]]:
    """Fraction of exact zeros per matrix, per block and over all block matrices."""
    return summarize([zero_counts(block, exclude) for block in find_blocks(model)])
