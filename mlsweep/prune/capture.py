"""Block-0 inputs: the calibration batches as the model hands them to its first decoder block.

`as_rows` and `calibration_batches` turn the caller's token ids into
language-homogeneous batches; `capture_inputs` runs only the stem (embeddings and whatever precedes block
0) and keeps, per calibration batch, the hidden states entering block 0 with
every other argument the model passes its blocks (attention mask, position
ids, rotary embeddings, ALiBi); `run_block` feeds them through one block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from mlsweep.prune.arch import find_blocks
from mlsweep.prune.placement import move, stem_device, stem_on_device


class _Captured(Exception):
    """Raised by the block-0 hook to stop the forward pass once inputs are caught."""


@dataclass
class CalibBatch:
    """Calibration rows of one language, as the model receives them."""

    ids: torch.Tensor  # (batch, seqlen) token ids
    lang: Optional[str] = None
    attention_mask: Optional[torch.Tensor] = None  # (batch, seqlen): padded prompts
    stats_mask: Optional[torch.Tensor] = None  # (batch, seqlen): tokens that enter the statistics


@dataclass
class Batch:
    hidden: torch.Tensor  # (batch, seqlen, hidden)
    args: tuple  # further positional arguments the model passed to its blocks
    kwargs: dict[str, Any]  # keyword arguments (masks, positions, rotary embeddings, alibi)
    lang: Optional[str]
    tokens: Optional[torch.Tensor] = None  # (batch, seqlen) bool: tokens that enter the statistics


def _block_output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def as_rows(calibration: Any) -> torch.Tensor:
    """Calibration token ids as a LongTensor (n, seqlen), from a tensor or equal-length rows."""
    if calibration is None:
        return torch.empty(0, 0, dtype=torch.long)
    if isinstance(calibration, torch.Tensor):
        rows = calibration
    else:
        rows = list(calibration)
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise ValueError(f"calibration: rows must all have the same length, got lengths {sorted(lengths)}")
        rows = torch.stack([torch.as_tensor(r) for r in rows]) if rows else torch.empty(0, 0)
    if rows.dim() != 2:
        raise ValueError(f"calibration: expected token ids shaped (n, seqlen), got shape {tuple(rows.shape)}")
    if rows.shape[0] and rows.shape[1] < 2:
        raise ValueError(f"calibration: rows of {rows.shape[1]} token(s) are too short; need at least 2")
    return rows.long()


def calibration_batches(
    rows: torch.Tensor,
    languages: Optional[Sequence[str]],
    batch_size: int,
    attention_mask: Optional[torch.Tensor] = None,
    mask_pad_in_stats: bool = True,
) -> list[CalibBatch]:
    """Language-homogeneous batches, so per-language statistics see one language per batch.

    With an attention mask (padded prompts), the model sees it, and padded positions are
    kept out of the statistics unless mask_pad_in_stats is False (Kim et al.'s original code).
    """
    langs = list(languages) if languages is not None else [None] * len(rows)
    if len(langs) != len(rows):
        raise ValueError(f"languages: {len(langs)} tags for {len(rows)} calibration rows")
    if attention_mask is not None and attention_mask.shape != rows.shape:
        raise ValueError(
            f"attention_mask: shape {tuple(attention_mask.shape)} differs from the calibration's {tuple(rows.shape)}"
        )
    out = []
    for lang in dict.fromkeys(langs):
        idx = [i for i, tag in enumerate(langs) if tag == lang]
        for s in range(0, len(idx), batch_size):
            part = idx[s : s + batch_size]
            mask = attention_mask[part] if attention_mask is not None else None
            out.append(CalibBatch(rows[part], lang, mask, mask if mask_pad_in_stats else None))
    return out


@torch.no_grad()
def capture_inputs(
    model: nn.Module,
    blocks: nn.ModuleList,
    batches: list[CalibBatch],
    device: torch.device,
    store: Optional[torch.device] = None,
) -> list[Batch]:
    """Run the model up to block 0 for every calibration batch and keep what block 0 receives.

    The stem runs on `device`; the captured activations are kept on `store` (default: `device`).
    """
    caught: list[Batch] = []
    store = store or device

    def hook(_module, args, kwargs):
        kwargs = dict(kwargs)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        caught.append(Batch(hidden.to(store), move(tuple(args[1:]), store), move(kwargs, store), None))
        raise _Captured

    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with stem_on_device(model, blocks, device):
            for cb in batches:
                attention = cb.attention_mask.to(device) if cb.attention_mask is not None else None
                try:
                    model(input_ids=cb.ids.to(device), attention_mask=attention, use_cache=False)
                except _Captured:
                    caught[-1].lang = cb.lang
                    if cb.stats_mask is not None:
                        caught[-1].tokens = cb.stats_mask.bool()
    finally:
        handle.remove()
    return caught


@torch.no_grad()
def run_block(
    block: nn.Module,
    batches: list[Batch],
    device: torch.device,
    on_batch: Callable[[Batch], None] | None = None,
    keep: bool = True,
) -> list[torch.Tensor]:
    """The block's output for every batch; keep=False: run it for its hooks only and keep nothing
    (a statistics pass whose outputs nobody reads would hold a second activation buffer)."""
    outs = []
    for b in batches:
        if on_batch:
            on_batch(b)
        out = _block_output(block(b.hidden.to(device), *move(b.args, device), **move(b.kwargs, device)))
        if keep:
            outs.append(out.to(b.hidden.device))
        del out
    return outs


@torch.no_grad()
def block_input_norms(model: nn.Module, batches: list[CalibBatch], device: Optional[torch.device] = None) -> dict:
    """Per language: mean over sequences of the sum over tokens of x^2 of the input to block 0
    (the embedding output), Wanda's statistic; MBS compares languages by its cosine."""
    blocks = find_blocks(model)
    device = device or stem_device(model, blocks)
    sums: dict = {}
    for b in capture_inputs(model, blocks, batches, device):
        x = b.hidden.float()
        if b.tokens is not None:
            x = x * b.tokens[..., None].to(x.device)
        total, n = sums.get(b.lang, (0.0, 0))
        sums[b.lang] = (total + (x * x).sum(dim=(0, 1)), n + x.shape[0])
    return {lang: (total / n).cpu() for lang, (total, n) in sums.items()}
