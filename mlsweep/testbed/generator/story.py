"""Documents: short stories of 4-8 sentences about a small cast of entities.

A story has a place, one or two people and maybe an animal; objects join the
cast as sentences mention them. Sentences are narrative clauses (about half),
causal sentences from the rule table in both directions (`A, so B.` and
`B because A.`, about a third) and check sentences `P, right? Yes/Also/No, H.`
(about a fifth). Story documents never contain a held-out clause (see
`meaning.held_out`); that space is kept for the tasks and parallel sentences.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Optional

from .concepts import ANIMALS, ANTONYMS, CATEGORY_NOUNS, PERSONS, PLACES
from .meaning import NP, Clause, Document, Sentence, held_out, random_adj, random_clause
from .relations import RELATIONS, hypothesis
from .rules import RULES, instantiate

MAX_TRIES = 50
CHECK_SHARE, CAUSAL_SHARE = 0.2, 0.32


class Cast:
    """The entities of one story; each keeps its attribute across mentions."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.place = rng.choice(tuple(PLACES))
        people = rng.sample(PERSONS, rng.choice((1, 2)))
        self.members = [NP(n, random_adj(rng, n, 0.6)) for n in people]
        if rng.random() < 0.5:
            animal = rng.choice(ANIMALS)
            self.members.append(NP(animal, random_adj(rng, animal, 0.6)))
        self.facts: dict[str, set] = {}  # noun -> {(pred, neg)} asserted so far

    def mention(self, np: NP) -> NP:
        # Attributes are repeated now and then, not on every mention.
        return np if np.adj is None or self.rng.random() < 0.5 else NP(np.noun)

    def animate(self) -> list[NP]:
        return [np for np in self.members if np.noun in PERSONS or np.noun in ANIMALS]

    def consistent(self, s: Sentence) -> bool:
        """Whether a sentence's asserted clauses agree with what the story said."""
        for c in _asserted(s):
            said = self.facts.get(c.subj.noun, ())
            if (c.pred, not c.neg) in said:
                return False
            if not c.neg and (ANTONYMS.get(c.pred), False) in said:  # full, then hungry
                return False
        return True

    def add(self, s: Sentence) -> None:
        for c in _asserted(s):
            self.facts.setdefault(c.subj.noun, set()).add((c.pred, c.neg))
        known = {np.noun for np in self.members}
        for c in _asserted(s):
            for np in (c.subj, c.obj):
                # Hypernyms ("the animal") and counted plurals are not characters.
                if np is not None and not np.num and np.noun not in known and np.noun not in CATEGORY_NOUNS:
                    self.members.append(np)
                    known.add(np.noun)


def _clauses(s: Sentence) -> tuple[Clause, ...]:
    return (s.a,) if s.b is None else (s.a, s.b)


def _asserted(s: Sentence) -> tuple[Clause, ...]:
    # A check's hypothesis is not asserted: under "No" it is false, and a
    # hypernym restatement ("the animal") names no new entity.
    return (s.a,) if s.kind == "check" else _clauses(s)


def draw(
    make: Callable[[], Optional[Sentence]], want_held: bool, accept: Callable[[Sentence], bool] = lambda s: True
) -> Sentence:
    """Draw sentences until one has no held-out clause (or, for evaluation
    material, a held-out first clause) and passes `accept`."""
    for _ in range(MAX_TRIES):
        s = make()
        if s is None or not accept(s):
            continue
        if want_held and held_out(s.a):
            return s
        if not want_held and not any(held_out(c) for c in _clauses(s)):
            return s
    raise RuntimeError("no sentence found in the requested meaning space")


def plain(rng: random.Random, cast: Cast) -> Sentence:
    subj = cast.mention(rng.choice(cast.members))
    return Sentence("plain", random_clause(rng, subj, tuple(cast.members), cast.place))


def causal(rng: random.Random, cast: Cast) -> Sentence:
    cause, effect = instantiate(rng.choice(RULES), rng, [cast.mention(m) for m in cast.members])
    return Sentence(rng.choice(("so", "because")), cause, effect)


def check(rng: random.Random, cast: Cast, relation: Optional[str] = None) -> Optional[Sentence]:
    subj = cast.mention(rng.choice(cast.animate() or cast.members))
    p = random_clause(rng, subj, tuple(cast.members), cast.place)
    relation = relation or rng.choice(RELATIONS)
    h = hypothesis(rng, p, relation, tuple(cast.members))
    return None if h is None else Sentence("check", p, h, relation)


def _next(rng: random.Random, cast: Cast) -> Sentence:
    r = rng.random()
    kind = check if r < CHECK_SHARE else causal if r < CHECK_SHARE + CAUSAL_SHARE else plain
    s = draw(lambda: kind(rng, cast), want_held=False, accept=cast.consistent)
    cast.add(s)
    return s


def story(rng: random.Random, first_ok: Callable[[Sentence], bool] = lambda s: True) -> Optional[Document]:
    """A story, or None as soon as its first sentence fails `first_ok` (the
    corpus splits stories by their first sentence, so rejecting early is cheap)."""
    cast = Cast(rng)
    opener = Sentence("plain", Clause("be_at", cast.members[0], loc=cast.place))
    if rng.random() < 0.5 and not held_out(opener.a):  # an opening that sets the scene
        cast.add(opener)
    else:
        opener = _next(rng, cast)
    if not first_ok(opener):
        return None
    return (opener,) + tuple(_next(rng, cast) for _ in range(rng.randint(4, 8) - 1))
