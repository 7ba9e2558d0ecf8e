"""Building the calibration set: language-tagged windows of `seqlen` token ids.

Sampling follows the reference loaders (METHODS.md section 1.6): random
documents are concatenated (EOS between them) until the text is longer than
seqlen, then a random window of seqlen tokens is cut. Each language has its
own generator seeded with (seed, language), so adding a language to a mix
does not change the samples drawn for the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from mlsweep.data.mixes import sample_counts
from mlsweep.data.prompts import monolingual_texts, pad_batch, translation_texts
from mlsweep.data.sources import SourceSpec


@dataclass
class CalibrationSet:
    input_ids: torch.Tensor  # (nsamples, seqlen)
    languages: list[str]  # one tag per row
    doc_hashes: set[str]  # sha1 of every document a window touched
    attention_mask: Optional[torch.Tensor] = None  # (nsamples, seqlen), for padded prompts


@dataclass(frozen=True)
class CalibRequest:
    """What calibration set a cell asks for, as plain values (built by mlsweep.config.spec)."""

    name: str  # the mix's label in folders and tables ("de", "uniform")
    mix: str  # a name in mlsweep.data.mixes.MIXES
    languages: tuple[str, ...]
    source: SourceSpec
    split: str
    nsamples: int
    seqlen: int  # tokens per window (calib.seqlen, else the model's)
    seed: int
    family: str = ""  # model family, for the training shares of a proportional mix
    weights: Mapping[str, float] = field(default_factory=dict)
    format: str = "windows"  # a name in mlsweep.data.formats.FORMATS
    shots: int = 4
    pivot: str = "en"
    direction: str = "xx-pivot"
    mask_pad_in_stats: bool = True
    code_source: SourceSpec = SourceSpec(name="python_code")
    code_nsamples: int = 0

    def counts(self) -> dict[str, int]:
        """Windows per language (mlsweep.data.mixes)."""

        return sample_counts(self.mix, self.nsamples, list(self.languages), self.family, self.weights)


@dataclass(frozen=True)
class PromptSpec:
    """Kim et al.'s prompt calibration: format translation | monolingual."""

    format: str
    shots: int
    pivot: str
    direction: str
    length: int
    seed: int


def build_prompts(tokenizer, source, split: str, counts: dict[str, int], spec: PromptSpec) -> CalibrationSet:
    """k-shot prompts per language from a parallel source, padded to spec.length."""

    eos = tokenizer.eos_token or ""
    texts, langs, hashes = [], [], set()
    for lang, n in counts.items():
        side = source.documents(lang, split)
        if spec.format == "translation":
            other = source.documents(spec.pivot, split)
            pairs = (side, other, source.language_name(lang), source.language_name(spec.pivot))
            if spec.direction == "pivot-xx":
                pairs = (other, side, pairs[3], pairs[2])
            texts += translation_texts(*pairs, eos, spec.shots, n)
            hashes |= {doc_hash(t) for t in side + other}
        else:
            texts += monolingual_texts(side, source.language_name(lang), eos, spec.shots, n, spec.seed)
            hashes |= {doc_hash(t) for t in side}
        langs += [lang] * n
    ids, mask = pad_batch(tokenizer, texts, spec.length)
    return CalibrationSet(ids, langs, hashes, mask)


def merge_tagged(prompts: CalibrationSet, tag: str, other: CalibrationSet) -> CalibrationSet:
    """Prompts (all tagged `tag`, padded) followed by unpadded windows of another set, same length."""
    if other.input_ids.shape[1] != prompts.input_ids.shape[1]:
        raise ValueError("calib: code windows and prompts must have the same length (calib.seqlen)")
    ids = torch.cat([prompts.input_ids, other.input_ids])
    mask = torch.cat([prompts.attention_mask, torch.ones_like(other.input_ids)])
    return CalibrationSet(
        ids, [tag] * len(prompts.languages) + other.languages, prompts.doc_hashes | other.doc_hashes, mask
    )


def doc_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def sample_windows(
    docs: list[str], encode, eos_id: int, n: int, seqlen: int, rng: random.Random
) -> tuple[list[list[int]], set[str]]:
    """n windows of seqlen ids from randomly drawn, concatenated documents."""
    cache: dict[int, list[int]] = {}
    windows, used = [], set()
    for _ in range(n):
        ids: list[int] = []
        while len(ids) <= seqlen:
            j = rng.randrange(len(docs))
            if j not in cache:
                cache[j] = encode(docs[j]) + [eos_id]
            ids.extend(cache[j])
            used.add(j)
        start = rng.randint(0, len(ids) - seqlen - 1)
        windows.append(ids[start : start + seqlen])
    return windows, {doc_hash(docs[j]) for j in used}


def cache_dir() -> Path:
    """Where tokenised calibration windows are kept (MLSWEEP_CACHE, default ~/.cache/mlsweep)."""
    return Path(os.environ.get("MLSWEEP_CACHE", Path.home() / ".cache" / "mlsweep")) / "calib"


def _cache_key(source_key: str, lang: str, tokenizer, seqlen: int, seed: int, n: int, docs: list[str]) -> str:
    vocab = hashlib.sha1(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()
    text = hashlib.sha1("\n".join(docs).encode("utf-8")).hexdigest()
    ident = [source_key, lang, getattr(tokenizer, "name_or_path", ""), vocab, seqlen, seed, n, text]
    return hashlib.sha1(json.dumps(ident).encode()).hexdigest()


def build_calibration(
    tokenizer,
    documents_by_lang: dict[str, list[str]],
    counts: dict[str, int],
    seqlen: int,
    seed: int,
    source_key: str | None = None,
) -> CalibrationSet:
    """Windows for each language in `counts`, rows grouped by language.

    With a `source_key`, each language's windows are cached on disk, keyed by
    (source, language, tokenizer, seqlen, seed, n) and a hash of the documents,
    so a sweep tokenises each calibration set once.
    """
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    rows, langs, hashes = [], [], set()
    for lang, n in counts.items():
        if n == 0:
            continue
        docs = documents_by_lang[lang]
        if not docs:
            raise ValueError(f"calib.languages: no documents for language {lang!r}")
        path = (
            cache_dir() / f"{_cache_key(source_key, lang, tokenizer, seqlen, seed, n, docs)}.pt" if source_key else None
        )
        if path is not None and path.exists():
            win, used = torch.load(path)
        else:
            win, used = sample_windows(docs, encode, eos, n, seqlen, random.Random(f"{seed}/{lang}"))
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                torch.save((win, used), tmp)
                os.replace(tmp, path)
        rows += win
        langs += [lang] * n
        hashes |= set(used)
    return CalibrationSet(torch.tensor(rows, dtype=torch.long), langs, hashes)
