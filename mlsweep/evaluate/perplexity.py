"""Perplexity the way the Wanda/SparseGPT papers report it (METHODS.md section 1.6, 13).

The text is joined and tokenised once, cut into floor(N / seqlen)
non-overlapping windows, and every shifted position of every window is
scored: ppl = exp(mean token NLL). Windows are batched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass
class PerplexityResult:
    ppl: float
    nll_sum: float  # nats, over all scored tokens
    tokens: int  # tokens scored (windows * (seqlen - 1))
    windows: int


def windows_of(token_ids: torch.Tensor, seqlen: int, max_windows: Optional[int] = None) -> torch.Tensor:
    n = token_ids.numel() // seqlen
    if max_windows is not None:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"eval: text has {token_ids.numel()} tokens, fewer than one window of seqlen={seqlen}")
    return token_ids[: n * seqlen].reshape(n, seqlen)


@torch.no_grad()
def perplexity(model, token_ids: torch.Tensor, seqlen: int, batch_size: int = 8,
               max_windows: Optional[int] = None) -> PerplexityResult:
    """token_ids: 1-D LongTensor of the joined text."""
    wins = windows_of(token_ids, seqlen, max_windows)  # (n, seqlen)
    device = next(model.parameters()).device
    nll, tokens = 0.0, 0
    for s in range(0, wins.shape[0], batch_size):
        batch = wins[s:s + batch_size].to(device)
        logits = model(input_ids=batch, use_cache=False).logits.float()  # (b, seqlen, vocab)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                               reduction="sum")
        nll += float(loss)
        tokens += batch[:, 1:].numel()
    return PerplexityResult(math.exp(nll / tokens), nll, tokens, wins.shape[0])


def join_documents(docs: list[str]) -> str:
    """The WikiText convention: documents separated by a blank line."""
    return "\n\n".join(docs)
