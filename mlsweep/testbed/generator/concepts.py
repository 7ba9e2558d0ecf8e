"""The language-independent concept inventory of the testbed family.

Meanings are built from these ids only; every language has one word stem per
concept (see `lexicon`). The inventory is deliberately small (about 130
concepts) so that each language stays at a few hundred word types and a
2,048-token BPE over all seven languages covers them. Tags encode selectional
restrictions ("only fragile things break"), which keep generated sentences
plausible and let the causal rules pick fitting entities.
"""

from __future__ import annotations

from functools import cache

PERSONS = ("teacher", "doctor", "farmer", "baker", "child", "student", "driver", "singer", "fisher", "guard")
ANIMALS = ("dog", "cat", "bird", "horse", "cow", "goat", "mouse")
# Thing -> extra tags. "portable": can be dropped, carried, lost and found.
THINGS = {
    "glass": ("fragile", "washable", "portable", "count"),
    "cup": ("fragile", "washable", "portable", "count"),
    "plate": ("fragile", "washable", "portable", "count"),
    "egg": ("fragile", "food", "portable", "count"),
    "cake": ("food", "portable", "count", "cuttable"),
    "apple": ("food", "portable", "count", "cuttable"),
    "bread": ("food", "portable", "cuttable"),
    "book": ("portable", "count", "openable", "readable"),
    "letter": ("portable", "count", "readable"),
    "ball": ("portable", "count", "kickable"),
    "box": ("portable", "count", "openable", "kickable"),
    "key": ("portable", "count"),
    "candle": ("portable", "count", "lightable"),
    "rope": ("portable", "cuttable"),
    "shirt": ("washable", "portable", "count"),
    "door": ("openable",),
    "window": ("openable",),
    "stone": ("portable", "count", "kickable"),
    "ice": (),
    "bell": ("portable", "count"),
    "lamp": ("fragile", "portable", "count", "lightable"),
}
WEATHER = {"rain": ("precip",), "sun": (), "wind": (), "snow": ("precip",)}
# Place -> kind. Kinds restrict where things can happen (swim only in water).
PLACES = {
    "house": "indoor",
    "school": "indoor",
    "kitchen": "indoor",
    "market": "outdoor",
    "garden": "outdoor",
    "field": "outdoor",
    "forest": "outdoor",
    "street": "outdoor",
    "river": "water",
    "lake": "water",
}
# Hypernyms: only used when a check sentence restates a fact more generally.
CATEGORY_NOUNS = ("person", "animal", "thing", "place")

NOUNS: tuple[str, ...] = PERSONS + ANIMALS + tuple(THINGS) + tuple(WEATHER) + tuple(PLACES) + CATEGORY_NOUNS


def _category(noun: str) -> str:
    if noun in PERSONS:
        return "person"
    if noun in ANIMALS:
        return "animal"
    if noun in THINGS:
        return "thing"
    if noun in WEATHER:
        return "weather"
    if noun in PLACES:
        return "place"
    return noun  # a category noun is its own category


CATEGORY: dict[str, str] = {n: _category(n) for n in NOUNS}


def _tags(noun: str) -> frozenset:
    extra = THINGS.get(noun, ()) + WEATHER.get(noun, ())
    kind = (PLACES[noun],) if noun in PLACES else ()
    animate = ("animate",) if CATEGORY[noun] in ("person", "animal") else ()
    return frozenset((noun, CATEGORY[noun]) + extra + kind + animate)


TAGS: dict[str, frozenset] = {n: _tags(n) for n in NOUNS}

DIMENSIONS = {
    "size": ("big", "small"),
    "height": ("tall", "short"),
    "colour": ("red", "blue", "green", "white", "black"),
    "age_animate": ("old", "young"),
    "age_inanimate": ("old", "new"),
}
DIMS_FOR = {
    "person": ("height", "age_animate"),
    "animal": ("size", "colour", "age_animate"),
    "thing": ("size", "colour", "age_inanimate"),
    "place": ("size", "age_inanimate"),
    "weather": (),
}
ADJECTIVES = ("big", "small", "tall", "short", "red", "blue", "green", "white", "black", "old", "young", "new")

