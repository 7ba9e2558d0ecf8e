"""`kim_xnli_<lang>`: Kim et al. 2024's zero-shot XNLI scorer (METHODS.md section 8), not lm-eval's.

Every language uses their English template "{premise} , right? {Yes|Also|No} ,
{hypothesis}"; each of the three full sequences is scored by its mean
per-token log-probability (tokens 2..T), the argmax is the prediction, and
the metric is accuracy on a seeded subset (shuffle with seed 0, first 1,000
items, as their debug mode that produced the paper's numbers). Sequences are
scored in padded batches; padding is masked out.
"""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F

from mlsweep.data.sources import SourceSpec
from mlsweep.devicemap import input_device
from mlsweep.evaluate.scorers import SCORERS, ScorerSpec

TEMPLATE = "{premise} , right? {answer} , {hypothesis}"
ANSWERS = ("Yes", "Also", "No")  # xnli labels 0 entailment, 1 neutral, 2 contradiction
SUBSET = 1000
SEED = 0


def subset(items: list[dict], n: int = SUBSET, seed: int = SEED) -> list[dict]:
    """A seeded subset (their `shuffle(seed=0).select(range(1000))`, up to the RNG used)."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    return [items[i] for i in order[:n]]


@torch.no_grad()
def mean_logprobs(model, tokenizer, texts: list[str], batch_size: int) -> torch.Tensor:
    """Mean log p(token_t | tokens_<t) over t = 2..T of each text."""
    device = input_device(model)  # a model spread over devices (model.device_map) takes its inputs there
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    for s in range(0, len(texts), batch_size):
        enc = [tokenizer(t, add_special_tokens=True)["input_ids"] for t in texts[s : s + batch_size]]
        width = max(map(len, enc))
        ids = torch.full((len(enc), width), pad, dtype=torch.long)
        mask = torch.zeros(len(enc), width)
        for i, e in enumerate(enc):
            ids[i, : len(e)], mask[i, : len(e)] = torch.tensor(e), 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        logp = -F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")  # (b, T-1)
        m = mask[:, 1:]
        out.append((logp * m).sum(1) / m.sum(1).clamp(min=1))
    return torch.cat(out)


def score(model, tokenizer, items: list[dict], batch_size: int = 32) -> dict[str, Any]:
    texts = [
        TEMPLATE.format(premise=it["premise"], answer=a, hypothesis=it["hypothesis"]) for it in items for a in ANSWERS
    ]
    lp = mean_logprobs(model, tokenizer, texts, batch_size).reshape(len(items), len(ANSWERS))
    gold = torch.tensor([int(it["label"]) for it in items])
    correct = (lp.argmax(1) == gold).float()
    return {"acc": float(correct.mean()), "n": len(items), "correct": correct.tolist()}


def score_language(model, tokenizer, source, lang: str, batch_size: int) -> dict[str, Any]:
    """Accuracy on the seeded subset of the language's test split; items by their index in the split."""
    records = source.records(lang, "test")
    picked = subset(list(range(len(records))))
    res = score(model, tokenizer, [records[i] for i in picked], batch_size)
    return {**res, "items": {"acc": (picked, res.pop("correct"))}}


def check(source, lang: str) -> None:
    source.check([lang], "test")


# HF xnli, test split per language (their data); eval.scorers.kim_xnli replaces it (a local copy, say).
SPEC = SCORERS.register(
    "kim_xnli",
    ScorerSpec(
        name="kim_xnli",
        source=SourceSpec(name="hf", dataset="facebook/xnli", config="{code}", text_field="premise"),
        score=score_language,
        check=check,
    ),
)
