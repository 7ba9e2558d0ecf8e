"""`python -m mlsweep.report <sweep folder> [...]`: the result rows as pandas tables.

Collects every result.json under the folders into one DataFrame (one row per
cell; nested config dropped, list columns kept as JSON text) and prints the
Kurz et al. matrix for each (model, pruner, sparsity): rows = calibration
language, columns = evaluation language, cells = the metric (mean over
calibration seeds; the sd goes to <table>_sd.csv, the change against the
dense row in percent to <table>_delta_pct.csv), with the dense row on top. Failed cells appear as 'failed', never silently dropped. Tables
are also written as CSV and Markdown into <folder>/report/.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Iterable

import pandas as pd

from mlsweep.results import RESULT_FILE, read_row


def load_rows(folders: Iterable[Path]) -> pd.DataFrame:
    rows = []
    for folder in folders:
        for path in sorted(Path(folder).rglob(RESULT_FILE)):
            row = read_row(path)
            row.pop("config", None)
            row = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
            row["path"] = str(path.parent)
            rows.append(row)
    if not rows:
        raise SystemExit(f"no {RESULT_FILE} found under {', '.join(map(str, folders))}")
    return pd.DataFrame(rows)


def metric_languages(df: pd.DataFrame, metric: str) -> list[str]:
    return [c.split("/", 1)[1] for c in df.columns if c.startswith(f"{metric}/")]


# Axes that split tables further when they vary: cells differing in them are never averaged together.
TABLE_EXTRA = ("sparsity_pattern", "sparsity_allocation", "eval_suite")


def _table_key(keys: list[str], values: tuple) -> tuple:
    """(model, pruner, sparsity) plus 'axis=value' for each further axis that is not its default."""
    extra = tuple(f"{k.replace('sparsity_', '')}={v}" for k, v in zip(keys[3:], values[3:])
                  if v not in ("unstructured", "uniform", "ppl"))
    return tuple(values[:3]) + extra


def _row_order(labels: list[str], langs: list[str]) -> list[str]:
    """Calibration languages in column order (the diagonal reads top-left to bottom-right), then mixes."""
    return sorted(labels, key=lambda l: (langs.index(l) if l in langs else len(langs), l))


def _aggregate(cells: pd.DataFrame, cols: list[str], stat: str) -> list[object]:
    """Mean (or sd) over the cells of one table row, i.e. over calibration seeds; 'failed' wins."""
    if (cells["status"] != "done").any():
        return ["failed"] * len(cols)
    values = cells.reindex(columns=cols).astype(float)
    if stat == "mean":
        return list(values.mean())
    return list(values.std(ddof=1)) if len(values) > 1 else [math.nan] * len(cols)


def matrix(df: pd.DataFrame, metric: str = "ppl", stat: str = "mean") -> dict[tuple, pd.DataFrame]:
    """{(model, pruner, sparsity): rows = calib, columns = eval language}, dense row first.

    Cells that differ only in calibration seed are one row (mean, or sd with
    stat='sd'); a row with any failed cell reads 'failed'.
    """
    langs = metric_languages(df, metric)
    cols = [f"{metric}/{l}" for l in langs]
    out = {}
    dense = df[df["pruner"] == "dense"]
    pruned = df[df["pruner"] != "dense"]
    keys = ["model", "pruner", "sparsity_target"] + [k for k in TABLE_EXTRA if k in df.columns]
    for key, group in pruned.groupby(keys, sort=True):
        model = key[0]
        group = group.sort_values(["calib", "calib_languages", "cell_id"])
        table_rows = {}
        model_dense = dense[dense["model"] == model]
        if len(model_dense):
            table_rows["dense"] = _aggregate(model_dense, cols, stat)
        by_calib = group.groupby(["calib", "calib_languages"], sort=False).groups
        names = [c for c, _ in by_calib]
        for calib in _row_order(list(dict.fromkeys(names)), langs):
            for (c, languages), index in by_calib.items():
                if c != calib:
                    continue
                label = calib if names.count(calib) == 1 else f"{calib} [{languages}]"
                table_rows[f"calib={label}"] = _aggregate(group.loc[index], cols, stat)
        out[_table_key(keys, key)] = pd.DataFrame.from_dict(table_rows, orient="index", columns=langs)
    return out


def delta_vs_dense(table: pd.DataFrame) -> pd.DataFrame:
    """Each row relative to the dense row of its table, in percent (the dense cell, run once, is reused)."""
    if "dense" not in table.index:
        return table.iloc[0:0]
    dense = pd.to_numeric(table.loc["dense"], errors="coerce")
    rows = table.drop(index="dense").apply(pd.to_numeric, errors="coerce")
    return (rows / dense - 1) * 100


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    def fmt(v):
        return f"{v:.{digits}f}" if isinstance(v, float) and not math.isnan(v) else ("–" if isinstance(v, float) else str(v))

    head = "| | " + " | ".join(map(str, table.columns)) + " |"
    sep = "|---" * (len(table.columns) + 1) + "|"
    body = ["| " + str(idx) + " | " + " | ".join(fmt(v) for v in row) + " |" for idx, row in table.iterrows()]
    return "\n".join([head, sep, *body])


def write_report(df: pd.DataFrame, out_dir: Path, metric: str = "ppl") -> list[tuple[str, pd.DataFrame]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "results.csv", index=False)
    written = []
    spreads = matrix(df, metric, stat="sd")
    for key, table in matrix(df, metric).items():
        model, pruner, sparsity, *extra = key
        stem = "_".join([f"{metric}_{model}_{pruner}_s{sparsity:g}", *extra]).replace("=", "-").replace(":", "of")
        table.to_csv(out_dir / f"{stem}.csv")
        spreads[key].to_csv(out_dir / f"{stem}_sd.csv")
        delta_vs_dense(table).to_csv(out_dir / f"{stem}_delta_pct.csv")
        title = " ".join([f"{metric}: model={model} pruner={pruner} sparsity={sparsity:g}", *extra])
        (out_dir / f"{stem}.md").write_text(f"### {title}\n\n{to_markdown(table)}\n", encoding="utf-8")
        written.append((title, table))
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="mlsweep-report", description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="sweep folders (outputs/<experiment>/<timestamp>)")
    ap.add_argument("--metric", nargs="+", default=None,
                    help="metric prefixes to tabulate (default: ppl, and acc_lang when the suite has tasks)")
    ap.add_argument("--out", type=Path, default=None, help="where tables go (default: <first folder>/report)")
    args = ap.parse_args(argv)
    df = load_rows(args.folders)
    out = args.out or args.folders[0].resolve() / "report"
    status = df["status"].value_counts().to_dict()
    print(f"{len(df)} cells: " + ", ".join(f"{n} {s}" for s, n in status.items()))
    metrics = args.metric or [m for m in ("ppl", "acc_lang") if metric_languages(df, m)]
    for metric in metrics:  # perplexity and accuracy side by side, one table each
        for title, table in write_report(df, out, metric):
            print(f"\n### {title}\n{to_markdown(table, 2 if metric.startswith('ppl') else 3)}")
    print(f"\ntables written to {out}")


if __name__ == "__main__":
    main()
