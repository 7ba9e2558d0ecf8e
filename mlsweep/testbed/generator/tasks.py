"""Evaluation material: XCOPA-like and XNLI-like items, FLORES-like sentences.

All of it comes from the held-out meaning space (a premise, or a parallel
sentence's first clause, is always a clause that training never contains) and
is language-independent until rendered, so every item exists in all seven
languages. Items are drawn with balanced labels and deduplicated by meaning.

- XCOPA: premise = a rule's cause (question "effect") or effect (question
  "cause"); the correct choice is the other side of that rule, the wrong one
  the same side of a different rule with a different effect predicate,
  bound to an entity of the premise where one fits ("the farmer drops the
  glass" -> "the glass breaks" vs "the farmer is full").
- XNLI: premise P and hypothesis H of a check sentence; labels 0 entailment
  (Yes), 1 neutral (Also), 2 contradiction (No).
"""

from __future__ import annotations

import random
from typing import Optional

from .concepts import TAGS
from .meaning import NP, Clause, Sentence, clause_key, held_out, sentence_key
from .relations import RELATIONS
from .rules import RULES, Rule, instantiate, matching
from .story import Cast, causal, check, draw, plain

MAX_TRIES = 200


def balanced(rng: random.Random, n: int, values: tuple) -> list:
    """n values, as equal in count as n allows, in random order."""
    out = [values[i % len(values)] for i in range(n)]
    rng.shuffle(out)
    return out


def _premise_entities(premise: Clause) -> list[NP]:
    nps = [premise.subj] + ([premise.obj] if premise.obj and not premise.obj.num else [])
    return nps + ([NP(premise.loc)] if premise.loc else [])


def _bind_to_premise(rule: Rule, side: int, premise: Clause) -> Optional[dict]:
    """{var: NP} tying a variable of the rule's cause (side 0) or effect (side 1)
    to an entity of the premise, the clause subject first, so that the wrong
    choice is about something the premise mentions."""
    template = (rule.cause, rule.effect)[side]
    tags_of = dict(rule.variables)
    for var in (v for v in template[1:] if v is not None):
        for np in _premise_entities(premise):
            if TAGS[np.noun].intersection(tags_of[var]):
                return {var: np}
    return None


def _wrong(rng: random.Random, rule: Rule, premise: Clause, correct: Clause, question: str) -> Optional[Clause]:
    side = 1 if question == "effect" else 0
    # Another rule, whose effect differs from this one's, and whose clause on
    # the chosen side repeats neither the correct choice's nor the premise's
    # predicate (so it is not a paraphrase of either).
    others = [
        r
        for r in RULES
        if r.effect[0] != rule.effect[0] and (r.cause, r.effect)[side][0] not in (correct.pred, premise.pred)
    ]
    rng.shuffle(others)
    for other in others:
        given = _bind_to_premise(other, side, premise)
        if given is None:
            continue
        wrong = instantiate(other, rng, given=given)[side]
        if wrong != correct and not _linked(premise, wrong):
            return wrong
    return None


def _linked(a: Clause, b: Clause) -> bool:
    """Whether one clause is a rule effect of the other (a backwards distractor
    such as "hungry because eats" would be causally related, not wrong)."""
    return any(r.effect[0] == b.pred for r in matching(a)) or any(r.effect[0] == a.pred for r in matching(b))


def xcopa_item(rng: random.Random, question: str) -> tuple[Clause, Clause, Clause]:
    """(premise, correct, wrong) for question 'cause' or 'effect'."""
    for _ in range(MAX_TRIES):
        rule = rng.choice(RULES)
        cause, effect = instantiate(rule, rng)
        premise, correct = (cause, effect) if question == "effect" else (effect, cause)
        if not held_out(premise):
            continue
        wrong = _wrong(rng, rule, premise, correct, question)
        if wrong is not None:
            return premise, correct, wrong
    raise RuntimeError("no XCOPA item found")


def xcopa(rng: random.Random, n: int) -> list[dict]:
    """Language-independent XCOPA items: clauses, question, label, idx."""
    combos = balanced(rng, n, (("cause", 0), ("cause", 1), ("effect", 0), ("effect", 1)))
    items, seen = [], set()
    for question, label in combos:
        while True:
            premise, correct, wrong = xcopa_item(rng, question)
            key = (question, clause_key(premise), clause_key(correct), clause_key(wrong))
            if key not in seen:
                seen.add(key)
                break
        choices = (correct, wrong) if label == 0 else (wrong, correct)
        items.append(
            {
                "premise": premise,
                "choice1": choices[0],
                "choice2": choices[1],
                "question": question,
                "label": label,
                "idx": len(items),
            }
        )
    return items


def xnli(rng: random.Random, n: int) -> list[dict]:
    """Language-independent XNLI items: premise/hypothesis clauses and label."""
    items, seen = [], set()
    for label in balanced(rng, n, (0, 1, 2)):
        relation = RELATIONS[label]
        while True:
            s = draw(lambda: check(rng, Cast(rng), relation), want_held=True)  # noqa: B023  (called here)
            key = (clause_key(s.a), clause_key(s.b))
            if key not in seen:
                seen.add(key)
                break
        items.append({"premise": s.a, "hypothesis": s.b, "label": label})
    return items


def parallel_sentences(rng: random.Random, n: int, seen: set) -> list[Sentence]:
    """FLORES-like single sentences: half narrative, 40% causal, 10% checks.
    `seen` holds sentence keys already used (shared by dev and devtest)."""
    out = []
    while len(out) < n:
        r = rng.random()
        kind = plain if r < 0.5 else causal if r < 0.9 else check
        s = draw(lambda: kind(rng, Cast(rng)), want_held=True)  # noqa: B023  (called here, in this iteration)
        key = sentence_key(s)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
