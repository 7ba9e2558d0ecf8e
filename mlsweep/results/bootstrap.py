"""Paired bootstrap intervals for the difference between two table rows, from per-item results.

A table cell's number is recomputed on resampled items (mlsweep.results.items):
- ppl/<lang>: exp(sum nll / sum tokens) over resampled windows;
- acc/<task>: mean correctness over resampled items (aligned by doc_id);
- acc_lang/<lang> (mean over the language's tasks) and average columns (mean
  over languages): the mean of their parts, each part resampled on its own
  (a stratified bootstrap, one stratum per task or language);
- a row averaged over seeds: the mean of its cells, all on the same resample.
Paired: a row and its reference are recomputed on the same resampled items,
so what varies is which items were drawn, not the pairing. The interval is
the 2.5th and 97.5th percentile (95%) of the percent change
100 * (row / reference - 1) over B = 1000 resamples: the number the delta
tables show. Each stratum's resamples come from numpy's default_rng seeded
with (seed, crc32 of the stratum's key): deterministic, and the same draws
for every row of a table. Seed variation is not in the interval; the tables
show the seed sd beside it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mlsweep.results.items import Items

N_BOOT = 1000
SEED = 0
LEVEL = 0.95


def resample(key: str, n: int, n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """(n_boot, n) item indices drawn with replacement: the same for every row that has this stratum."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    return rng.integers(0, n, size=(n_boot, n))


def statistic(key: str, fields: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """The row value of one stratum on each resample (idx: (n_boot, n) or (n,) for the full sample)."""
    if "nll" in fields:
        return np.exp(fields["nll"][idx].sum(-1) / fields["tokens"][idx].sum(-1))
    return fields["correct"][idx].astype(np.float64).mean(-1)


def _aligned(key: str, cells: Sequence[Items]) -> Optional[int]:
    """The stratum's item count when every cell holds it with the same items, else None."""
    found = [c.get(key) for c in cells]
    if any(f is None for f in found):
        return None
    ids = [f.get("doc_id", np.arange(len(next(iter(f.values()))))) for f in found]
    return len(ids[0]) if len(ids[0]) and all(np.array_equal(ids[0], i) for i in ids[1:]) else None


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    estimate: float  # the percent change on the full sample (the delta table's number)

    @property
    def covers_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


# A table column as strata: the mean over parts of the mean over each part's strata (row keys), e.g.
# ppl/en: [["ppl/en"]]; acc_lang/en: [["acc/xcopa_en", "acc/xnli_en"]]; avg: one part per language.
Parts = Sequence[Sequence[str]]


def _value(parts: Parts, cell: Items, idx: dict) -> np.ndarray:
    return np.mean([np.mean([statistic(k, cell[k], idx[k]) for k in part], axis=0) for part in parts], axis=0)


def row_values(parts: Parts, cells: Sequence[Items], idx: dict[str, np.ndarray]) -> np.ndarray:
    """A table row on each resample: the mean over its cells (seeds) of the column's value."""
    return np.mean([_value(parts, c, idx) for c in cells], axis=0)


def paired_interval(
    parts: Parts,
    row: Sequence[Items],
    reference: Sequence[Items],
    n_boot: int = N_BOOT,
    seed: int = SEED,
    level: float = LEVEL,
) -> Optional[Interval]:
    """The interval of 100 * (row / reference - 1) for a column made of `parts`.

    `row` and `reference` are the per-item results of the cells each table row averages (seeds).
    None where a cell lacks a stratum or the cells' items differ (no pairing is possible).
    """
    strata = [k for part in parts for k in part]
    if not strata or not row or not reference:
        return None
    sizes = {k: _aligned(k, [*row, *reference]) for k in strata}
    if any(n is None for n in sizes.values()):
        return None
    idx = {k: resample(k, n, n_boot, seed) for k, n in sizes.items()}
    full = {k: np.arange(n) for k, n in sizes.items()}
    boot = 100 * (row_values(parts, row, idx) / row_values(parts, reference, idx) - 1)
    estimate = 100 * (row_values(parts, row, full) / row_values(parts, reference, full) - 1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Interval(float(low), float(high), float(estimate))


def full_sample(parts: Parts, cells: Sequence[Items]) -> Optional[float]:
    """A table row's number recomputed from its items (None where a stratum is missing): a consistency check."""
    strata = [k for part in parts for k in part]
    if not cells or not strata or any(k not in c for c in cells for k in strata):
        return None
    full = {k: slice(None) for k in strata}
    return float(row_values(parts, cells, full))
