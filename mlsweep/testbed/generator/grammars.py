"""Clause grammars of the seven languages: a clause meaning -> a list of words.

Each grammar decides word order and morphology; `render` adds sentence
punctuation. `mode` is where the clause stands: "main", "so" (after the so
connector) or "because" (after the because connector); only `de` reacts to it
(verb second in main clauses, verb first after `dan`, verb final after `wal`),
the way real verb-second languages do. Design per language:

- en: controlled English, SVO, "the", -s plurals, do-support negation.
- zh: SVO, no inflection, adjective + linker particle, numeral + measure
  particle, location particle before the verb, no spaces.
- es: SVO, article and adjective agree with the noun's gender (-o/-a, -s),
  adjectives follow nouns, states are copula + agreeing adjective.
- ar: VSO, prefix article on nouns and their adjectives, verb prefix.
- ru: SOV, case suffixes on nouns (nominative, accusative, locative), no
  prepositions.
- de: V2 / verb-final, invariant article, -e on attributive adjectives, -en
  plurals; location is fronted in main clauses (verb second).
- sw: SVO, noun-class prefixes on nouns and adjectives, subject-agreement
  prefix (and negation prefix) on verbs, locative suffix.
"""

from __future__ import annotations

from .concepts import CATEGORY, PREDICATES, TAGS
from .lexicon import EN_PLURAL, EN_THIRD, Lexicon, numeral
from .meaning import NP, Clause


def _kind(pred: str) -> str:
    return PREDICATES[pred][0]


def en_np(lx: Lexicon, np: NP) -> str:
    adj = [lx.stems[np.adj]] if np.adj else []
    noun = lx.stems[np.noun]
    if np.num:
        return " ".join([numeral("en", np.num)] + adj + [EN_PLURAL.get(np.noun, noun + "s")])
    return " ".join(["the"] + adj + [noun])


def en_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    kind, word = _kind(c.pred), lx.stems[c.pred]
    if kind in "sl":
        verb = ["is"] + (["not"] if c.neg else []) + ([word] if kind == "s" else [])
    else:
        verb = ["does", "not", word] if c.neg else [EN_THIRD.get(c.pred, word + "s")]
    words = [en_np(lx, c.subj)] + verb
    if c.obj:
        words.append(en_np(lx, c.obj))
    if c.loc:
        words += ["in", en_np(lx, NP(c.loc))]
    return words


def zh_np(lx: Lexicon, np: NP) -> str:
    out = numeral("zh", np.num) + lx.func["mw"] if np.num else ""
    if np.adj:
        out += lx.stems[np.adj] + lx.func["de"]
    return out + lx.stems[np.noun]


def zh_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    words = [zh_np(lx, c.subj)] + ([lx.func["neg"]] if c.neg else [])
    if c.loc:
        words += [lx.func["zai"], lx.stems[c.loc]]
    if _kind(c.pred) != "l":  # the location particle alone is the locative verb
        words.append(lx.stems[c.pred])
    if c.obj:
        words.append(zh_np(lx, c.obj))
    return words


def _es_vowel(lx: Lexicon, noun: str) -> str:
    return "o" if lx.gender[noun] == "m" else "a"


def es_np(lx: Lexicon, np: NP) -> list[str]:
    v, g = _es_vowel(lx, np.noun), lx.gender[np.noun]
    pl = "s" if np.num else ""
    words = [lx.stems[np.noun] + v + pl] + ([lx.stems[np.adj] + v + pl] if np.adj else [])
    head = numeral("es", np.num) if np.num else lx.func["art_" + g]
    return [head] + words


def es_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    words = es_np(lx, c.subj) + ([lx.func["neg"]] if c.neg else [])
    if _kind(c.pred) == "s":
        words += [lx.func["cop"], lx.stems[c.pred] + _es_vowel(lx, c.subj.noun)]
    else:
        words.append(lx.stems[c.pred] + "a")
    if c.obj:
        words += es_np(lx, c.obj)
    if c.loc:
        words += [lx.func["prep"]] + es_np(lx, NP(c.loc))
    return words


