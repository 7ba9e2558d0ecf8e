"""Language mixes: how a calibration budget of `nsamples` is split over languages.

Counts use largest-remainder rounding so they always sum to nsamples.
"""
from __future__ import annotations

import math
from typing import Callable


def largest_remainder(nsamples: int, weights: dict[str, float], minimum: int = 0) -> dict[str, int]:
    """Integer counts proportional to `weights`, summing to nsamples, each >= minimum.

    Ties in the remainders go to the language listed first, so the result
    does not depend on anything but the input order.
    """
    langs = list(weights)
    if nsamples < minimum * len(langs):
        raise ValueError(f"calib.nsamples={nsamples}: too small for {len(langs)} languages "
                         f"with at least {minimum} sample(s) each")
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"calib.weights={weights}: weights must be non-negative and not all zero")
    free = nsamples - minimum * len(langs)
    exact = {l: free * weights[l] / total for l in langs}
    counts = {l: minimum + math.floor(exact[l]) for l in langs}
    left = nsamples - sum(counts.values())
    # remainders rounded so float noise (64 * 0.1 = 6.4000000000000004) cannot break a tie
    order = sorted(langs, key=lambda l: (-round(exact[l] - math.floor(exact[l]), 9), langs.index(l)))
    for l in order[:left]:
        counts[l] += 1
    return counts


def uniform(nsamples: int, languages: list[str], family: str = "") -> dict[str, int]:
    """The same number of windows per language (remainder to the first listed)."""
    return largest_remainder(nsamples, {l: 1.0 for l in languages})


def at_least(nsamples: int, weights: dict[str, float], minimum: int = 1) -> dict[str, int]:
    """n_l ~ nsamples * w_l / sum(w), but never below `minimum` (the MBS rule).

    Languages whose proportional count falls below the minimum get exactly the
    minimum; the rest of the budget is split over the others in proportion,
    by largest remainder (repeated until no language falls below).
    """
    if nsamples < minimum * len(weights):
        raise ValueError(f"calib.nsamples={nsamples}: too small for {len(weights)} languages "
                         f"with at least {minimum} sample(s) each")
    fixed: dict[str, int] = {}
    free = list(weights)
    while True:
        budget = nsamples - sum(fixed.values())
        total = sum(weights[l] for l in free)
        low = [l for l in free if total <= 0 or budget * weights[l] / total < minimum]
        if not low:
            break
        fixed.update({l: minimum for l in low})
        free = [l for l in free if l not in low]
        if not free:
            break
    rest = largest_remainder(nsamples - sum(fixed.values()), {l: weights[l] for l in free}) if free else {}
    return {l: fixed.get(l, rest.get(l, 0)) for l in weights}


def proportional(nsamples: int, languages: list[str], family: str = "") -> dict[str, int]:
    """MBS (Zeng et al. 2024): counts proportional to the model's training-language shares.

    Shares are renormalised over `languages`; every language gets at least one
    window, as in MBS (`at_least`).
    """
    from mlsweep.data.languages import normalize

    table = training_shares(family)

    def share_key(lang: str) -> str | None:  # deu, deu_Latn and de name the same share
        try:
            return normalize(lang, extra=tuple(table))
        except ValueError:
            return None

    keys = {l: share_key(l) for l in languages}
    missing = [l for l, k in keys.items() if k not in table]
    if missing:
        raise ValueError(f"calib.languages: no training share recorded for {missing} in model family "
                         f"{family!r}; known: {', '.join(table)}")
    return at_least(nsamples, {l: table[keys[l]] for l in languages})


def weighted(nsamples: int, languages: list[str], family: str = "", weights=None) -> dict[str, int]:
    """Explicit weights (calib.weights={en: 0.5, sw: 0.5}), largest remainder, no minimum."""
    return largest_remainder(nsamples, {l: float(weights[l]) for l in languages})


MIXES: dict[str, Callable[..., dict[str, int]]] = {"uniform": uniform, "proportional": proportional,
                                                  "weights": weighted}


# What to use instead of `proportional` when a family has no shares (`++`: calib.weights is a typed
# dict that Hydra will not extend with new keys through a plain override).
ALTERNATIVES = ("use calib=uniform, or a weight for each of calib.languages: "
                "calib.mix=weights '++calib.weights={en: 0.6, sw: 0.4}'")


def training_shares(family: str) -> dict[str, float]:
    """Training-language distribution of a model family (model.family)."""
    from mlsweep.data.shares import SHARES, UNPUBLISHED

    if family in SHARES:
        return SHARES[family]
    known = ", ".join(sorted(SHARES))
    if family in UNPUBLISHED:
        raise ValueError(f"calib.mix=proportional: the training-language shares of model.family={family!r} "
                         f"are not published ({UNPUBLISHED[family]}); shares are recorded for: {known}; "
                         f"{ALTERNATIVES}")
    raise ValueError(f"model.family={family!r}: no training-language shares recorded; known families: "
                     f"{known}; {ALTERNATIVES}")


def sample_counts(mix: str, nsamples: int, languages: list[str], family: str = "",
                  weights: dict[str, float] | None = None) -> dict[str, int]:
    """Windows per language. `target` is resolved by the cell (one language at a time) before this."""
    if mix not in MIXES:
        raise ValueError(f"calib.mix={mix!r} is unknown; available: {', '.join(sorted(MIXES) + ['target'])}")
    if nsamples <= 0:
        raise ValueError(f"calib.nsamples={nsamples}: must be a positive integer")
    if mix == "weights":
        if not weights:
            raise ValueError("calib.weights: mix 'weights' needs weights per language, e.g. {en: 0.5, sw: 0.5}")
        bad = [l for l in languages if l not in weights]
        if bad:
            raise ValueError(f"calib.weights: no weight for {bad}")
        return weighted(nsamples, languages, family, weights)
    return MIXES[mix](nsamples, languages, family)
