"""Meaning -> text: clauses, sentences and documents in one language.

The grammars (`grammars`) give a clause's words; this module adds the
sentence frames, whose words and punctuation come from `languages` so that
corpus text and evaluation prompts are built identically.
"""

from __future__ import annotations

from mlsweep.testbed.languages import LANGUAGES

from .grammars import GRAMMARS
from .lexicon import lexicon
from .meaning import Clause, Sentence


def clause(code: str, c: Clause, mode: str = "main") -> str:
    """A clause without end mark; mode is main, so or because (see `grammars`)."""
    return LANGUAGES[code].space.join(GRAMMARS[code](lexicon(code), c, mode))


def sentence(code: str, s: Sentence) -> str:
    lang = LANGUAGES[code]
    if s.kind == "plain":
        return clause(code, s.a) + lang.end
    if s.kind == "so":
        return lang.so_join(clause(code, s.a), clause(code, s.b, "so"))
    if s.kind == "because":
        return lang.because_join(clause(code, s.b), clause(code, s.a, "because"))
    if s.kind == "check":
        return lang.check(clause(code, s.a), lang.answer(s.answer), clause(code, s.b))
    raise ValueError(f"unknown sentence kind {s.kind!r}")


def document(code: str, doc) -> str:
    """One document on one line: its sentences joined the language's way."""
    return LANGUAGES[code].join_sentences([sentence(code, s) for s in doc])