def ar_np(lx: Lexicon, np: NP) -> list[str]:
    art, adj = lx.func["art"], lx.stems.get(np.adj)
    if np.num:
        return [numeral("ar", np.num), lx.stems[np.noun] + lx.func["plural"]] + ([adj] if adj else [])
    return [art + lx.stems[np.noun]] + ([art + adj] if adj else [])


def ar_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    words = ([lx.func["neg"]] if c.neg else []) + [lx.func["verb"] + lx.stems[c.pred]]
    words += ar_np(lx, c.subj)
    if c.obj:
        words += ar_np(lx, c.obj)
    if c.loc:
        words += [lx.func["prep"]] + ar_np(lx, NP(c.loc))
    return words


RU_CASES = {("nom", False): "", ("acc", False): "у", ("loc", False): "е", ("nom", True): "ы", ("acc", True): "ов"}


def ru_np(lx: Lexicon, np: NP, case: str) -> list[str]:
    words = [numeral("ru", np.num)] if np.num else []
    if np.adj:
        words.append(lx.stems[np.adj] + "ой")
    return words + [lx.stems[np.noun] + RU_CASES[case, bool(np.num)]]


def ru_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    words = ru_np(lx, c.subj, "nom")
    if c.loc:
        words += ru_np(lx, NP(c.loc), "loc")
    if c.obj:
        words += ru_np(lx, c.obj, "acc")
    return words + ([lx.func["neg"]] if c.neg else []) + [lx.stems[c.pred] + "ит"]


def de_np(lx: Lexicon, np: NP) -> list[str]:
    adj = [lx.stems[np.adj] + "e"] if np.adj else []
    if np.num:
        return [numeral("de", np.num)] + adj + [lx.stems[np.noun] + "en"]
    return [lx.func["art"]] + adj + [lx.stems[np.noun]]


def de_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    state = _kind(c.pred) == "s"
    subj = de_np(lx, c.subj)
    verb = [lx.func["cop"] if state else lx.stems[c.pred] + "t"]
    middle = (de_np(lx, c.obj) if c.obj else []) + ([lx.func["neg"]] if c.neg else [])
    loc = [lx.func["prep"]] + de_np(lx, NP(c.loc)) if c.loc else []
    pred = [lx.stems[c.pred]] if state else []
    if mode == "because":  # subordinate clause: verb last
        return subj + middle + loc + pred + verb
    if mode == "so":  # the connector takes the first slot: verb second
        return verb + subj + middle + loc + pred
    if loc:  # main clause with a fronted location: verb second
        return loc + verb + subj + middle + pred
    return subj + verb + middle + pred


# Noun class -> (singular prefix, plural prefix, subject agreement prefix).
SW_CLASSES = {
    "person": ("mu", "wa", "a"),
    "animal": ("n", "zi", "i"),
    "thing": ("ki", "vi", "ki"),
    "food": ("ji", "ma", "li"),
    "place": ("pa", "pa", "pa"),
    "weather": ("u", "u", "u"),
}


def _sw_class(noun: str) -> tuple[str, str, str]:
    return SW_CLASSES["food" if "food" in TAGS[noun] else CATEGORY[noun]]


def sw_np(lx: Lexicon, np: NP) -> list[str]:
    sg, pl, _ = _sw_class(np.noun)
    prefix = pl if np.num else sg
    words = [prefix + lx.stems[np.noun]] + ([prefix + lx.stems[np.adj]] if np.adj else [])
    return words + ([numeral("sw", np.num)] if np.num else [])


def sw_clause(lx: Lexicon, c: Clause, mode: str) -> list[str]:
    agr = _sw_class(c.subj.noun)[2]
    verb = (lx.func["neg"] if c.neg else "") + agr + lx.stems[c.pred]
    words = sw_np(lx, c.subj) + [verb]
    if c.obj:
        words += sw_np(lx, c.obj)
    if c.loc:
        words.append(_sw_class(c.loc)[0] + lx.stems[c.loc] + lx.func["loc"])
    return words


GRAMMARS = {
    "en": en_clause,
    "zh": zh_clause,
    "es": es_clause,
    "ar": ar_clause,
    "ru": ru_clause,
    "de": de_clause,
    "sw": sw_clause,
}
