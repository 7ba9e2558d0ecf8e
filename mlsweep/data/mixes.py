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
    order = sorted(langs, key=lambda l: (-(exact[l] - math.floor(exact[l])), langs.index(l)))
    for l in order[:left]:
        counts[l] += 1
    return counts


def uniform(nsamples: int, languages: list[str], family: str = "") -> dict[str, int]:
    """The same number of windows per language (remainder to the first listed)."""
    return largest_remainder(nsamples, {l: 1.0 for l in languages})


def proportional(nsamples: int, languages: list[str], family: str = "") -> dict[str, int]:
    """MBS (Zeng et al. 2024): counts proportional to the model's training-language shares.

    Shares are renormalised over `languages`; every language gets at least one
    window (the MBS rule), the rest by largest remainder.
    """
    table = training_shares(family)
    missing = [l for l in languages if l not in table]
    if missing:
        raise ValueError(f"calib.languages: no training share recorded for {missing} in model family "
                         f"{family!r}; known: {', '.join(table)}")
    return largest_remainder(nsamples, {l: table[l] for l in languages}, minimum=1)


MIXES: dict[str, Callable[..., dict[str, int]]] = {"uniform": uniform, "proportional": proportional}


def training_shares(family: str) -> dict[str, float]:
    """Training-language distribution of a model family (model.family)."""
    from mlsweep.data.shares import SHARES

    if family not in SHARES:
        raise ValueError(f"model.family={family!r}: no training-language shares recorded; "
                         f"known families: {', '.join(sorted(SHARES))}")
    return SHARES[family]


def sample_counts(mix: str, nsamples: int, languages: list[str], family: str = "") -> dict[str, int]:
    if mix not in MIXES:
        raise ValueError(f"calib.mix={mix!r} is unknown; available: {', '.join(sorted(MIXES))}")
    if nsamples <= 0:
        raise ValueError(f"calib.nsamples={nsamples}: must be a positive integer")
    return MIXES[mix](nsamples, languages, family)
