"""Hypotheses for check sentences: entailed, neutral or contradicting a premise.

The corpus teaches these relations in `P, right? Yes/Also/No, H.` sentences
and the XNLI-like task probes exactly them, so both come from here:

- yes (entailment): P restated more generally: an adjective or the location
  dropped, or a noun replaced by its category ("the dog" -> "the animal").
- no (contradiction): P negated, or an attribute, location, number or state
  replaced by a conflicting one ("big" -> "small", "full" -> "hungry").
- also (neutral): a further fact about P's subject with another predicate,
  which is neither a restatement nor a known effect of P.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Optional

from .concepts import ANTONYMS, CATEGORY, DIMENSIONS, NUMBERS, PREDICATES, TAGS, loc_places
from .meaning import NP, Clause, dimension_of, preds_for, random_loc, random_object
from .rules import matching

RELATIONS = ("yes", "also", "no")  # XNLI label order: 0, 1, 2


def _category_np(np: NP) -> Optional[NP]:
    if np.num or CATEGORY[np.noun] == "weather" or CATEGORY[np.noun] == np.noun:
        return None
    adj = np.adj if np.adj and dimension_of(np.adj, np.noun) else None
    return NP(CATEGORY[np.noun], adj)


def entail(rng: random.Random, p: Clause) -> Optional[Clause]:
    options = []
    if p.subj.adj:
        options.append(replace(p, subj=replace(p.subj, adj=None)))
    if p.obj is not None and p.obj.adj:
        options.append(replace(p, obj=replace(p.obj, adj=None)))
    if p.loc:
        options.append(replace(p, loc=None))
    general = _category_np(p.subj)
    if general:
        options.append(replace(p, subj=general))
    general = _category_np(p.obj) if p.obj is not None else None
    if general:
        options.append(replace(p, obj=general))
    return rng.choice(options) if options else None


def _other_adj(rng: random.Random, np: NP) -> Optional[NP]:
    dim = dimension_of(np.adj, np.noun) if np.adj else None
    if dim is None:
        return None
    return replace(np, adj=rng.choice([a for a in DIMENSIONS[dim] if a != np.adj]))


def contradict(rng: random.Random, p: Clause) -> Clause:
    options = [replace(p, neg=not p.neg)]
    other = _other_adj(rng, p.subj)
    if other:
        options.append(replace(p, subj=other))
    other = _other_adj(rng, p.obj) if p.obj is not None else None
    if other:
        options.append(replace(p, obj=other))
    if p.obj is not None and p.obj.num:
        num = rng.choice([k for k in NUMBERS if k != p.obj.num])
        options.append(replace(p, obj=replace(p.obj, num=num)))
    if p.loc:
        places = [x for x in loc_places(p.pred, p.subj.noun) if x != p.loc]
        options.append(replace(p, loc=rng.choice(places)))
    if p.pred in ANTONYMS and TAGS[p.subj.noun].intersection(PREDICATES[ANTONYMS[p.pred]][1]):
        options.append(replace(p, pred=ANTONYMS[p.pred]))
    return rng.choice(options)


def neutral(rng: random.Random, p: Clause, cast: tuple = ()) -> Clause:
    """Another predicate about the same subject, neither P's nor a rule effect
    of P, and without a location when P has one (two places would clash)."""
    effects = {r.effect[0] for r in matching(p)}
    banned = effects | {p.pred, ANTONYMS.get(p.pred), "be_at"}
    preds = [x for x in preds_for(p.subj.noun, "ti") if x not in banned]
    pred = rng.choice(preds)
    obj = random_object(rng, pred, p.subj.noun, cast)
    loc = None if p.loc else random_loc(rng, pred, p.subj.noun, None, 0.3)
    return Clause(pred, p.subj, obj, loc)


def hypothesis(rng: random.Random, p: Clause, relation: str, cast: tuple = ()) -> Optional[Clause]:
    if relation == "yes":
        return entail(rng, p)
    if relation == "no":
        return contradict(rng, p)
    return neutral(rng, p, cast)
