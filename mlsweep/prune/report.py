"""What a prune call reports: measured sparsity over every block linear, per block and per linear."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from torch import nn

from mlsweep.prune.arch import find_blocks, find_linears


@dataclass
class PruneReport:
    method: str
    target: float
    pattern: str
    overall: float  # zeros / weights over every linear of every block
    per_block: list[float]
    per_linear: dict[str, float]  # "<block index>.<name in block>" -> sparsity
    seconds_per_block: list[float] = field(default_factory=list)
    allocated: list[float] = field(default_factory=list)  # target sparsity given to each block
    resumed: list[int] = field(default_factory=list)  # blocks restored from a checkpoint, not pruned again


def zero_counts(block: nn.Module) -> dict[str, tuple[int, int]]:
    """(zeros, weights) of every linear in a block."""
    return {name: (int((lin.weight == 0).sum()), lin.weight.numel()) for name, lin in find_linears(block).items()}


def summarize(counts: list[dict[str, tuple[int, int]]]) -> tuple[float, list[float], dict[str, float]]:
    """Sparsity over all block linears, per block and per linear, from per-block zero counts."""
    per_linear: dict[str, float] = OrderedDict()
    per_block = []
    for i, block in enumerate(counts):
        per_linear.update({f"{i}.{name}": z / n for name, (z, n) in block.items()})
        per_block.append(sum(z for z, _ in block.values()) / sum(n for _, n in block.values()))
    zeros = sum(z for block in counts for z, _ in block.values())
    total = sum(n for block in counts for _, n in block.values())
    return zeros / total, per_block, per_linear


def measure_sparsity(model: nn.Module) -> tuple[float, list[float], dict[str, float]]:
    """Fraction of exact zeros per linear, per block and over all block linears."""
    return summarize([zero_counts(block) for block in find_blocks(model)])
