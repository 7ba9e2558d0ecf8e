"""Language mixes: how a calibration budget of `nsamples` is split over languages (`calib.mix`).

Each mix is a `MixSpec` in `MIXES`: a function (nsamples, languages, model
family, weights) -> windows per language, and whether the cell calibrates
once per evaluation language instead (`target`, the diagonal of Kurz et
al.'s matrix in one cell). Counts use largest-remainder rounding so they
always sum to nsamples. A new mix is one function and one registration here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Optional

from mlsweep.data.languages import normalize
from mlsweep.data.shares import SHARES, UNPUBLISHED
from mlsweep.registry import Registry


def largest_remainder(nsamples: int, weights: dict[str, float], minimum: int = 0) -> dict[str, int]:
    """Integer counts proportional to `weights`, summing to nsamples, each >= minimum.

    Ties in the remainders go to the language listed first, so the result
    does not depend on anything but the input order.
    """
    langs = list(weights)
    if nsamples < minimum * len(langs):
        raise ValueError(
            f"calib.nsamples={nsamples}: too small for {len(langs)} languages with at least {minimum} sample(s) each"
        )
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"calib.weights={weights}: weights must be non-negative and not all zero")
    free = nsamples - minimum * len(langs)
    exact = {lang: free * weights[lang] / total for lang in langs}
    counts = {lang: minimum + math.floor(exact[lang]) for lang in langs}
    left = nsamples - sum(counts.values())
    # remainders rounded so float noise (64 * 0.1 = 6.4000000000000004) cannot break a tie
    order = sorted(langs, key=lambda lang: (-round(exact[lang] - math.floor(exact[lang]), 9), langs.index(lang)))
    for lang in order[:left]:
        counts[lang] += 1
    return counts


def uniform(nsamples: int, languages: list[str], family: str = "", weights=None) -> dict[str, int]:
    """The same number of windows per language (remainder to the first listed)."""
    return largest_remainder(nsamples, {lang: 1.0 for lang in languages})


def at_least(nsamples: int, weights: dict[str, float], minimum: int = 1) -> dict[str, int]:
    """n_l ~ nsamples * w_l / sum(w), but never below `minimum` (the MBS rule).

    Languages whose proportional count falls below the minimum get exactly the
    minimum; the rest of the budget is split over the others in proportion,
    by largest remainder (repeated until no language falls below).
    """
    if nsamples < minimum * len(weights):
        raise ValueError(
            f"calib.nsamples={nsamples}: too small for {len(weights)} languages with at least {minimum} sample(s) each"
        )
    fixed: dict[str, int] = {}
    free = list(weights)
    while True:
        budget = nsamples - sum(fixed.values())
        total = sum(weights[lang] for lang in free)
        low = [lang for lang in free if total <= 0 or budget * weights[lang] / total < minimum]
        if not low:
            break
        fixed.update({lang: minimum for lang in low})
        free = [lang for lang in free if lang not in low]
        if not free:
            break
    rest = largest_remainder(nsamples - sum(fixed.values()), {lang: weights[lang] for lang in free}) if free else {}
    return {lang: fixed.get(lang, rest.get(lang, 0)) for lang in weights}


def proportional(nsamples: int, languages: list[str], family: str = "", weights=None) -> dict[str, int]:
    """MBS (Zeng et al. 2024): counts proportional to the model's training-language shares.

    Shares are renormalised over `languages`; every language gets at least one
    window, as in MBS (`at_least`).
    """

    table = training_shares(family)

    def share_key(lang: str) -> str | None:  # deu, deu_Latn and de name the same share
        try:
            return normalize(lang, extra=tuple(table))
        except ValueError:
            return None

    keys = {lang: share_key(lang) for lang in languages}
    missing = [lang for lang, k in keys.items() if k not in table]
    if missing:
        raise ValueError(
            f"calib.languages: no training share recorded for {missing} in model family "
            f"{family!r}; known: {', '.join(table)}"
        )
    return at_least(nsamples, {lang: table[keys[lang]] for lang in languages})


def weighted(nsamples: int, languages: list[str], family: str = "", weights=None) -> dict[str, int]:
    """Explicit weights (calib.weights={en: 0.5, sw: 0.5}), largest remainder, no minimum."""
    if not weights:
        raise ValueError("calib.weights: mix 'weights' needs weights per language, e.g. {en: 0.5, sw: 0.5}")
    bad = [lang for lang in languages if lang not in weights]
    if bad:
        raise ValueError(f"calib.weights: no weight for {bad}")
    return largest_remainder(nsamples, {lang: float(weights[lang]) for lang in languages})


@dataclass(frozen=True)
class MixSpec:
    name: str
    counts: Callable[..., dict[str, int]]  # (nsamples, languages, family, weights) -> windows per language
    per_eval_language: bool = False  # calibrate and evaluate once per evaluation language (target)


MIXES: Registry[MixSpec] = Registry("calib.mix")
MIXES.register("uniform", MixSpec("uniform", uniform))
MIXES.register("proportional", MixSpec("proportional", proportional))
MIXES.register("weights", MixSpec("weights", weighted))
# one prune per evaluation language, calibrated (all nsamples) and evaluated in it alone
MIXES.register("target", MixSpec("target", uniform, per_eval_language=True))


# What to use instead of `proportional` when a family has no shares (`++`: calib.weights is a typed
# dict that Hydra will not extend with new keys through a plain override).
ALTERNATIVES = (
    "use calib=uniform, or a weight for each of calib.languages: calib.mix=weights '++calib.weights={en: 0.6, sw: 0.4}'"
)


def training_shares(family: str) -> dict[str, float]:
    """Training-language distribution of a model family (model.family)."""

    if family in SHARES:
        return SHARES[family]
    known = ", ".join(sorted(SHARES))
    if family in UNPUBLISHED:
        raise ValueError(
            f"calib.mix=proportional: the training-language shares of model.family={family!r} "
            f"are not published ({UNPUBLISHED[family]}); shares are recorded for: {known}; "
            f"{ALTERNATIVES}"
        )
    raise ValueError(
        f"model.family={family!r}: no training-language shares recorded; known families: {known}; {ALTERNATIVES}"
    )


def sample_counts(
    mix: str, nsamples: int, languages: list[str], family: str = "", weights: Optional[Mapping[str, float]] = None
) -> dict[str, int]:
    """Windows per language of a mix (for `target`: of one evaluation language's pass)."""
    spec = MIXES.get(mix)
    if nsamples <= 0:
        raise ValueError(f"calib.nsamples={nsamples}: must be a positive integer")
    return spec.counts(nsamples, list(languages), family, dict(weights or {}))
