"""The naive reference loop that bench_prune.py measures the engine against.

Written for the benchmark after the structure of the reference code
(locuslab/wanda `prune_wanda`, IST-DASLab/sparsegpt `llama_sequential`):

- a Catcher in place of block 0 stores every calibration sample's hidden
  states, one sample at a time (batch size 1), in a preallocated buffer, and
  keeps the keyword arguments (attention mask, position ids / embeddings) of
  the last sample it saw;
- per block: a forward hook on every nn.Linear updates its statistics sample
  by sample with the reference running-mean rules, every linear is pruned,
  then the pruned block is re-run sample by sample to give the next block's
  inputs.

Deliberately slow in the ways the reference is (batch size 1, statistics per
sample); the only liberty taken is that `fasterprune` skips the reference's
per-column `Losses` bookkeeping, which is logging only, so the naive side is
not made slower than it has to be.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Catcher(nn.Module):
    """Stands in for block 0: stores its input and the kwargs, then stops the forward."""

    def __init__(self, module: nn.Module, inps: torch.Tensor, cache: dict):
        super().__init__()
        self.module, self.inps, self.cache = module, inps, cache

    def forward(self, hidden_states, **kwargs):
        self.inps[self.cache["i"]] = hidden_states[0]
        self.cache["i"] += 1
        self.cache["kwargs"] = kwargs  # the last sample's mask / positions win
        raise ValueError  # caught by the caller: nothing past block 0 is needed


@torch.no_grad()
def capture_inputs(model: nn.Module, calibration: torch.Tensor):
    """(n, seqlen, hidden) block-0 inputs, filled one sample at a time, and the kwargs."""
    layers = model.model.layers
    n, seqlen = calibration.shape
    inps = torch.zeros(n, seqlen, model.config.hidden_size, dtype=next(model.parameters()).dtype)
    cache = {"i": 0, "kwargs": None}
    layers[0] = Catcher(layers[0], inps, cache)
    try:
        for j in range(n):
            try:
                model(calibration[j : j + 1], use_cache=False)
            except ValueError:
                pass
    finally:
        layers[0] = layers[0].module
    return inps, cache["kwargs"]


def _block_out(out):
    return out[0] if isinstance(out, (tuple, list)) else out  # transformers 5 returns a tensor


class WandaStats:
    """The reference WrappedGPT.scaler_row: running mean of per-sample sum_t x_tj^2."""

    def __init__(self, d_in: int):
        self.scaler_row = torch.zeros(d_in)
        self.nsamples = 0

    def add_batch(self, inp: torch.Tensor) -> None:
        inp = inp.reshape(-1, inp.shape[-1]).t().float()  # (d_in, tokens), one sample
        self.scaler_row *= self.nsamples / (self.nsamples + 1)
        self.nsamples += 1
        self.scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / self.nsamples


class SparseGPTStats:
    """The reference SparseGPT.add_batch: H *= n/(n+1); x *= sqrt(2/(n+1)); H += x x^T."""

    def __init__(self, d_in: int):
        self.H = torch.zeros(d_in, d_in)
        self.nsamples = 0

    def add_batch(self, inp: torch.Tensor) -> None:
        inp = inp.reshape(-1, inp.shape[-1]).t()  # (d_in, tokens), one sample
        self.H *= self.nsamples / (self.nsamples + 1)
        self.nsamples += 1
        inp = math.sqrt(2 / self.nsamples) * inp.float()
        self.H += inp.matmul(inp.t())


def prune_wanda_linear(lin: nn.Linear, stats: WandaStats, sparsity: float) -> None:
    """|W| * sqrt(scaler_row); per row, a stable sort prunes the first int(d_in * s)."""
    W = lin.weight.data
    metric = torch.abs(W) * torch.sqrt(stats.scaler_row.reshape(1, -1))
    mask = torch.zeros_like(metric, dtype=torch.bool)
    idx = torch.sort(metric, dim=-1, stable=True)[1][:, : int(metric.shape[1] * sparsity)]
    mask.scatter_(1, idx, True)
    W[mask] = 0


def fasterprune(
    W: torch.Tensor, H: torch.Tensor, sparsity: float, percdamp: float = 0.01, blocksize: int = 128
) -> torch.Tensor:
    """The reference unstructured SparseGPT column sweep (fp32), as one plain function."""
    W, H = W.clone().float(), H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    cols = W.shape[1]
    diag = torch.arange(cols)
    H[diag, diag] += percdamp * torch.mean(torch.diag(H))
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, Hinv1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2]
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        tmp = W1**2 / torch.diag(Hinv1).reshape(1, -1) ** 2
        mask1 = tmp <= torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
        for i in range(i2 - i1):
            w, d = W1[:, i], Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def _prune_linear(method: str, lin: nn.Linear, stats, sparsity: float) -> None:
    if method == "wanda":
        prune_wanda_linear(lin, stats, sparsity)
    else:
        lin.weight.data = fasterprune(lin.weight.data, stats.H, sparsity).to(lin.weight.dtype)


@torch.no_grad()
def prune_naive(model: nn.Module, calibration: torch.Tensor, method: str, sparsity: float) -> None:
    """Prune every block's linears in place, the reference way (see the module docstring)."""
    make_stats = {"wanda": WandaStats, "sparsegpt": SparseGPTStats}[method]
    inps, kwargs = capture_inputs(model, calibration)
    outs = torch.zeros_like(inps)
    for layer in model.model.layers:
        subset = {name: m for name, m in layer.named_modules() if isinstance(m, nn.Linear)}
        stats = {name: make_stats(lin.in_features) for name, lin in subset.items()}

        def add_batch(name):
            return lambda _m, inp, _out: stats[name].add_batch(inp[0].data)  # noqa: B023  (hooks removed below)

        handles = [lin.register_forward_hook(add_batch(name)) for name, lin in subset.items()]
        for j in range(len(inps)):
            outs[j] = _block_out(layer(inps[j].unsqueeze(0), **kwargs))[0]
        for h in handles:
            h.remove()
        for name, lin in subset.items():
            _prune_linear(method, lin, stats[name], sparsity)
        for j in range(len(inps)):
            outs[j] = _block_out(layer(inps[j].unsqueeze(0), **kwargs))[0]
        inps, outs = outs, inps
