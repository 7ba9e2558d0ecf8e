"""A Table as text: terminal, Markdown, LaTeX (booktabs) and CSV.

Every format shows the same cells: mean (± sd over seeds, when a row has
more than one), the best of each column marked (terminal `*`, Markdown bold,
LaTeX \\textbf), and `failed` / `missing` where there is no number.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from mlsweep.results.tables.build import Table

SD = " ± "


def digits_for(metric: str) -> int:
    """Accuracies to 3 decimals (items in the hundreds), perplexities to 2."""
    return 3 if metric.startswith("acc") else 2


def _number(mean: float, sd: float, digits: int, with_sd: bool, pm: str = SD) -> str:
    text = f"{mean:.{digits}f}"
    return text + f"{pm}{sd:.{digits}f}" if with_sd and not math.isnan(sd) else text


def cell_texts(table: Table, with_sd: bool = True, pm: str = SD) -> pd.DataFrame:
    d = digits_for(table.metric)
    out = table.status.copy().astype(object)
    for r in table.mean.index:
        for c in table.mean.columns:
            if table.status.at[r, c] == "done":
                out.at[r, c] = _number(table.mean.at[r, c], table.sd.at[r, c], d, with_sd, pm)
    return out


def delta_texts(table: Table, ref: str) -> pd.DataFrame:
    delta = table.delta(ref)
    out = table.status.loc[delta.index].copy().astype(object)
    for r in delta.index:
        for c in delta.columns:
            if out.at[r, c] == "done":
                v = delta.at[r, c]
                out.at[r, c] = "–" if math.isnan(v) else f"{v:+.1f}%"
    return out


def _header(table: Table) -> str:
    return ", ".join(table.row_axes)


def _footer(table: Table, with_sd: bool) -> list[str]:
    seeds = int(table.n.max()) if len(table.n) else 0
    lines = [f"mean{' ± sd' if with_sd else ''} over {seeds} seeds" if seeds > 1 else ""]
    return [line for line in lines + table.notes if line]


def to_text(table: Table, with_sd: bool = True) -> str:
    """An aligned plain-text table for the terminal; * marks the best of each column."""
    texts = cell_texts(table, with_sd)
    best = table.best()
    texts = texts.astype(str) + best.map(lambda b: "*" if b else " ")  # the mark keeps numbers aligned
    head = [_header(table), *map(str, texts.columns)]
    body = [[str(r), *map(str, texts.loc[r])] for r in texts.index]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    nbase = len(table.baselines)
    for i, row in enumerate(body):
        if nbase and i == nbase:
            lines.append("  ".join("·" * w for w in widths))
        lines.append(fmt(row))
    return "\n".join(
        [f"### {table.title}", *lines, *(f"  {n}" for n in ["* best in column", *_footer(table, with_sd)])]
    )


def _markdown(texts: pd.DataFrame, corner: str) -> str:
    head = f"| {corner} | " + " | ".join(map(str, texts.columns)) + " |"
    sep = "|---" * (len(texts.columns) + 1) + "|"
    body = ["| " + str(r) + " | " + " | ".join(map(str, texts.loc[r])) + " |" for r in texts.index]
    return "\n".join([head, sep, *body])


def to_markdown(table: Table, with_sd: bool = True, deltas: list[str] = ()) -> str:
    """The table (best in bold), then one percent-change table per `deltas` reference."""
    texts = cell_texts(table, with_sd)
    texts = texts.where(~table.best(), "**" + texts.astype(str) + "**")
    parts = [f"### {table.title}", "", _markdown(texts, _header(table)), ""]
    parts += [f"*{line}*" for line in ["bold: best in column", *_footer(table, with_sd)]]
    for ref in deltas:
        parts += ["", f"Δ % vs {ref}:", "", delta_markdown(table, ref)]
    return "\n".join(parts) + "\n"


def delta_markdown(table: Table, ref: str) -> str:
    """The percent change of each row against `ref` ('dense', or 'calib=en') as a Markdown table."""
    return _markdown(delta_texts(table, ref), _header(table))


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table: Table, with_sd: bool = True) -> str:
    """A booktabs table: label column left, numbers right, best in bold, sd as a small ±."""
    d = digits_for(table.metric)
    best = table.best()
    ncols = len(table.mean.columns)
    align = "l" + "r" * ncols  # booktabs: no vertical rules
    seeds = r". Mean $\pm$ sd over seeds" if with_sd and len(table.n) and table.n.max() > 1 else ""
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(table.title)}{seeds}. Best in column in bold.}}",
        rf"\label{{tab:{table.stem.replace('_', '-')}}}",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join([latex_escape(_header(table)), *(latex_escape(c) for c in table.mean.columns)]) + r" \\",
        r"\midrule",
    ]
    nbase = len(table.baselines)
    for i, r in enumerate(table.mean.index):
        if nbase and i == nbase:
            lines.append(r"\midrule")
        cells = [latex_escape(r)]
        for c in table.mean.columns:
            status = table.status.at[r, c]
            if status != "done":
                cells.append(rf"\textit{{{status}}}")
                continue
            text = f"{table.mean.at[r, c]:.{d}f}"
            if best.at[r, c]:
                text = rf"\textbf{{{text}}}"
            sd = table.sd.at[r, c]
            if with_sd and not math.isnan(sd):
                text += rf"{{\scriptsize$\pm${sd:.{d}f}}}"
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_csv(table: Table, out_dir: Path, deltas: list[str] = ()) -> list[Path]:
    """<stem>.csv (mean, or the status text), <stem>_sd.csv, <stem>_delta_<ref>.csv."""
    stem = out_dir / table.stem
    paths = [stem.with_name(f"{table.stem}.csv"), stem.with_name(f"{table.stem}_sd.csv")]
    table.cells("mean").to_csv(paths[0], index_label=_header(table))
    table.cells("sd").to_csv(paths[1], index_label=_header(table))
    for ref in deltas:
        path = stem.with_name(f"{table.stem}_delta_{ref.replace('=', '-')}.csv")
        table.delta(ref).to_csv(path, index_label=_header(table))
        paths.append(path)
    return paths
