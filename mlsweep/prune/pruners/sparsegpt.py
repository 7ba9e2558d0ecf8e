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

    Linears that read one input (q/k/v, gate/up) share this collector, and
    their solves need the same inverse factor, so `take_factor` turns H into
    it once, in place, and hands it to every reader (the reference factors
    the same matrix once per linear).
    """

    def __init__(self, d_in: int, workspace: Optional[Workspace] = None):
        self.d_in = d_in
        # allocated at the first add: a collector that never sees a row of its own (k and v read
        # q's input and share its collector) costs no d x d matrix
        self.sum: Optional[torch.Tensor] = None
        self.n_seq = 0
        self.readers = 1  # linears sharing this input (q/k/v); the layer loop sets it
        self.workspace = workspace if workspace is not None else Workspace()
        self._factor: Optional[tuple[torch.Tensor, torch.Tensor]] = None

    def _matrix(self, device: torch.device) -> torch.Tensor:
        if self.sum is None:
            self.sum = torch.zeros(self.d_in, self.d_in, dtype=torch.float32, device=device)
        elif self.sum.device != device:
            self.sum = self.sum.to(device)
        return self.sum

    def add(self, x: torch.Tensor, n_seq: int, lang: Optional[str] = None, lengths: Optional[list[int]] = None) -> None:
        self._matrix(x.device)
        # one d x d buffer for the per-sequence products, shared within the statistics pass: a
        # fresh temporary per sequence fragments the heap (peak memory grew 1.5x streamed)
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
        return self._matrix(self.sum.device if self.sum is not None else torch.device("cpu")).clone()

    def take_factor(self, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(U, dead): the upper Cholesky factor of the damped H^-1 and the dead inputs.

        Computed from H in its own storage at the first call (H is gone afterwards); the last
        of the `readers` takes the factor away, so it is freed with that linear's solve.
        """
        if self._factor is None:
            H = self.sum if self.sum is not None else torch.zeros(self.d_in, self.d_in)
            self.sum = None
            with no_tf32():
                self._factor = inverse_hessian_factor_(H, percdamp)
        factor = self._factor
        self.readers -= 1
        if self.readers <= 0:
            self._factor = None
        return factor


@contextmanager
def no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def inverse_hessian_factor_(H: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, dead): the upper Cholesky factor of the damped H^-1, written over H, and the dead inputs.

    The reference's steps (dead inputs get H_dd = 1, damping, cholesky, cholesky_inverse,
    upper cholesky), each into H's own storage: the same results bit for bit as separate
    tensors, with one d x d matrix alive instead of up to four (on a 70B model's MLP input,
    0.8 GB each).
    """
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    H.diagonal().add_(percdamp * torch.mean(torch.diag(H)))
    torch.linalg.cholesky(H, out=H)
    torch.cholesky_inverse(H, out=H)
    torch.linalg.cholesky(H, upper=True, out=H)
    return H, dead


def obs_prune(
    W: torch.Tensor,
    H: torch.Tensor,
    target: SparsityTarget,
    percdamp: float = 0.01,
    blocksize: int = 128,
    own_H: bool = False,
) -> torch.Tensor:
    """The SparseGPT solve of one matrix; W (d_out, d_in), returns the pruned, updated weight in fp32.

    own_H: H may be overwritten (saves a copy of a d_in x d_in matrix).
    """
    with no_tf32():
        U, dead = inverse_hessian_factor_(H.float() if own_H else H.float().clone(), percdamp)
        W = W.float().clone()
        W[:, dead] = 0.0
        return obs_sweep(W, U, target, blocksize)


def obs_sweep(W: torch.Tensor, U: torch.Tensor, target: SparsityTarget, blocksize: int = 128) -> torch.Tensor:
    """The column sweep on W (fp32, modified in place and returned) given H^-1's upper factor U.

    Each block of columns is swept in a transposed copy, so that a column is a contiguous row and
    the per-column update a contiguous (later columns x d_out) slab.
    """
    d_out, d_in = W.shape
    # (3, blocksize, d_out): a block's transposed columns, its errors, one column's update products;
    # allocated once per matrix rather than per block of columns
    scratch = torch.empty(3, min(blocksize, d_in), d_out, dtype=W.dtype, device=W.device)
    with no_tf32():
        for i1 in range(0, d_in, blocksize):
            i2 = min(i1 + blocksize, d_in)
            U1 = U[i1:i2, i1:i2]
            W1T, ErrT, products = scratch[:, : i2 - i1]  # (cols, d_out) each
            W1T.copy_(W[:, i1:i2].t())
            mask1 = _block_mask(W1T, torch.diag(U1), target)  # (d_out, cols)
            _sweep_block(W1T, U1, mask1, target, ErrT, products)
            W[:, i1:i2] = W1T.t()
            W[:, i2:] -= ErrT.t().contiguous() @ U[i1:i2, i2:]  # the reference's lazy update, same layout
        return W


def _block_mask(W1T: torch.Tensor, diag: torch.Tensor, target: SparsityTarget) -> torch.Tensor:
    """The unstructured mask of a block (d_out x cols): w^2 / U_cc^2 at or below the reference's quantile.

    The quantile is the int(numel * s)-th smallest score (0-based) of the whole block; `kthvalue`
    gives that very element without the reference's full sort. N:M masks are filled during the sweep.
    """
    mask = torch.zeros(W1T.shape[1], W1T.shape[0], dtype=torch.bool, device=W1T.device)
    if target.is_nm or target.sparsity <= 0:
        return mask
    score = W1T.t() ** 2 / diag[None, :] ** 2
    k = int(score.numel() * target.sparsity)
    thresh = torch.kthvalue(score.flatten(), k + 1).values
    return torch.le(score, thresh, out=mask)


def _sweep_block(
    W1T: torch.Tensor,
    U1: torch.Tensor,
    mask1: torch.Tensor,
    target: SparsityTarget,
    ErrT: torch.Tensor,
    products: torch.Tensor,
) -> None:
    """Prune and update the block's columns in turn (W1T in place), writing the scaled errors to ErrT.

    Per column c, as the reference: err = (w - q) / U_cc with q = w masked, then every later
    column of the block loses err * U[c, later], each product rounded before the subtraction
    (the reference's outer-product matmul; a fused multiply-add would round differently).
    Column c itself ends as q, which the reference writes in place of its updated value.
    """
    cols = W1T.shape[0]
    zero = torch.zeros((), dtype=W1T.dtype, device=W1T.device)
    for c in range(cols):
        if target.is_nm and c % target.m == 0:
            score = (W1T[c : c + target.m].t() ** 2 / torch.diag(U1)[c : c + target.m][None, :] ** 2).contiguous()
            mask1[:, c : c + target.m].scatter_(1, torch.topk(score, target.n, dim=1, largest=False)[1], True)
        w, m, err = W1T[c], mask1[:, c], ErrT[c]
        torch.where(m, w, zero, out=err)  # w - q: w where pruned, 0 where kept
        err.div_(U1[c, c])
        rest = cols - c - 1
        if rest:
            torch.mul(U1[c, c + 1 :, None], err, out=products[:rest])
            W1T[c + 1 :].sub_(products[:rest])
        w.masked_fill_(m, 0.0)


def prune(weight: torch.Tensor, stats: Hessian, target: SparsityTarget, params: Params) -> torch.Tensor:
    U, dead = stats.take_factor(params.percdamp)
    W = weight.float().clone()
    W[:, dead] = 0.0
    return obs_sweep(W, U, target, params.blocksize)


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
