"""SparseGPT (Frantar & Alistarh 2023): OBS pruning with weight reconstruction.

METHODS.md section 4. Hessian H = 2 X X^T / N_seq (fp32); dead inputs
(diag H = 0) get H_dd = 1 and their weight column zeroed; damping adds
percdamp * mean(diag H) to the diagonal. With U the upper Cholesky factor of
H^-1, columns are swept left to right in blocks of `blocksize`:
- unstructured: at the start of each block, on the already-updated weights,
  prune the entries with w^2 / U_cc^2 at or below the int(numel * s)-th
  smallest of the (all rows x block) group (the reference's quantile rule);
- N:M: at every M-th column of a block, each row prunes its N smallest
  w^2 / U_cc^2 among the next M columns;
- per column c: err = (w - q) / U_cc; W[:, c:block_end] -= err U[c, c:block_end];
  after the block, the lazy update W[:, block_end:] -= Err U[block, block_end:].
All in fp32 with TF32 off; the caller writes the result back in its dtype.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import torch

from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.registry import PRUNERS, PrunerSpec
from mlsweep.prune.stats import Workspace, per_sequence


@dataclass(frozen=True)
class Params:
    percdamp: float = 0.01  # damping, fraction of the mean Hessian diagonal
    blocksize: int = 128  # columns per lazy-update and mask-selection block

    def __post_init__(self) -> None:
        if not 0 <= self.percdamp < 1:
            raise ValueError(f"pruner.percdamp={self.percdamp}: allowed range is [0, 1)")
        if self.blocksize <= 0:
            raise ValueError(f"pruner.blocksize={self.blocksize}: must be a positive integer")


class Hessian:
    """H = (2 / N_seq) * sum over tokens of x x^T, accumulated in fp32.

    Updated one sequence at a time with the reference's running rule
    (H *= n/(n+1); x *= sqrt(2/(n+1)); H += x x^T), so the result is the
    reference's to the last bit whatever the calibration batch size.
    """

    def __init__(self, d_in: int, workspace: Optional[Workspace] = None):
        self.sum = torch.zeros(d_in, d_in, dtype=torch.float32)
        self.n_seq = 0
        self.readers = 1  # linears sharing this input (q/k/v); the layer loop sets it
        self.workspace = workspace if workspace is not None else Workspace()

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None, lengths: Optional[list[int]] = None) -> None:
        if self.sum.device != x.device:
            self.sum = self.sum.to(x.device)
        # one d x d buffer for the per-sequence products, shared within the prune call: a fresh
        # temporary per sequence fragments the heap (peak memory grew 1.5x streamed)
        outer = self.workspace.buffer(self.sum.shape, x.device)
        for seq in per_sequence(x, n_seq, lengths):
            self.sum *= self.n_seq / (self.n_seq + 1)
            self.n_seq += 1
            if not seq.shape[0]:  # a sequence with no rows (routed elsewhere) adds exactly zero
                continue
            seq = math.sqrt(2 / self.n_seq) * seq
            torch.matmul(seq.t(), seq, out=outer)  # the reference's product, then its add
            self.sum += outer

    @property
    def H(self) -> torch.Tensor:
        return self.sum.clone()

    def take_H(self) -> torch.Tensor:
        """H without a copy for its last user (linears sharing an input share the collector)."""
        if self.readers > 1:
            self.readers -= 1
            return self.sum.clone()
        H, self.sum = self.sum, None
        return H


@contextmanager
def no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def inverse_hessian_factor(H: torch.Tensor, W: torch.Tensor, percdamp: float) -> torch.Tensor:
    """Upper Cholesky factor of the damped H^-1; modifies H, and zeroes W's dead columns, in place."""
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H.diagonal().add_(percdamp * torch.mean(torch.diag(H)))
    L = torch.linalg.cholesky(H)
    del H
    Hinv = torch.cholesky_inverse(L)
    del L
    return torch.linalg.cholesky(Hinv, upper=True)


def obs_prune(
    W: torch.Tensor,
    H: torch.Tensor,
    target: SparsityTarget,
    percdamp: float = 0.01,
    blocksize: int = 128,
    own_H: bool = False,
) -> torch.Tensor:
    """The SparseGPT column sweep; W (d_out, d_in) fp32, returns the pruned, updated weight.

    own_H: H may be overwritten (saves a copy of a d_in x d_in matrix).
    """
    with no_tf32():
        W = W.clone().float()
        H = H.float() if own_H else H.float().clone()
        U = inverse_hessian_factor(H, W, percdamp)
        del H
        d_in = W.shape[1]
        for i1 in range(0, d_in, blocksize):
            i2 = min(i1 + blocksize, d_in)
            W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
            Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
            diag = torch.diag(U1)
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
            if not target.is_nm and target.sparsity > 0:
                score = W1**2 / diag[None, :] ** 2
                thresh = torch.sort(score.flatten())[0][int(score.numel() * target.sparsity)]
                mask1 = score <= thresh
            for i in range(i2 - i1):
                w, d = W1[:, i], U1[i, i]
                if target.is_nm and i % target.m == 0:
                    score = W1[:, i : i + target.m] ** 2 / diag[i : i + target.m][None, :] ** 2
                    mask1.scatter_(1, i + torch.topk(score, target.n, dim=1, largest=False)[1], True)
                q = w.masked_fill(mask1[:, i], 0.0)
                Q1[:, i] = q
                err = (w - q) / d
                W1[:, i:].addr_(err, U1[i, i:], alpha=-1.0)  # in place: no (d_out x cols) temporary
                Err1[:, i] = err
            W[:, i1:i2] = Q1
            W[:, i2:] -= Err1 @ U[i1:i2, i2:]
        return W


def prune(weight: torch.Tensor, stats: Hessian, target: SparsityTarget, params: Params) -> torch.Tensor:
    return obs_prune(weight, stats.take_H(), target, params.percdamp, params.blocksize, own_H=True)


def working_bytes(hidden: int, mlp: int) -> float:
    """The largest input's Hessian, its inverse factor and the shared product buffer (fp32, d x d each),
    plus an fp32 copy of the weight being solved."""
    return 3 * 4 * max(hidden, mlp) ** 2 + 4 * hidden * mlp


def hessian_bytes(width: int) -> float:
    """One Hessian of a d-wide input (fp32 d x d); a MoE block holds 2 E of them at once."""
    return 4 * width**2


def solver_flops(hidden: int, mlp: int, tokens: int) -> float:
    """Per Llama-like block: Hessians of its distinct inputs (attention, o_proj, MLP: h wide; down_proj: f wide)
    and the OBS updates."""
    return 2 * tokens * (3 * hidden**2 + mlp**2) + 2 * (4 * hidden**3 + 2 * hidden**2 * mlp + mlp**2 * hidden)


def swept_columns(hidden: int, mlp: int) -> int:
    """Columns solved one by one per block: q, k, v, o, gate, up read h inputs, down reads f."""
    return 6 * hidden + mlp


SPEC = PRUNERS.register(
    "sparsegpt",
    PrunerSpec(
        name="sparsegpt",
        summary="OBS reconstruction, adaptive mask per 128 columns",
        prune=prune,
        params=Params,
        make_collector=Hessian,
        checkpoint_blocks=True,
        working_bytes=working_bytes,
        stats_bytes=hessian_bytes,
        solver_flops=solver_flops,
        swept_columns=swept_columns,
    ),
)
