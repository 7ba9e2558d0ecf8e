"""Paper tables from the results store and a table spec.

A table is one combination of the spec's `tables_by` axes and one metric:
its rows are the values of the `rows` axes (baseline rows on top), its
columns the metric's `<metric>/<x>` keys plus any average columns. Cells that
differ only in a seed (`calib_seed`, `seed`) are one table cell: mean and sd
(ddof 1) over them. Nothing is dropped silently: a cell with a failed run
reads `failed`, and so does a value a cell computed as NaN or infinity; a
value no row holds, a row the other tables of its family have, or a baseline
with no cell reads `missing`; a metric no cell holds is named on stderr, and a
column with no done value is named under its table. An axis the spec does not
name that still varies inside one table row (two calibration language sets
under one `calib` name, say) is never averaged over: its values go into the
row label. Cells are seeds of one table cell only when their configs are equal
but for the seeds (the store's `definition`): cells of one model name but
different `model.path`s get a table each (the path's last part in the title),
and any other difference no axis shows goes into the row label.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

import pandas as pd

from mlsweep.results.row import AXES, SEED_AXES
from mlsweep.results.tables.spec import TableSpec, spec_label

NOT_APPLICABLE = {"-", ""}  # what a row holds for an axis its cell ignores (dense has no calibration)
# Store columns (mlsweep.results.store.definition_columns) that tell cells apart beyond the axes.
MODEL_PATH, DEFINITION = "model_path", "definition"


def axis_str(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class Table:
    metric: str
    key: dict[str, Any]  # tables_by axis -> value
    row_axes: list[str]
    mean: pd.DataFrame  # (rows, columns) float; NaN where status is not done
    sd: pd.DataFrame  # sd over seeds, NaN with one seed
    n: pd.Series  # cells (seeds) averaged per row
    status: pd.DataFrame  # done | failed | missing
    baselines: dict[str, str]  # raw baseline name ('dense') -> its row label
    row_values: dict[str, dict[str, str]]  # row label -> {axis: value}, non-baseline rows
    higher_is_better: bool
    average_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    experiment: str = ""
    members: dict[str, list] = field(default_factory=dict)  # row label -> the frame's indices of its cells

    @property
    def title(self) -> str:
        head = f"{self.experiment}, {self.metric}:" if self.experiment else f"{self.metric}:"
        return " ".join([head] + [f"{a}={axis_str(v)}" for a, v in self.key.items()])

    @property
    def stem(self) -> str:
        parts = [f"s{axis_str(v)}" if a == "sparsity_target" else axis_str(v) for a, v in self.key.items()]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join([self.metric, *parts]).replace(":", "of"))

    @property
    def body(self) -> list[str]:
        return [r for r in self.mean.index if r not in self.baselines.values()]

    def done(self) -> pd.DataFrame:
        return self.mean.where(self.status == "done")

    def best(self) -> pd.DataFrame:
        """True where a non-baseline row is the best of its column (lowest, or highest for accuracy)."""
        body = self.done().loc[self.body]
        target = body.max() if self.higher_is_better else body.min()
        out = pd.DataFrame(False, index=self.mean.index, columns=self.mean.columns)
        out.loc[self.body] = body.eq(target) & body.notna()
        return out

    def has_reference(self, ref: str) -> bool:
        """Whether the table holds the row a delta against `ref` compares with."""
        if ref in self.baselines:
            return True
        axis, value = ref.split("=", 1)
        return any(v.get(axis) == value for v in self.row_values.values())

    def delta(self, ref: str) -> pd.DataFrame:
        """Percent change of each non-baseline row against `ref`: a baseline ('dense'), or 'axis=value'
        (the row equal to this one except that axis, e.g. calib=en: the English-calibrated row)."""
        values = self.done()
        out = pd.DataFrame(math.nan, index=self.body, columns=self.mean.columns)
        for label in self.body:
            other = self.reference_row(label, ref)
            if other is not None:
                out.loc[label] = (values.loc[label] / values.loc[other] - 1) * 100
        return out

    def reference_row(self, label: str, ref: str):
        """The row a body row is compared with for `ref` (a baseline, or axis=value), or None."""
        if ref in self.baselines:
            return self.baselines[ref]
        axis, value = ref.split("=", 1)
        want = {**self.row_values[label], axis: value}
        return next((r for r, v in self.row_values.items() if v == want), None)

    def cells(self, stat: str = "mean") -> pd.DataFrame:
        """Floats where done, else the status text ('failed', 'missing'): one object per cell."""
        values = self.mean if stat == "mean" else self.sd
        return values.astype(object).where(self.status == "done", self.status)


def nonfinite_keys(df: pd.DataFrame) -> pd.Series:
    """Per row, the set of keys the cell computed as NaN or infinity (the store's `nonfinite`)."""
    if "nonfinite" not in df.columns:
        return pd.Series([frozenset()] * len(df), index=df.index, dtype=object)
    return df["nonfinite"].map(lambda v: frozenset(json.loads(v)) if isinstance(v, str) else frozenset())


def metric_columns(df: pd.DataFrame, metric: str, columns: str | list[str]) -> list[str]:
    """The metric's `<metric>/<x>` suffixes some cell computed (a NaN it computed counts: it shows as failed)."""
    bad = set().union(*nonfinite_keys(df))
    found = [c.split("/", 1)[1] for c in df.columns if c.startswith(f"{metric}/") and (df[c].notna().any() or c in bad)]
    if columns == "eval_language":
        return found
    return list(columns) if found else []


def _say_no_table(df: pd.DataFrame, metric: str) -> None:
    """A metric of the spec that no cell holds gets no table; stderr says so, with the cells' statuses."""
    counts = df["status"].fillna("missing").value_counts().to_dict()
    print(
        f"[tables] {metric}: no cell holds a value ({', '.join(f'{n} {s}' for s, n in counts.items())}); no table",
        file=sys.stderr,
    )


def short_paths(paths: pd.Series) -> pd.Series:
    """Each model.path as its last part (what a table shows), or whole where two paths share a last part."""
    names = {p: PurePath(str(p).rstrip("/")).name or str(p) for p in paths.dropna().unique()}
    taken = list(names.values())
    return paths.map(lambda p: names[p] if p in names and taken.count(names[p]) == 1 else p)


def _sort_key(axis: str, value: str, spec: TableSpec, columns: list[str]) -> tuple:
    """Spec order first; then languages in column order (the diagonal runs top-left to bottom-right);
    then numbers by value; then the rest by name."""
    order = spec.order.get(axis, [])
    if value in order:
        return (0, order.index(value), 0.0, value)
    if value in columns:
        return (1, columns.index(value), 0.0, value)
    try:
        return (2, 0, float(value), value)
    except ValueError:
        return (3, 0, 0.0, value)


def _sorted_keys(keys: list[tuple], axes: list[str], spec: TableSpec, columns: list[str]) -> list[tuple]:
    return sorted(set(keys), key=lambda k: [_sort_key(a, v, spec, columns) for a, v in zip(axes, k)])


def _aggregate(
    df: pd.DataFrame, values: pd.DataFrame, bad: pd.DataFrame, index: pd.Index
) -> tuple[list, list, list, int]:
    """(mean, sd, status, n) of one table row over its cells; a failed cell fails the row, and a value
    a done cell computed as NaN or infinity (`bad`) fails its column."""
    cols = list(values.columns)
    status = df.loc[index, "status"] if len(index) else pd.Series(dtype=object)
    if status.eq("failed").any():
        return [math.nan] * len(cols), [math.nan] * len(cols), ["failed"] * len(cols), 0
    done = status.index[status.eq("done")]
    if not len(done):
        return [math.nan] * len(cols), [math.nan] * len(cols), ["missing"] * len(cols), 0
    v = values.loc[done]
    mean, sd = v.mean(skipna=False), (v.std(ddof=1) if len(v) > 1 else pd.Series(math.nan, index=cols))
    state = ["failed" if bad.loc[done, c].any() else "missing" if v[c].isna().any() else "done" for c in cols]
    return list(mean), list(sd), state, len(done)


def _cell_values(df: pd.DataFrame, metric: str, cols: list[str], spec: TableSpec) -> tuple[pd.DataFrame, ...]:
    """(values, bad): each cell's value per column (averages too), and where the cell computed NaN or inf."""
    values = df.reindex(columns=[f"{metric}/{c}" for c in cols]).apply(pd.to_numeric, errors="coerce")
    values.columns = cols
    keys = nonfinite_keys(df)
    bad = pd.DataFrame({c: keys.map(lambda k, c=c: f"{metric}/{c}" in k) for c in cols}, index=df.index, dtype=bool)
    for avg in spec.average:  # per cell, then over seeds: its sd is the sd of the seeds' averages
        members = [c for c in cols if c not in avg.exclude]
        values[avg.label] = values[members].mean(axis=1, skipna=False)
        bad[avg.label] = bad[members].any(axis=1)
    return values, bad


def _families(keys: list[tuple], rows_of: dict[tuple, set]) -> dict[tuple, set]:
    """Expected rows per table: the union over tables that share a row with it, transitively
    (a Wanda table missing a calibration row shows it as missing; magnitude's lone row '-' stays apart)."""
    expected = {k: set(rows_of[k]) for k in keys}
    changed = True
    while changed:
        changed = False
        for a in keys:
            for b in keys:
                if expected[a] & expected[b] and not expected[b] <= expected[a]:
                    expected[a] |= expected[b]
                    changed = True
    return expected


def build_tables(df: pd.DataFrame, spec: TableSpec) -> list[Table]:
    """Every table of the spec: for each metric the rows hold, one per `tables_by` combination."""
    named = spec.rows + spec.tables_by + [a for b in spec.baselines for a in b]
    missing = [a for a in dict.fromkeys(named + ["status"]) if a not in df.columns]
    if missing:
        raise ValueError(
            f"table spec names {missing}, not columns of the results "
            f"(axes there: {[a for a in AXES + SEED_AXES if a in df.columns]})"
        )
    df = df.reset_index(drop=True)
    if MODEL_PATH in df.columns:
        df[MODEL_PATH] = short_paths(df[MODEL_PATH])
    axes = [a for a in dict.fromkeys(list(AXES) + named + [MODEL_PATH, DEFINITION]) if a in df.columns]
    ax = df[axes].map(axis_str)
    is_base = pd.Series(False, index=df.index)
    for flt in spec.baselines:
        is_base |= pd.concat([ax[a] == v for a, v in flt.items()], axis=1).all(axis=1)
    spec, extras = _separate(ax, df.index[~is_base], spec, axes)
    out = []
    for metric in spec.metrics:
        cols = metric_columns(df, metric, spec.columns)
        if cols:
            out += _metric_tables(df, ax, is_base, extras, spec, metric, cols)
        else:
            _say_no_table(df, metric)
    return out


def _varies(ax: pd.DataFrame, cells: pd.Index, group: list[str], axis: str) -> bool:
    """Whether `axis` takes more than one value among the cells of one (table, row) group."""
    return bool(len(cells)) and ax.loc[cells].groupby(group)[axis].nunique().max() > 1


def _separate(ax: pd.DataFrame, cells: pd.Index, spec: TableSpec, axes: list[str]) -> tuple[TableSpec, list[str]]:
    """(spec, extras): what keeps cells that are not seeds of each other out of one mean.

    Cells of one model name from different model paths get a table each (their
    dense rows differ too); an axis the spec does not name that varies inside a
    table row, and then any config difference no axis shows (`definition`),
    goes into the row label.
    """
    group = spec.tables_by + spec.rows
    if MODEL_PATH in ax and MODEL_PATH not in group and _varies(ax, cells, group, MODEL_PATH):
        spec = replace(spec, tables_by=spec.tables_by + [MODEL_PATH])
        group = spec.tables_by + spec.rows
        print("[tables] model_path varies under one model name: one table per path", file=sys.stderr)
    skip = set(group) | set(SEED_AXES) | {MODEL_PATH, DEFINITION}
    extras = [a for a in axes if a not in skip and _varies(ax, cells, group, a)]
    if DEFINITION in ax and _varies(ax, cells, group + extras, DEFINITION):
        extras.append(DEFINITION)
    if extras:  # e.g. two sweeps of different code versions in one folder, or an axis the spec forgot
        print(
            f"[tables] {', '.join(extras)} vary inside table rows: shown in the row labels, never averaged "
            "(name them in the spec's rows or tables_by, or load one sweep)",
            file=sys.stderr,
        )
    return spec, extras


def _row_label(spec: TableSpec, rows: list[str], extras: list[str], key: tuple) -> str:
    label = spec.row_label(rows, list(key[: len(rows)]))
    more = [v if a == "calib_languages" else f"{a}={v}" for a, v in zip(extras, key[len(rows) :])]
    more = [f"config {m.split('=', 1)[1]}" if m.startswith(f"{DEFINITION}=") else m for m in more]
    return f"{label} [{', '.join(more)}]" if more else label


def _baseline_index(
    ax: pd.DataFrame, is_base: pd.Series, cells: pd.Index, flt: dict, spec: TableSpec, table_key: tuple
) -> pd.Index:
    """Baseline cells for one table: they match the filter and every table axis where they hold a value
    the other cells also take (dense's sparsity 0 and calibration '-' fit every table)."""
    mask = is_base & pd.concat([ax[a] == v for a, v in flt.items()], axis=1).all(axis=1)
    for a, v in zip(spec.tables_by, table_key):
        if a in flt:
            continue
        off_grid = ax[a].isin(NOT_APPLICABLE) | ~ax[a].isin(set(ax.loc[cells, a]))
        mask &= (ax[a] == v) | off_grid
    return ax.index[mask]


def _seed_notes(n: pd.Series) -> list[str]:
    """Rows averaged over fewer seeds than the others (a seed's cell never ran): said under the table."""
    short = n[(n > 0) & (n < n.max())]
    if not len(short):
        return []
    return ["fewer seeds than the other rows: " + ", ".join(f"{r} ({k} of {n.max()})" for r, k in short.items())]


def _empty_columns(status: pd.DataFrame) -> list[str]:
    """Columns with no done value in any row (every cell failed, or computed NaN): said under the table."""
    empty = [c for c in status.columns if not status[c].eq("done").any()]
    return [f"no done value in {', '.join(map(str, empty))} (failed or missing in every row)"] if empty else []


def _metric_tables(df, ax, is_base, extras, spec: TableSpec, metric: str, cols: list[str]) -> list[Table]:
    values, bad = _cell_values(df, metric, cols, spec)
    cells = df.index[~is_base]
    row_axes = spec.rows + extras
    by_table = {}
    for idx in cells:
        tkey = tuple(ax.at[idx, a] for a in spec.tables_by)
        by_table.setdefault(tkey, {}).setdefault(tuple(ax.at[idx, a] for a in row_axes), []).append(idx)
    keys = _sorted_keys(list(by_table), spec.tables_by, spec, cols)
    expected = _families(keys, {k: set(v) for k, v in by_table.items()})
    tables = []
    for tkey in keys:
        rows, meta, baselines, notes = {}, {}, {}, []  # label -> (mean, sd, status, n); label -> axes
        members = {}
        for flt in spec.baselines:
            label = spec.baseline_label(flt)
            baselines[spec_label(flt)] = label
            members[label] = list(_baseline_index(ax, is_base, cells, flt, spec, tkey))
            rows[label] = _aggregate(df, values, bad, pd.Index(members[label]))
        for rkey in _sorted_keys(list(expected[tkey]), row_axes, spec, cols):
            label = _row_label(spec, spec.rows, extras, rkey)
            members[label] = list(by_table[tkey].get(rkey, []))
            rows[label] = _aggregate(df, values, bad, pd.Index(members[label]))
            meta[label] = dict(zip(row_axes, rkey))
        index, columns = list(rows), list(values.columns)
        n = pd.Series([r[3] for r in rows.values()], index=index)
        status = pd.DataFrame([r[2] for r in rows.values()], index=index, columns=columns)
        notes += _seed_notes(n[list(meta)]) + _empty_columns(status)
        tables.append(
            Table(
                metric=metric,
                key={a: df.at[by_table[tkey][next(iter(by_table[tkey]))][0], a] for a in spec.tables_by},
                row_axes=row_axes,
                mean=pd.DataFrame([r[0] for r in rows.values()], index=index, columns=columns),
                sd=pd.DataFrame([r[1] for r in rows.values()], index=index, columns=columns),
                n=n,
                status=status,
                baselines=baselines,
                row_values=meta,
                higher_is_better=spec.higher_is_better(metric),
                average_columns=[a.label for a in spec.average],
                notes=notes,
                experiment=axis_str(df.at[0, "experiment"])
                if "experiment" in df and df["experiment"].nunique() == 1
                else "",
                members=members,
            )
        )
    return tables
