"""The causal rules: a fixed cause -> effect table shared by every language.

Rules feed the causal sentences of the corpus (`A, so B.` / `B because A.`)
and the XCOPA-like task, so the model can only solve the task if it has
learned the same world knowledge in each language. A rule has typed
variables; a template is (predicate, subject var, object var, location var).
Variables bind to distinct nouns. Several rules chain (tired -> sleeps), but
no clause matches the cause of two rules with different effects, which keeps
every XCOPA item unambiguous.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

from .concepts import TAGS, nouns_with
from .meaning import NP, Clause, random_adj


@dataclass(frozen=True)
class Rule:
    name: str
    variables: tuple  # ((var, constraint tags), ...) in binding order
    cause: tuple  # (pred, subj var, obj var or None, loc var or None)
    effect: tuple


# name | variables (var=tag,tag) | cause | effect. A template is
# "pred subject [object] [@location]", all variables.
TABLE = """
drop_break        | A=person O=fragile                  | drop A O        | break O
eat_full          | A=animate O=food                    | eat A O         | full A
work_tired        | A=person L=field,market,school,kitchen | work A @L    | tired A
rain_wet          | W=rain L=outdoor                    | fall W @L       | wet L
sun_melt          | W=sun I=ice L=outdoor               | shine W @L      | melt I @L
wind_apple        | W=wind O=apple L=garden,field,forest | blow W @L      | fall O @L
snow_cold         | W=snow L=outdoor                    | fall W @L       | cold L
wash_clean        | A=person O=washable                 | wash A O        | clean O
fall_wet          | A=animate L=water                   | fall A @L       | wet A
swim_cold         | A=animate L=water                   | swim A @L       | cold A
lose_sad          | A=person O=key,letter,ball,book     | lose A O        | sad A
find_happy        | A=person O=key,letter,ball,book     | find A O        | happy A
light_burn        | A=person O=candle                   | light A O       | burn O
window_cold       | A=person O=window L=indoor          | open A O @L     | cold L
door_quiet        | A=person O=door L=indoor            | close A O @L    | quiet L
box_key           | A=person O=box K=key                | open A O        | find A K
bite_cry          | A=dog,cat,horse,goat,mouse B=person | bite A B        | cry B
chase_run         | A=dog,cat B=cat,bird,mouse,goat     | chase A B       | run B
feed_happy        | A=person B=animal                   | feed A B        | happy B
sing_laugh        | A=person B=person                   | sing A          | laugh B
help_happy        | A=person B=person                   | help A B        | happy B
cook_warm         | A=person O=food L=kitchen           | cook A O @L     | warm L
cut_fall          | A=person O=rope X=box,bell,lamp     | cut A O         | fall X
carry_tired       | A=person O=stone,box                | carry A O       | tired A
tired_sleep       | A=animate                           | tired A         | sleep A
hungry_eat        | A=animate O=food                    | hungry A        | eat A O
cold_close        | A=person O=window                   | cold A          | close A O
sick_help         | D=doctor A=person                   | sick A          | help D A
sad_cry           | A=person                            | sad A           | cry A
happy_sing        | A=person                            | happy A         | sing A
dirty_wash        | O=washable A=person                 | dirty O         | wash A O
play_dirty        | A=animate L=garden,field,street     | play A @L       | dirty A
kick_window       | A=person O=ball,stone W=window L=indoor | kick A O @L | break W @L
window_break_cold | W=window L=indoor                   | break W @L      | cold L
read_quiet        | A=person O=book                     | read A O        | quiet A
write_read        | A=person B=person O=letter          | write A O       | read B O
sell_buy          | A=person B=person O=count           | sell A O        | buy B O
ring_come         | A=person B=student,child O=bell L=school | ring A O @L | come B @L
call_come         | A=person B=dog,cat,horse            | call A B        | come B
angry_shout       | A=person                            | angry A         | shout A
melt_wet          | I=ice,snow L=outdoor                | melt I @L       | wet L
walk_hungry       | A=animate L=forest,field,street     | walk A @L       | hungry A
run_warm          | A=animate                           | run A           | warm A
burn_warm         | O=candle L=indoor                   | burn O @L       | warm L
"""


def _template(text: str) -> tuple:
    words = text.split()
    loc = words.pop()[1:] if words[-1].startswith("@") else None
    return (words[0], words[1], words[2] if len(words) > 2 else None, loc)


def _parse(table: str) -> tuple[Rule, ...]:
    rules = []
    for line in table.strip().splitlines():
        name, variables, cause, effect = (part.strip() for part in line.split("|"))
        pairs = (v.split("=") for v in variables.split())
        rules.append(
            Rule(name, tuple((var, tuple(tags.split(","))) for var, tags in pairs), _template(cause), _template(effect))
        )
    return tuple(rules)


RULES = _parse(TABLE)
BY_NAME = {r.name: r for r in RULES}


def _fits(noun: Optional[str], tags) -> bool:
    return noun is not None and bool(TAGS[noun].intersection(tags))


def cause_matches(rule: Rule, c: Clause) -> bool:
    """Whether a clause is an instance of the rule's cause (positive, types fit)."""
    pred, s, o, loc = rule.cause
    var = dict(rule.variables)
    if c.neg or c.pred != pred or not _fits(c.subj.noun, var[s]):
        return False
    if (o is None) != (c.obj is None) or (o and not _fits(c.obj.noun, var[o])):
        return False
    return loc is None or _fits(c.loc, var[loc])


def matching(c: Clause) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if cause_matches(r, c))


def _clause(t: tuple, nps: dict) -> Clause:
    pred, s, o, loc = t
    return Clause(pred, nps[s], nps[o] if o else None, nps[loc].noun if loc else None)


def instantiate(rule: Rule, rng: random.Random, prefer=(), given=None) -> tuple[Clause, Clause]:
    """(cause, effect) of a rule; variables bind to `given` ({var: NP}), else
    to a fitting NP of `prefer` (a story's cast) with probability 0.7, else to
    a new random entity. Places carry no adjective."""
    nps = dict(given or {})
    for var, tags in rule.variables:
        if var in nps:
            continue
        used = {np.noun for np in nps.values()}
        cast = [np for np in prefer if np.noun not in used and _fits(np.noun, tags)]
        if cast and rng.random() < 0.7:
            nps[var] = rng.choice(cast)
            continue
        noun = rng.choice([n for n in nouns_with(tags) if n not in used])
        adj = None if "place" in TAGS[noun] else random_adj(rng, noun, 0.4)
        nps[var] = NP(noun, adj)
    return _clause(rule.cause, nps), _clause(rule.effect, nps)
