"""A Table as a heatmap PNG, coloured per column as Kurz et al. present their matrices.

Each column is normalised on its own (min to max over the non-baseline rows),
so the colour says how a row ranks for that evaluation language, from red
(worst) to green (best; lowest perplexity, highest accuracy); the values are
written in the cells, the best of each column in bold. Baseline rows (dense)
are shown above a rule, uncoloured. Failed cells are grey and hatched, missing
ones light grey and dotted. Drawn with matplotlib's Agg canvas directly (no
pyplot state, no display needed).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mlsweep.results.tables.build import Table
from mlsweep.results.tables.render import digits_for

# The middle of RdYlGn, so that black text stays readable on every cell.
_CMAP, _LO, _HI = colormaps["RdYlGn"], 0.12, 0.88
_BASELINE, _FAILED, _MISSING = "#f4f4f4", "#b0b0b0", "#e4e4e4"


def column_scores(table: Table) -> np.ndarray:
    """(rows, columns) in [0, 1], 1 = best of its column among non-baseline rows; NaN where no colour."""
    values = table.done()
    scores = np.full(values.shape, math.nan)
    body = [values.index.get_loc(r) for r in table.body]
    for j, col in enumerate(values.columns):
        v = values[col].to_numpy(dtype=float)[body]
        finite = np.isfinite(v)
        if not finite.any():
            continue
        lo, hi = v[finite].min(), v[finite].max()
        t = (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
        scores[body, j] = t if table.higher_is_better else 1 - t
    return scores


def write_heatmap(table: Table, path: Path, dpi: int = 110) -> Path:
    """The table's heatmap as a PNG at `path`."""
    rows, cols = list(table.mean.index), list(table.mean.columns)
    scores = column_scores(table)
    rgba = np.ones((len(rows), len(cols), 4))
    for i in range(len(rows)):
        for j in range(len(cols)):
            s = scores[i, j]
            if not math.isnan(s):
                rgba[i, j] = _CMAP(_LO + (_HI - _LO) * s)
    label_w = max(len(str(r)) for r in rows) * 0.075 + 0.4  # inches, for 8-pt labels
    width = max(label_w + 0.78 * len(cols) + 0.3, 4.5)
    title = textwrap.wrap(table.title, int(width / 0.075))  # 8.5-pt characters per line
    fig = Figure(figsize=(width, 0.34 * len(rows) + 0.9 + 0.16 * len(title)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(rgba, aspect="auto", interpolation="nearest")
    _draw_cells(ax, table, scores)
    _decorate(ax, table, title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def _draw_cells(ax, table: Table, scores: np.ndarray) -> None:
    """Values (best in bold), the uncoloured baseline rows, failed and missing cells."""
    rows, cols = list(table.mean.index), list(table.mean.columns)
    best, d = table.best(), digits_for(table.metric)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            status = table.status.at[r, c]
            if status == "done" and math.isnan(scores[i, j]):  # baseline row
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=_BASELINE, edgecolor="none"))
            if status != "done":
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor=_FAILED if status == "failed" else _MISSING,
                        hatch="///" if status == "failed" else "..",
                        edgecolor="white",
                        linewidth=0,
                    )
                )
                ax.text(j, i, status, ha="center", va="center", fontsize=7, style="italic", color="#303030")
                continue
            ax.text(
                j,
                i,
                f"{table.mean.at[r, c]:.{d}f}",
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold" if best.at[r, c] else "normal",
            )


def _decorate(ax, table: Table, title: list[str]) -> None:
    """Rules under the baselines and before the averages, labels on top and left, the title."""
    rows, cols = list(table.mean.index), list(table.mean.columns)
    nbase = len(table.baselines)
    if nbase:
        ax.axhline(nbase - 0.5, color="black", linewidth=1.2)
    for k, c in enumerate(cols):
        if c in table.average_columns:
            ax.axvline(k - 0.5, color="black", linewidth=1.2)
            break
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(", ".join(table.row_axes), fontsize=8)
    seeds = int(table.n.max()) if len(table.n) else 0
    sub = f"mean of {seeds} seeds; " if seeds > 1 else ""
    better = "highest" if table.higher_is_better else "lowest"
    ax.set_title("\n".join([*title, f"{sub}colour per column: green = {better}, bold = best"]), fontsize=8.5, pad=18)
