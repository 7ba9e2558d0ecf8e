"""Which differences of a table survive a paired bootstrap over items (`mlsweep.report --significance`).

For each delta reference of a table ('dense', 'calib=en', a baseline), every
body cell gets the 95% interval of its percent change against the reference
row (mlsweep.results.bootstrap), from the items.npz its cells kept. A cell
whose interval covers 0 is marked; a cell without per-item results (rows
from before the files existed, or from W&B), or whose items do not reproduce
the table's number, gets no interval (NaN) rather than a wrong one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import pandas as pd

from mlsweep.evaluate.tasklist import task_language
from mlsweep.results.bootstrap import N_BOOT, SEED, Parts, full_sample, paired_interval
from mlsweep.results.items import Items, load_items
from mlsweep.results.tables.build import Table
from mlsweep.results.tables.spec import TableSpec

MARK = "†"


@dataclass
class Significance:
    ref: str
    low: pd.DataFrame  # (body rows, columns) percent, NaN where no interval
    high: pd.DataFrame
    n_boot: int

    def covers_zero(self) -> pd.DataFrame:
        """True where the interval exists and covers 0."""
        return (self.low <= 0) & (self.high >= 0)

    def note(self) -> str:
        return (
            f"{MARK}: the 95% paired-bootstrap interval of the difference vs {self.ref} covers 0 "
            f"({self.n_boot} resamples of items and windows)"
        )


def _leaf(metric: str, x: str, keys: set[str], languages: tuple[str, ...]) -> Optional[list[str]]:
    """The item keys behind one `<metric>/<x>` column: itself, or a language's tasks for acc_lang
    (the tasks the row's acc_lang averaged, mlsweep.evaluate.suite.language_means)."""
    if metric == "acc_lang":
        tasks = sorted(k for k in keys if k.startswith("acc/") and task_language(k[4:], languages) == x)
        return tasks or None
    return [f"{metric}/{x}"] if f"{metric}/{x}" in keys else None


def column_parts(table: Table, spec: TableSpec, column: str, keys: set[str]) -> Optional[Parts]:
    averages = {a.label: a for a in spec.average}
    languages = tuple(c for c in table.mean.columns if c not in averages)
    if column not in averages:
        leaf = _leaf(table.metric, column, keys, languages)
        return [leaf] if leaf else None
    cols = [c for c in table.mean.columns if c not in averages and c not in averages[column].exclude]
    parts = [_leaf(table.metric, c, keys, languages) for c in cols]
    return None if any(p is None for p in parts) or not parts else parts


class _Loader:
    def __init__(self, df: pd.DataFrame):
        self.df, self.cache = df, {}

    def cells(self, indices: list) -> list[Items]:
        """Items of the done cells among `indices`; [] if any of them kept none."""
        out = []
        for i in indices:
            if self.df.at[i, "status"] != "done":
                continue
            path = self.df.at[i, "path"] if "path" in self.df.columns else None
            if path not in self.cache:
                self.cache[path] = load_items(path) if isinstance(path, str) else None
            if self.cache[path] is None:
                return []
            out.append(self.cache[path])
        return out


def _reproduces(table: Table, label: str, column: str, parts: Parts, cells: list[Items]) -> bool:
    value, again = table.mean.at[label, column], full_sample(parts, cells)
    return again is not None and not math.isnan(value) and math.isclose(again, value, rel_tol=1e-6, abs_tol=1e-9)


def intervals(
    table: Table, spec: TableSpec, df: pd.DataFrame, ref: str, n_boot: int = N_BOOT, seed: int = SEED
) -> Significance:
    """The interval of each body cell's percent change against the `ref` row of its table."""
    low = pd.DataFrame(math.nan, index=table.body, columns=table.mean.columns)
    high = low.copy()
    loader = _Loader(df)
    for label in table.body:
        other = table.reference_row(label, ref)
        if other is None:
            continue
        row, base = loader.cells(table.members.get(label, [])), loader.cells(table.members.get(other, []))
        if not row or not base:
            continue
        keys = set(row[0])
        for column in table.mean.columns:
            parts = column_parts(table, spec, column, keys)
            ok = parts and all(_reproduces(table, r, column, parts, c) for r, c in ((label, row), (other, base)))
            got = paired_interval(parts, row, base, n_boot, seed) if ok else None
            if got is not None:
                low.at[label, column], high.at[label, column] = got.low, got.high
    return Significance(ref, low, high, n_boot)
