"""Word stems of the seven languages: one stem per concept, invented per language.

Stems are pronounceable random strings built from each language's own
syllable inventory, drawn from a random generator seeded with a fixed string,
so the lexicon is part of the language definition and never changes with the
corpus seed. `en` is hand-listed controlled English. `de` takes 70% of its
stems from `es` through regular sound changes (accents dropped, n-tilde -> n,
c -> k), which makes the two close relatives: shared vocabulary, different
endings and word order. `zh` spells every word with one or two characters of
an invented pool of Han characters, each character used by one word only, so
text without spaces still segments in exactly one way.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from functools import cache

from mlsweep.testbed.languages import LANGUAGES

from .concepts import ADJECTIVES, CONTENT, NOUNS, NUMERALS, PREDICATES

EN_WORDS = {n: n for n in NOUNS + ADJECTIVES + tuple(PREDICATES)}
EN_WORDS.update(
    {
        "n2": "two",
        "n3": "three",
        "n4": "four",
        "n5": "five",
        "n6": "six",
        "n7": "seven",
        "n8": "eight",
        "n9": "nine",
        "be_at": "is",
    }
)
EN_PLURAL = {"glass": "glasses", "box": "boxes"}
EN_THIRD = {"wash": "washes", "carry": "carries", "cry": "cries", "be_at": "is"}

# Function words that are not prompt words (those live in `languages`).
FUNCTION_WORDS = {
    "en": {"art": "the", "prep": "in", "cop": "is", "neg": "not", "do": "does"},
    "zh": {"mw": "仑", "de": "丐", "zai": "夙", "neg": "弋"},
    "es": {"art_m": "lu", "art_f": "la", "art_mp": "lus", "art_fp": "las", "neg": "nó", "prep": "ná", "cop": "éra"},
    "ar": {"art": "ان", "neg": "مو", "prep": "فو", "verb": "ي", "plural": "وش"},
    "ru": {"neg": "ни"},
    "de": {"art": "di", "neg": "nit", "prep": "an", "cop": "wer"},
    "sw": {"neg": "ta", "loc": "ne"},
}

ES_ONSETS = ("p", "t", "c", "b", "d", "g", "m", "n", "l", "r", "s", "f", "ñ", "v")
ES_ACUTE = {"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú"}
DE_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "h",
    "k",
    "l",
    "m",
    "n",
    "r",
    "s",
    "t",
    "w",
    "z",
    "sch",
    "st",
    "kr",
    "br",
    "fl",
    "gr",
    "pf",
)
DE_VOWELS = ("a", "e", "i", "o", "u", "ei", "au", "ie")
DE_CODAS = ("ch", "ng", "rt", "lt", "n", "r", "s", "t", "k", "ld", "rn")
RU_ONSETS = tuple("бвгджзклмнпрстфхчш")
RU_CODAS = tuple("нрлстмд")
AR_CONSONANTS = tuple("بتثجحخدذرزسشصضطظعغفقكلمنه")
SW_ONSETS = ("b", "d", "f", "g", "h", "j", "k", "l", "m", "p", "s", "t", "v", "w", "y", "ch", "sh", "nd", "mb", "ng")
COGNATE_SHARE = 0.7


@dataclass(frozen=True)
class Lexicon:
    code: str
    stems: dict = field(hash=False)  # concept -> stem (en: base form)
    func: dict = field(hash=False)  # function word name -> form
    gender: dict = field(hash=False, default_factory=dict)  # es nouns: m or f


def _es_stem(rng: random.Random) -> str:
    sylls = []
    for _ in range(rng.choice((1, 2, 2))):
        vowel = rng.choice("aeiou")
        onset = rng.choice(ES_ONSETS)
        if onset == "c" and vowel in "ei":
            onset = "s"  # c spells /k/ only before a, o, u
        sylls.append([onset, vowel])
    if rng.random() < 0.4:  # one stressed vowel marked with an acute accent
        syl = rng.choice(sylls)
        syl[1] = ES_ACUTE[syl[1]]
    return "".join(o + v for o, v in sylls) + rng.choice("nrlsd")


def de_sound_change(stem: str) -> str:
    """The regular es -> de correspondence: accents lost, n-tilde -> n, c -> k."""
    bare = "".join(ch for ch in unicodedata.normalize("NFD", stem) if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare).replace("c", "k")


def _de_stem(rng: random.Random) -> str:
    n = rng.choice((1, 1, 2))
    return "".join(rng.choice(DE_ONSETS) + rng.choice(DE_VOWELS) for _ in range(n)) + rng.choice(DE_CODAS)


def _ru_stem(rng: random.Random) -> str:
    n = rng.choice((1, 2, 2))
    return "".join(rng.choice(RU_ONSETS) + rng.choice("аеиоуыя") for _ in range(n)) + rng.choice(RU_CODAS)


def _ar_stem(rng: random.Random) -> str:
    # Triliteral roots, sometimes with a long vowel letter inside.
    root = [rng.choice(AR_CONSONANTS) for _ in range(3)]
    if rng.random() < 0.6:
        root.insert(rng.choice((1, 2)), rng.choice("اوي"))
    return "".join(root)


def _sw_stem(rng: random.Random) -> str:
    first = rng.choice(SW_ONSETS[:17])  # no nasal cluster right after a prefix
    rest = "".join(rng.choice(SW_ONSETS) + rng.choice("aeiou") for _ in range(rng.choice((1, 1, 2))))
    return first + rng.choice("aeiou") + rest


GENERATORS = {"es": _es_stem, "de": _de_stem, "ru": _ru_stem, "ar": _ar_stem, "sw": _sw_stem}


def _reserved_words(code: str) -> set[str]:
    lang = LANGUAGES[code]
    words = {lang.right, lang.yes, lang.no, lang.also, lang.because, lang.so}
    return words | set(FUNCTION_WORDS[code].values())


def _fresh(rng: random.Random, code: str, used: set[str]) -> str:
    while True:
        stem = GENERATORS[code](rng)
        if stem not in used:
            used.add(stem)
            return stem


def _generated(code: str) -> dict[str, str]:
    rng = random.Random(f"mlsweep-testbed-lexicon-{code}")
    used = _reserved_words(code)
    return {c: _fresh(rng, code, used) for c in CONTENT}


def _de_stems() -> dict[str, str]:
    es = _generated("es")
    rng = random.Random("mlsweep-testbed-lexicon-de")
    used = _reserved_words("de")
    stems = {}
    for concept in CONTENT:
        cognate = de_sound_change(es[concept])
        if rng.random() < COGNATE_SHARE and cognate not in used:
            used.add(cognate)
            stems[concept] = cognate
        else:
            stems[concept] = _fresh(rng, "de", used)
    return stems


def _zh_stems() -> dict[str, str]:
    lang = LANGUAGES["zh"]
    taken = set("".join(_reserved_words("zh")) + lang.name)
    rng = random.Random("mlsweep-testbed-lexicon-zh")
    pool = [chr(c) for c in rng.sample(range(0x4E00, 0x9FA6), 600) if chr(c) not in taken]
    stems = {}
    for concept in CONTENT:
        # Nouns get one or two characters; other words one (short verbs, like Han).
        two = concept in NOUNS and rng.random() < 0.5
        stems[concept] = "".join(pool.pop() for _ in range(2 if two else 1))
    return stems


def _gender(code: str) -> dict[str, str]:
    # Grammatical gender (es only) is arbitrary, as in real languages.
    rng = random.Random("mlsweep-testbed-gender")
    return {n: rng.choice("mf") for n in NOUNS} if code == "es" else {}


@cache
def lexicon(code: str) -> Lexicon:
    if code == "en":
        stems = {c: EN_WORDS[c] for c in CONTENT}
    elif code == "zh":
        stems = _zh_stems()
    elif code == "de":
        stems = _de_stems()
    else:
        stems = _generated(code)
    return Lexicon(code, stems, dict(FUNCTION_WORDS[code]), _gender(code))


def stems(code: str) -> dict[str, str]:
    """Concept id -> stem of one language (a copy)."""
    return dict(lexicon(code).stems)


def numeral(code: str, k: int) -> str:
    return lexicon(code).stems[NUMERALS[k - 2]]