ANIMATE = ("person", "animal")
# pred -> (kind, subject tags, object tags or None, location: no/opt/req).
# Kinds: t transitive, i intransitive, s state (en "is tired"), l locative.
PREDICATES = {
    "see": ("t", ANIMATE, ("person", "animal", "thing"), "opt"),
    "drop": ("t", ("person",), ("portable",), "opt"),
    "eat": ("t", ANIMATE, ("food",), "opt"),
    "wash": ("t", ("person",), ("washable",), "opt"),
    "open": ("t", ("person",), ("openable",), "opt"),
    "close": ("t", ("person",), ("openable",), "opt"),
    "light": ("t", ("person",), ("lightable",), "opt"),
    "lose": ("t", ("person",), ("portable",), "opt"),
    "find": ("t", ANIMATE, ("portable",), "opt"),
    "buy": ("t", ("person",), ("count",), "opt"),
    "sell": ("t", ("person",), ("count",), "opt"),
    "feed": ("t", ("person",), ("animal",), "opt"),
    "read": ("t", ("person",), ("readable",), "opt"),
    "write": ("t", ("person",), ("letter",), "opt"),
    "carry": ("t", ("person", "horse"), ("portable",), "opt"),
    "kick": ("t", ("person", "horse"), ("kickable",), "opt"),
    "chase": ("t", ("dog", "cat"), ("animal", "person"), "opt"),
    "bite": ("t", ("animal",), ("person", "animal"), "opt"),
    "help": ("t", ("person",), ("person",), "opt"),
    "call": ("t", ("person",), ("person", "animal"), "opt"),
    "cook": ("t", ("person",), ("food",), "opt"),
    "cut": ("t", ("person",), ("cuttable",), "opt"),
    "ring": ("t", ("person",), ("bell",), "opt"),
    "sleep": ("i", ANIMATE, None, "opt"),
    "run": ("i", ANIMATE, None, "opt"),
    "work": ("i", ("person",), None, "opt"),
    "sing": ("i", ("person", "bird"), None, "opt"),
    "fall": ("i", ("animate", "portable", "precip"), None, "opt"),
    "cry": ("i", ("person",), None, "opt"),
    "laugh": ("i", ("person",), None, "opt"),
    "swim": ("i", ANIMATE, None, "opt"),
    "walk": ("i", ANIMATE, None, "opt"),
    "sit": ("i", ANIMATE, None, "opt"),
    "wait": ("i", ANIMATE, None, "opt"),
    "play": ("i", ANIMATE, None, "opt"),
    "shine": ("i", ("sun",), None, "opt"),
    "blow": ("i", ("wind",), None, "opt"),
    "shout": ("i", ("person",), None, "opt"),
    "come": ("i", ANIMATE, None, "opt"),
    "break": ("i", ("fragile", "window"), None, "opt"),
    "burn": ("i", ("lightable",), None, "opt"),
    "melt": ("i", ("ice", "snow"), None, "opt"),
    "be_at": ("l", ("animate", "portable"), None, "req"),
    "wet": ("s", ("animate", "thing", "place"), None, "no"),
    "dry": ("s", ("thing", "place"), None, "no"),
    "full": ("s", ANIMATE, None, "no"),
    "hungry": ("s", ANIMATE, None, "no"),
    "tired": ("s", ANIMATE, None, "no"),
    "happy": ("s", ANIMATE, None, "no"),
    "sad": ("s", ANIMATE, None, "no"),
    "angry": ("s", ANIMATE, None, "no"),
    "sick": ("s", ANIMATE, None, "no"),
    "cold": ("s", ("animate", "place"), None, "no"),
    "warm": ("s", ("animate", "place"), None, "no"),
    "clean": ("s", ("thing", "place", "animal"), None, "no"),
    "dirty": ("s", ("animate", "thing", "place"), None, "no"),
    "quiet": ("s", ("animate", "place"), None, "no"),
}
# Where a predicate may be located; by default on land (indoor or outdoor).
LOC_KINDS = {
    "swim": ("water",),
    "shine": ("outdoor",),
    "blow": ("outdoor",),
    "fall": ("indoor", "outdoor", "water"),
    "be_at": ("indoor", "outdoor", "water"),
    "wash": ("indoor", "outdoor", "water"),
    "see": ("indoor", "outdoor", "water"),
}
# Contradicting states, for `No` check sentences.
ANTONYMS = {
    "wet": "dry",
    "dry": "wet",
    "full": "hungry",
    "hungry": "full",
    "happy": "sad",
    "sad": "happy",
    "cold": "warm",
    "warm": "cold",
    "clean": "dirty",
    "dirty": "clean",
}
# Verbs whose object may be a counted plural ("buys three apples").
NUMBERABLE = ("see", "buy", "sell", "carry", "find", "wash", "drop", "eat")
NUMBERS = tuple(range(2, 10))
NUMERALS = tuple(f"n{k}" for k in NUMBERS)

CONTENT: tuple[str, ...] = NOUNS + ADJECTIVES + tuple(PREDICATES) + NUMERALS


def fits(noun: str, tags) -> bool:
    """Whether a noun satisfies a constraint: any of the tags, or a noun tuple."""
    return bool(TAGS[noun].intersection(tags))


@cache
def nouns_with(tags: tuple) -> tuple[str, ...]:
    """Concrete nouns (no hypernyms) satisfying a constraint, in inventory order."""
    return tuple(n for n in NOUNS if n not in CATEGORY_NOUNS and fits(n, tags))


@cache
def loc_places(pred: str, subj: str) -> tuple[str, ...]:
    """Places where `subj` can do `pred`; weather happens outdoors."""
    kinds = ("outdoor",) if CATEGORY[subj] == "weather" else LOC_KINDS.get(pred, ("indoor", "outdoor"))
    return tuple(p for p in PLACES if PLACES[p] in kinds)
