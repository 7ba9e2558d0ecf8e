"""Perplexity the way the Wanda/SparseGPT papers report it (METHODS.md section 1.6, 13).

The text is joined and tokenised once, cut into floor(N / seqlen)
non-overlapping windows, and every shifted position of every window is
scored: ppl = exp(mean token NLL). Windows are batched; each window's summed
NLL is kept (`window_nll`) so a table can bootstrap over windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from mlsweep.devicemap import input_device
from mlsweep.evaluate import tokcache


@dataclass
class PerplexityResult:
    ppl: float
    nll_sum: float  # nats, over all scored tokens
    tokens: int  # tokens scored (windows * (seqlen - 1))
    windows: int
    bytes: int = 0  # UTF-8 bytes of the text the scored tokens cover
    chars: int = 0
    window_nll: list[float] = field(default_factory=list)  # nats summed over each window's scored tokens
    window_tokens: list[int] = field(default_factory=list)  # tokens scored per window

    @property
    def bits_per_byte(self) -> float:
        """Comparable across tokenizers: NLL * tokens / (bytes * ln 2), with NLL the mean per token."""
        return self.nll_sum / (self.bytes * math.log(2)) if self.bytes else math.nan

    @property
    def bits_per_char(self) -> float:
        return self.nll_sum / (self.chars * math.log(2)) if self.chars else math.nan


def windows_of(token_ids: torch.Tensor, seqlen: int, max_windows: Optional[int] = None) -> torch.Tensor:
    n = token_ids.numel() // seqlen
    if max_windows is not None:
        n = min(n, max_windows)
    if n == 0:
        raise ValueError(f"eval: text has {token_ids.numel()} tokens, fewer than one window of seqlen={seqlen}")
    return token_ids[: n * seqlen].reshape(n, seqlen)


@torch.no_grad()
def perplexity(
    model, token_ids: torch.Tensor, seqlen: int, batch_size: int = 8, max_windows: Optional[int] = None
) -> PerplexityResult:
    """token_ids: 1-D LongTensor of the joined text."""
    wins = windows_of(token_ids, seqlen, max_windows)  # (n, seqlen)
    device = input_device(model)  # a model spread over devices (model.device_map) takes its inputs there
    per_window: list[float] = []
    for s in range(0, wins.shape[0], batch_size):
        batch = wins[s : s + batch_size].to(device)
        logits = model(input_ids=batch, use_cache=False).logits.float()  # (b, seqlen, vocab)
        flat = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="none")
        per_window += flat.reshape(batch.shape[0], -1).double().sum(1).tolist()  # per window: bootstrap intervals
    nll, scored = math.fsum(per_window), [seqlen - 1] * len(per_window)
    tokens = sum(scored)
    return PerplexityResult(
        math.exp(nll / tokens), nll, tokens, wins.shape[0], window_nll=per_window, window_tokens=scored
    )


def covered_text(text: str, offsets: list[tuple[int, int]], n_windows: int, seqlen: int) -> tuple[int, int]:
    """(bytes, chars) of the text spanned by the scored tokens: positions 1..seqlen-1 of each window."""
    n_bytes = n_chars = 0
    for w in range(n_windows):
        start = offsets[w * seqlen + 1][0] if seqlen > 1 else 0
        end = offsets[w * seqlen + seqlen - 1][1]
        span = text[start:end] if end > start else ""
        n_bytes += len(span.encode("utf-8"))
        n_chars += len(span)
    return n_bytes, n_chars


def text_perplexity(
    model, tokenizer, text: str, seqlen: int, batch_size: int = 8, max_windows: Optional[int] = None
) -> PerplexityResult:
    """Tokenise once (kept with the tokenizer for the next cell: mlsweep.evaluate.tokcache), score the
    windows, and measure the bytes and characters they cover."""
    ids, offsets = tokcache.cached(tokenizer, ("ppl", text), lambda: _encode(tokenizer, text))
    res = perplexity(model, torch.tensor(ids), seqlen, batch_size, max_windows)
    res.bytes, res.chars = covered_text(text, offsets, res.windows, seqlen)
    return res


def _encode(tokenizer, text: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return tuple(enc["input_ids"]), tuple(map(tuple, enc["offset_mapping"]))


def join_documents(docs: list[str]) -> str:
    """The WikiText convention: documents separated by a blank line."""
    return "\n\n".join(docs)
