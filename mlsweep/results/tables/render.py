"""A Table as text: terminal, Markdown, LaTeX (booktabs) and CSV.

Every format shows the same cells: mean (± sd over seeds, when a row has
more than one), the best of each column marked (terminal `*`, Markdown bold,
LaTeX \\textbf), and `failed` / `missing` where there is no number. With
significance (`--significance`), a difference whose 95% paired-bootstrap
interval covers 0 is marked † (LaTeX $^\\dagger$) and the delta tables show
the intervals.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Optional

import pandas as pd

from mlsweep.results.tables.build import Table
from mlsweep.results.tables.significance import MARK, Significance

SD = " ± "


def digits_for(metric: str) -> int:
    """Accuracies to 3 decimals (items in the hundreds), perplexities to 2."""
    return 3 if metric.startswith("acc") else 2


def _number(mean: float, sd: float, digits: int, with_sd: bool, pm: str = SD) -> str:
    text = f"{mean:.{digits}f}"
    return text + f"{pm}{sd:.{digits}f}" if with_sd and not math.isnan(sd) else text


def _marked(sig: Optional[Significance], r: str, c: str) -> bool:
    """Whether the cell's difference against the significance reference has an interval covering 0."""
    return sig is not None and r in sig.low.index and bool(sig.covers_zero().at[r, c])


def cell_texts(table: Table, with_sd: bool = True, pm: str = SD, sig: Optional[Significance] = None) -> pd.DataFrame:
    d = digits_for(table.metric)
    out = table.status.copy().astype(object)
    for r in table.mean.index:
        for c in table.mean.columns:
            if table.status.at[r, c] == "done":
                text = _number(table.mean.at[r, c], table.sd.at[r, c], d, with_sd, pm)
                out.at[r, c] = text + (MARK if _marked(sig, r, c) else "")
    return out


def delta_texts(table: Table, ref: str, sig: Optional[Significance] = None) -> pd.DataFrame:
    """Percent changes; with `sig`, each followed by its 95% interval and marked where it covers 0."""
    delta = table.delta(ref)
    out = table.status.loc[delta.index].copy().astype(object)
    for r in delta.index:
        for c in delta.columns:
            if out.at[r, c] == "done":
                v = delta.at[r, c]
                out.at[r, c] = "–" if math.isnan(v) else f"{v:+.1f}%"
                if sig is not None and not math.isnan(v) and not math.isnan(sig.low.at[r, c]):
                    out.at[r, c] += f" [{sig.low.at[r, c]:+.1f}, {sig.high.at[r, c]:+.1f}]"
                    out.at[r, c] += MARK if _marked(sig, r, c) else ""
    return out


def _header(table: Table) -> str:
    return ", ".join(table.row_axes)


def _footer(table: Table, with_sd: bool, sig: Optional[Significance] = None) -> list[str]:
    seeds = int(table.n.max()) if len(table.n) else 0
    lines = [f"mean{' ± sd' if with_sd else ''} over {seeds} seeds" if seeds > 1 else ""]
    lines += [sig.note()] if sig is not None else []
    return [line for line in lines + table.notes if line]


def to_text(table: Table, with_sd: bool = True, sig: Optional[Significance] = None) -> str:
    """An aligned plain-text table for the terminal; * marks the best of each column, † (with sig) a
    difference against sig's reference whose interval covers 0."""
    texts = cell_texts(table, with_sd, sig=sig)
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
        [f"### {table.title}", *lines, *(f"  {n}" for n in ["* best in column", *_footer(table, with_sd, sig)])]
    )


def _markdown(texts: pd.DataFrame, corner: str) -> str:
    head = f"| {corner} | " + " | ".join(map(str, texts.columns)) + " |"
    sep = "|---" * (len(texts.columns) + 1) + "|"
    body = ["| " + str(r) + " | " + " | ".join(map(str, texts.loc[r])) + " |" for r in texts.index]
    return "\n".join([head, sep, *body])


def to_markdown(
    table: Table, with_sd: bool = True, deltas: list[str] = (), sigs: Optional[dict[str, Significance]] = None
) -> str:
    """The table (best in bold), then one percent-change table per `deltas` reference; `sigs` (per
    reference) adds intervals to the delta tables and marks the main table against the first one."""
    sigs = sigs or {}
    main = sigs.get(deltas[0]) if deltas else None
    texts = cell_texts(table, with_sd, sig=main)
    texts = texts.where(~table.best(), "**" + texts.astype(str) + "**")
    parts = [f"### {table.title}", "", _markdown(texts, _header(table)), ""]
    parts += [f"*{line}*" for line in ["bold: best in column", *_footer(table, with_sd, main)]]
    for ref in deltas:
        head = f"Δ % vs {ref}" + (" [95% paired-bootstrap interval]" if ref in sigs else "")
        parts += ["", f"{head}:", "", delta_markdown(table, ref, sigs.get(ref))]
        parts += ["", f"*{sigs[ref].note()}*"] if ref in sigs else []
    return "\n".join(parts) + "\n"


def delta_markdown(table: Table, ref: str, sig: Optional[Significance] = None) -> str:
    """The percent change of each row against `ref` ('dense', or 'calib=en') as a Markdown table."""
    return _markdown(delta_texts(table, ref, sig), _header(table))


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


def to_latex(table: Table, with_sd: bool = True, sig: Optional[Significance] = None) -> str:
    """A booktabs table: label column left, numbers right, best in bold, sd as a small ±; with `sig`,
    a dagger on each difference against its reference whose 95% interval covers 0."""
    d = digits_for(table.metric)
    best = table.best()
    ncols = len(table.mean.columns)
    align = "l" + "r" * ncols  # booktabs: no vertical rules
    seeds = r". Mean $\pm$ sd over seeds" if with_sd and len(table.n) and table.n.max() > 1 else ""
    dagger = (
        rf" $^\dagger$: the 95\% paired-bootstrap interval of the difference vs {latex_escape(sig.ref)} covers 0."
        if sig is not None
        else ""
    )
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{latex_escape(table.title)}{seeds}. Best in column in bold.{dagger}}}",
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
            if _marked(sig, r, c):
                text += r"$^\dagger$"
            cells.append(text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def ref_slug(ref: str) -> str:
    """A delta reference in a file name: 'calib=en' -> 'calib-en'; spaces and commas become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", ref.replace("=", "-")).strip("-")


def write_csv(
    table: Table, out_dir: Path, deltas: list[str] = (), sigs: Optional[dict[str, Significance]] = None
) -> list[Path]:
    """<stem>.csv (mean, or the status text), <stem>_sd.csv, <stem>_delta_<ref>.csv; with `sigs` also
    <stem>_delta_<ref>_low.csv and _high.csv (the 95% interval's ends, percent)."""
    stem = out_dir / table.stem
    paths = [stem.with_name(f"{table.stem}.csv"), stem.with_name(f"{table.stem}_sd.csv")]
    table.cells("mean").to_csv(paths[0], index_label=_header(table))
    table.cells("sd").to_csv(paths[1], index_label=_header(table))
    for ref in deltas:
        path = stem.with_name(f"{table.stem}_delta_{ref_slug(ref)}.csv")
        table.delta(ref).to_csv(path, index_label=_header(table))
        paths.append(path)
        if sigs and ref in sigs:
            for end in ("low", "high"):
                path = stem.with_name(f"{table.stem}_delta_{ref_slug(ref)}_{end}.csv")
                getattr(sigs[ref], end).to_csv(path, index_label=_header(table))
                paths.append(path)
    return paths
