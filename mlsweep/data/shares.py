"""Training-language shares per model family, for proportional (MBS) calibration mixes.

Fractions need not sum to one: a mix renormalises over its own languages.
"""
from __future__ import annotations

from mlsweep.testbed.languages import SHARES as TESTBED_SHARES

# BLOOM (ROOTS corpus), the 20 languages of MBS, as the shares implied by MBS's own calibration
# counts for 256 segments (Zeng et al. 2024, bloom-7b1_MBS.sh; METHODS.md section 9): the exact
# ROOTS percentages they used are not verified. Languages at 1/256 are those MBS raised to its minimum.
_MBS_COUNTS = {"en": 87, "zh": 47, "fr": 37, "es": 31, "pt": 14, "ar": 13, "vi": 7, "hi": 4, "id": 3, "bn": 3,
               "ta": 1, "te": 1, "ur": 1, "ne": 1, "mr": 1, "gu": 1, "zh-Hant": 1, "sw": 1, "yo": 1, "ig": 1}

SHARES: dict[str, dict[str, float]] = {
    # The testbed model's own training mix (mlsweep/testbed/model/README.md).
    "testbed": dict(TESTBED_SHARES),
    "bloom": {lang: n / 256 for lang, n in _MBS_COUNTS.items()},
}
