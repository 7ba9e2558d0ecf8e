"""Which token each routed row is: rows matched to the rows of a layer's input by their exact bit patterns.

Per-expert MoE layers hand each expert the rows of its tokens, h[tokens],
without saying which tokens they are; the engine needs them to split the
rows by calibration sequence. A row's key is a random linear form over its
16-bit words (wrapping modulo 2^64), so equal rows get equal keys; keys are
matched by sorting, equal rows one to one, and every match is then checked
exactly. Pure tensor maths: no hooks, no model.
"""

from __future__ import annotations

import torch

_MULTIPLIERS: dict[tuple[int, str], torch.Tensor] = {}


def row_keys(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n,) int64 key of each row's bit pattern: equal rows, equal keys; two different rows
    share one with probability about 2^-48 (a word differs by less than 2^16)."""
    words = x.contiguous().view(torch.int16).reshape(x.shape[0], -1)
    key = (words.shape[1], str(x.device))
    if key not in _MULTIPLIERS:
        g = torch.Generator().manual_seed(0x5EED)
        _MULTIPLIERS[key] = (torch.randint(0, 2**62, (words.shape[1],), generator=g) * 2 + 1).to(x.device)
    mult = _MULTIPLIERS[key]
    out = torch.empty(x.shape[0], dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], 1024):  # bounded temporary: 1024 rows of int64 words
        out[s : s + 1024] = ((words[s : s + 1024].long() & 0xFFFF) * mult).sum(-1)
    return out


def token_indices(h: torch.Tensor, h_keys: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """For every row of x (exact copies of rows of h), its row index in h; equal rows matched one to one."""
    sorted_h, order_h = torch.sort(h_keys, stable=True)
    sorted_x, order_x = torch.sort(row_keys(x), stable=True)
    rank = torch.arange(len(sorted_x), device=x.device) - torch.searchsorted(sorted_x, sorted_x)
    pos = (torch.searchsorted(sorted_h, sorted_x) + rank).clamp(max=len(sorted_h) - 1)
    tok = torch.empty_like(order_x)
    tok[order_x] = order_h[pos]
    if not (sorted_h[pos] == sorted_x).all() or not torch.equal(h[tok], x):
        raise ValueError(
            "an expert's input rows are not rows of its MoE layer's input; per-expert statistics need "
            "the routed tokens' hidden states as they enter the layer"
        )  # a key collision (about 2^-48 per pair of rows) also ends here, never in wrong statistics
    return tok
