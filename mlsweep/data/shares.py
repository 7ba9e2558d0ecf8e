"""Training-language shares per model family, for proportional (MBS) calibration mixes.

Fractions need not sum to one: a mix renormalises over its own languages.
"""
from __future__ import annotations

from mlsweep.testbed.languages import SHARES as TESTBED_SHARES

SHARES: dict[str, dict[str, float]] = {
    # The testbed model's own training mix (mlsweep/testbed/model/README.md).
    "testbed": dict(TESTBED_SHARES),
}
