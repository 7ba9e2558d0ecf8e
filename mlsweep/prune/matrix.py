"""One prunable weight matrix of a block, as the pruners see it: (d_out, d_in), whatever its storage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn


def same(t: torch.Tensor) -> torch.Tensor:
    return t


def transposed(t: torch.Tensor) -> torch.Tensor:
    return t.t()


@dataclass(frozen=True)
class Matrix:
    """One prunable weight matrix of a block.

    The parameter is looked up on its owner at every access, so a block whose
    tensors are replaced (streamed from disk, moved between devices) keeps
    working; `view` turns the stored tensor into the (d_out, d_in) matrix.
    """

    owner: nn.Module
    param: str  # attribute of the owner holding the parameter
    source: str  # the parameter's name in the block (what exclusions match)
    view: Callable[[torch.Tensor], torch.Tensor] = same
    expert: Optional[tuple[int, int]] = None  # (MoE layer in the block, expert) for routed experts

    def tensor(self) -> torch.Tensor:
        """The weight as (d_out, d_in), a view of the parameter (writes go through)."""
        return self.view(getattr(self.owner, self.param).data)

    @property
    def d_in(self) -> int:
        return self.tensor().shape[1]

    def write(self, new: torch.Tensor) -> None:
        """Write a (d_out, d_in) result back, in the parameter's dtype."""
        t = self.tensor()
        t.copy_(new.to(t.dtype))

    def zeros(self) -> tuple[int, int]:
        t = self.tensor()
        return int((t == 0).sum()), t.numel()
