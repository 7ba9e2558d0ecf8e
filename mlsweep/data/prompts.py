"""Kim et al. 2024's calibration prompts (METHODS.md section 8): k-shot translation or monolingual.

translation: per prompt, k consecutive parallel pairs "{Src}: {s}</s>{Tgt}: {t}</s>", one index
skipped between prompts, pairs in file order (as their `mt` data type); monolingual: k sentences
"{Lang}: {s}</s>" from the source-language side, shuffled with the seed first (their `mono`).
Prompts are tokenised, truncated and right-padded to a fixed length; the returned mask marks real
tokens so the layer loop can keep padding out of the statistics (`mask_pad_in_stats`).
"""

from __future__ import annotations

import random

import torch


def translation_texts(
    src: list[str], tgt: list[str], src_name: str, tgt_name: str, eos: str, shots: int, n: int
) -> list[str]:
    if len(src) != len(tgt):
        raise ValueError(f"calib: parallel sides differ in length ({len(src)} vs {len(tgt)})")
    texts, i = [], 0
    while len(texts) < n:
        if i + shots > len(src):
            raise ValueError(
                f"calib.nsamples={n}: the parallel split has {len(src)} pairs, enough for "
                f"{len(texts)} prompts of {shots} shots"
            )
        texts.append("".join(f"{src_name}: {src[j]}{eos}{tgt_name}: {tgt[j]}{eos}" for j in range(i, i + shots)))
        i += shots + 1  # one pair skipped between prompts
    return texts


def monolingual_texts(sentences: list[str], name: str, eos: str, shots: int, n: int, seed: int) -> list[str]:
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    if n * shots > len(order):
        raise ValueError(f"calib.nsamples={n}: {len(order)} sentences are not enough for {n} x {shots} shots")
    return ["".join(f"{name}: {sentences[order[p * shots + k]]}{eos}" for k in range(shots)) for p in range(n)]


def pad_batch(tokenizer, texts: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), both (n, length): truncated and right-padded; mask is 1 on real tokens."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(texts), length), pad, dtype=torch.long)
    mask = torch.zeros(len(texts), length, dtype=torch.long)
    for i, text in enumerate(texts):
        enc = tokenizer(text, add_special_tokens=False)["input_ids"][:length]
        ids[i, : len(enc)] = torch.tensor(enc, dtype=torch.long)
        mask[i, : len(enc)] = 1
    return ids, mask
