"""Language-independent meanings: noun phrases, clauses, sentences, documents.

A meaning is rendered into every language by `render`, so one meaning gives
one parallel sentence set. Meanings are frozen dataclasses of strings, ints,
bools and None; `clause_key` and `doc_key` spell them canonically (nothing
depends on PYTHONHASHSEED), and the held-out split and deduplication hash
those keys with CRC-32.

Held-out space: a fixed fifth of all possible clauses (chosen by a CRC of the
clause key) is reserved for evaluation. Training and the text splits never
contain a reserved clause; task premises and parallel sentences always start
from one. This makes "no task premise occurs as a training sentence" true by
construction rather than by luck.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Optional

from .concepts import CATEGORY, DIMENSIONS, DIMS_FOR, NUMBERABLE, NUMBERS, PREDICATES, TAGS, loc_places, nouns_with

HELD_OUT_MOD = 5


@dataclass(frozen=True)
class NP:
    noun: str
    adj: Optional[str] = None
    num: Optional[int] = None  # 2..9: a counted plural ("three apples")


@dataclass(frozen=True)
class Clause:
    pred: str
    subj: NP
    obj: Optional[NP] = None
    loc: Optional[str] = None  # a place noun
    neg: bool = False


@dataclass(frozen=True)
class Sentence:
    """kind: plain (a), so (a, so b), because (b because a), check (a, right? answer, b).

    For so/because, a is the cause and b the effect whatever the surface order.
    """

    kind: str
    a: Clause
    b: Optional[Clause] = None
    answer: Optional[str] = None  # yes, no or also


Document = tuple  # of Sentence


def _np_key(np: Optional[NP]) -> str:
    return "-" if np is None else f"{np.noun}/{np.adj}/{np.num}"


def clause_key(c: Clause) -> str:
    """Canonical text of a clause (faster than the dataclass repr)."""
    return f"{c.pred}|{_np_key(c.subj)}|{_np_key(c.obj)}|{c.loc}|{c.neg}"


def held_out(clause: Clause) -> bool:
    return zlib.crc32(clause_key(clause).encode("utf-8")) % HELD_OUT_MOD == 0


def sentence_key(s: Sentence) -> str:
    b = clause_key(s.b) if s.b is not None else "-"
    return f"{s.kind}:{s.answer}:{clause_key(s.a)}:{b}"


def doc_key(doc: Document) -> str:
    return " || ".join(sentence_key(s) for s in doc)


def bucket(first: Sentence, n: int = 10) -> int:
    """A fixed bucket of a document, from the meaning of its first sentence.
    Bucket 0 is the pool of the evaluation text splits, training takes the
    rest; documents that differ in bucket differ in their first sentence."""
    return zlib.crc32(sentence_key(first).encode("utf-8")) % n


def dimension_of(adj: str, noun: str) -> Optional[str]:
    """The attribute dimension an adjective expresses on a noun ('old' depends on it)."""
    for dim in DIMS_FOR[CATEGORY[noun]]:
        if adj in DIMENSIONS[dim]:
            return dim
    return None


def random_adj(rng: random.Random, noun: str, p: float = 0.5) -> Optional[str]:
    dims = DIMS_FOR[CATEGORY[noun]]
    if not dims or rng.random() >= p:
        return None
    return rng.choice(DIMENSIONS[rng.choice(dims)])


@cache
def preds_for(noun: str, kinds: str = "tisl") -> tuple[str, ...]:
    return tuple(p for p, (kind, subj, _, _) in PREDICATES.items() if kind in kinds and TAGS[noun].intersection(subj))


def random_object(rng: random.Random, pred: str, subj: str, cast: tuple = ()) -> Optional[NP]:
    """An object NP for `pred`: a cast member if one fits, else a new one."""
    obj_tags = PREDICATES[pred][2]
    if obj_tags is None:
        return None
    fitting = [np for np in cast if np.noun != subj and TAGS[np.noun].intersection(obj_tags)]
    if fitting and rng.random() < 0.6:
        return rng.choice(fitting)
    noun = rng.choice([n for n in nouns_with(obj_tags) if n != subj])
    if pred in NUMBERABLE and "count" in TAGS[noun] and rng.random() < 0.15:
        return NP(noun, random_adj(rng, noun, 0.2), rng.choice(NUMBERS))
    return NP(noun, random_adj(rng, noun, 0.3))


def random_loc(rng: random.Random, pred: str, subj: str, place: Optional[str], p: float = 0.5) -> Optional[str]:
    rule = PREDICATES[pred][3]
    if rule == "no" or (rule == "opt" and rng.random() >= p):
        return None
    places = loc_places(pred, subj)
    return place if place in places and rng.random() < 0.7 else rng.choice(places)


def random_clause(
    rng: random.Random, subj: NP, cast: tuple = (), place: Optional[str] = None, kinds: str = "tisl"
) -> Clause:
    """A plausible clause about `subj`, preferring cast members and the story place."""
    pred = rng.choice(preds_for(subj.noun, kinds))
    return Clause(pred, subj, random_object(rng, pred, subj.noun, cast), random_loc(rng, pred, subj.noun, place))
