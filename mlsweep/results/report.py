"""`python -m mlsweep.report <sweep folder> [...]`: the results store and the paper tables.

Collects every result.json under the folders (or, with `--wandb entity/project
--group G`, the summaries of a W&B group's runs) into one DataFrame, one row
per cell (`mlsweep.results.store`), written as results.parquet and results.csv. Then
builds each experiment's tables from its table spec (the `report:` block of
conf/experiment/<name>.yaml; `mlsweep.results.tables.spec`): for lang_calib the Kurz
et al. matrix per (model, pruner, sparsity), rows = calibration language,
columns = evaluation language, dense row on top, cells = mean ± sd over
calibration seeds. Failed cells read 'failed' and absent ones 'missing',
never silently dropped. Each table is printed and written to <out>/ as
<table>.md, .csv (+ _sd, _delta_<ref>), .tex (booktabs) and .png (heatmap);
tables.md and tables.tex hold them all. `--significance` adds 95% paired-bootstrap
intervals over items and windows to the percent-change tables (and
_delta_<ref>_low/_high.csv) and marks † each difference whose interval covers 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mlsweep.results.store import from_wandb, load_rows, write_store
from mlsweep.results.tables import Table, build_tables, parse_spec, spec_for
from mlsweep.results.tables.heatmap import write_heatmap
from mlsweep.results.tables.render import delta_markdown, to_latex, to_markdown, to_text, write_csv
from mlsweep.results.tables.significance import intervals
from mlsweep.results.tables.spec import DEFAULT

__all__ = ["build_report", "delta_vs_dense", "load_rows", "main", "matrix"]


def matrix(df: pd.DataFrame, metric: str = "ppl", stat: str = "mean") -> dict[tuple, pd.DataFrame]:
    """{(model, pruner, sparsity): rows = calib, columns = eval language}, dense row first (the default spec).

    Cells are floats (mean over seeds, or sd with stat='sd') or 'failed' / 'missing'.
    """
    spec = parse_spec({**DEFAULT, "metric": metric})
    return {tuple(t.key.values()): t.cells(stat) for t in build_tables(df, spec)}


def delta_vs_dense(table: pd.DataFrame) -> pd.DataFrame:
    """Each row of a `matrix` table relative to its dense row, in percent."""
    if "dense" not in table.index:
        return table.iloc[0:0]
    dense = pd.to_numeric(table.loc["dense"], errors="coerce")
    rows = table.drop(index="dense").apply(pd.to_numeric, errors="coerce")
    return (rows / dense - 1) * 100


def _experiments(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "experiment" not in df.columns:
        return [("-", df)]
    return [(str(name), sub) for name, sub in df.groupby(df["experiment"].fillna("-"), sort=True)]


def build_report(
    df: pd.DataFrame,
    out: Path,
    spec: dict | None = None,
    metrics: list[str] | None = None,
    with_sd: bool = True,
    heatmaps: bool = True,
    show_delta: bool = False,
    stream=None,
    significance: bool = False,
) -> list[Table]:
    """Store, tables and heatmaps of `df` into `out`; prints every table (to stdout). Returns the tables.

    With `significance`, each delta table gets paired-bootstrap intervals from the cells' items.npz and
    a difference whose interval covers 0 is marked (mlsweep.results.tables.significance).
    """
    out, stream = Path(out), stream or sys.stdout
    write_store(df, out)
    groups = _experiments(df)
    everything, md, tex = [], [], []
    for name, sub in groups:
        table_spec = parse_spec(spec) if spec else spec_for(name, df.attrs.get("report_specs", {}).get(name))
        if metrics:
            table_spec.metrics = list(metrics)
        folder = out / name if len(groups) > 1 else out
        folder.mkdir(parents=True, exist_ok=True)
        frame = sub.reset_index(drop=True)
        for table in build_tables(frame, table_spec):
            deltas = [ref for ref in table_spec.delta if table.has_reference(ref)]
            sigs = {ref: intervals(table, table_spec, frame, ref) for ref in deltas} if significance else {}
            main = sigs.get(deltas[0]) if deltas and sigs else None
            write_csv(table, folder, deltas, sigs)
            text = to_markdown(table, with_sd, deltas, sigs)
            latex = to_latex(table, with_sd, main)
            (folder / f"{table.stem}.md").write_text(text, encoding="utf-8")
            (folder / f"{table.stem}.tex").write_text(latex, encoding="utf-8")
            if heatmaps:
                write_heatmap(table, folder / f"{table.stem}.png")
            md.append(text)
            tex.append(latex)
            print("\n" + to_text(table, with_sd, main), file=stream)
            for ref in deltas if show_delta else ():
                print(f"\nΔ % vs {ref}:\n{delta_markdown(table, ref, sigs.get(ref))}", file=stream)
            everything.append(table)
    (out / "tables.md").write_text("\n".join(md), encoding="utf-8")
    (out / "tables.tex").write_text("% needs \\usepackage{booktabs}\n" + "\n".join(tex), encoding="utf-8")
    return everything


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="mlsweep-report", description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=Path, help="sweep folders (outputs/<experiment>), searched recursively")
    ap.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read the rows from W&B instead of folders")
    ap.add_argument("--group", help="the W&B group (the experiment name) with --wandb")
    ap.add_argument("--metric", nargs="+", default=None, help="metric prefixes to tabulate (default: the spec's)")
    ap.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="a YAML table spec (a report: block or its keys) instead of the experiment's",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where tables go (default: <first folder>/report, or outputs/<group>/report)",
    )
    ap.add_argument("--no-sd", action="store_true", help="means only, without ± sd over seeds")
    ap.add_argument("--no-heatmap", action="store_true", help="skip the PNG heatmaps")
    ap.add_argument("--delta", action="store_true", help="also print the spec's percent-change tables")
    ap.add_argument(
        "--significance",
        action="store_true",
        help="95%% paired-bootstrap intervals on the percent-change tables (from each cell's items.npz); "
        "differences whose interval covers 0 are marked †",
    )
    args = ap.parse_args(argv)
    if args.wandb:
        if not args.group:
            ap.error("--wandb needs --group")
        df = from_wandb(args.wandb, args.group)
        out = args.out or Path("outputs") / args.group / "report"
    elif args.folders:
        df = load_rows(args.folders)
        out = args.out or args.folders[0].resolve() / "report"
    else:
        ap.error("give sweep folders, or --wandb ENTITY/PROJECT --group GROUP")
    spec = None
    if args.spec:
        import yaml  # noqa: PLC0415 (only with --spec)

        block = yaml.safe_load(args.spec.read_text(encoding="utf-8")) or {}
        spec = block.get("report", block)
    status = df["status"].value_counts().to_dict()
    print(f"{len(df)} cells: " + ", ".join(f"{n} {s}" for s, n in status.items()))
    tables = build_report(
        df, out, spec, args.metric, not args.no_sd, not args.no_heatmap, args.delta, significance=args.significance
    )
    kinds = ".md .csv .tex" + ("" if args.no_heatmap else " .png")
    print(
        f"\n{len(tables)} tables ({kinds} each; all in tables.md, tables.tex) and results.parquet/.csv written to {out}"
    )


if __name__ == "__main__":
    main()
