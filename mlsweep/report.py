"""`python -m mlsweep.report <sweep folder> [...]`: the result rows as pandas tables.

Collects every result.json under the folders into one DataFrame (one row per
cell; nested config dropped, list columns kept as JSON text) and prints the
Kurz et al. matrix for each (model, pruner, sparsity): rows = calibration
language, columns = evaluation language, cells = the metric, with the dense
row on top. Failed cells appear as 'failed', never silently dropped. Tables
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


def _cell_value(row: pd.Series, col: str) -> object:
    if row.get("status") != "done":
        return "failed"
    return row.get(col, math.nan)


def matrix(df: pd.DataFrame, metric: str = "ppl") -> dict[tuple, pd.DataFrame]:
    """{(model, pruner, sparsity): rows = calib, columns = eval language}, dense row first."""
    langs = metric_languages(df, metric)
    cols = [f"{metric}/{l}" for l in langs]
    out = {}
    dense = df[df["pruner"] == "dense"]
    pruned = df[df["pruner"] != "dense"]
    for (model, pruner, sparsity), group in pruned.groupby(["model", "pruner", "sparsity_target"], sort=True):
        group = group.sort_values(["calib", "cell_id"])
        table_rows = {}
        for _, r in dense[dense["model"] == model].iterrows():
            table_rows["dense"] = [_cell_value(r, c) for c in cols]
        labels = group["calib"].astype(str)
        for (_, r), label in zip(group.iterrows(), labels):
            if (labels == label).sum() > 1:  # never let one cell hide another
                label = f"{label} #{r['cell_id']}"
            table_rows[f"calib={label}"] = [_cell_value(r, c) for c in cols]
        out[(model, pruner, sparsity)] = pd.DataFrame.from_dict(table_rows, orient="index", columns=langs)
    return out


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
    for (model, pruner, sparsity), table in matrix(df, metric).items():
        stem = f"{metric}_{model}_{pruner}_s{sparsity:g}"
        table.to_csv(out_dir / f"{stem}.csv")
        title = f"{metric}: model={model} pruner={pruner} sparsity={sparsity:g}"
        (out_dir / f"{stem}.md").write_text(f"### {title}\n\n{to_markdown(table)}\n", encoding="utf-8")
        written.append((title, table))
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="mlsweep-report", description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="sweep folders (outputs/<experiment>/<timestamp>)")
    ap.add_argument("--metric", default="ppl", help="metric prefix in the rows (default: ppl)")
    ap.add_argument("--out", type=Path, default=None, help="where tables go (default: <first folder>/report)")
    args = ap.parse_args(argv)
    df = load_rows(args.folders)
    out = args.out or args.folders[0].resolve() / "report"
    status = df["status"].value_counts().to_dict()
    print(f"{len(df)} cells: " + ", ".join(f"{n} {s}" for s, n in status.items()))
    for title, table in write_report(df, out, args.metric):
        print(f"\n### {title}\n{to_markdown(table)}")
    print(f"\ntables written to {out}")


if __name__ == "__main__":
    main()
