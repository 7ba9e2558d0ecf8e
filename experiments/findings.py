"""Which of the testbed's findings survive a paired bootstrap over evaluation windows.

    python experiments/findings.py lang_calib outputs/lang_calib
    python experiments/findings.py mbs outputs/mbs
    python experiments/findings.py mwanda_readings outputs/mwanda_readings

Each finding compares two table rows on the same evaluation windows: the
95% paired-bootstrap interval of the percent change in perplexity (row vs
reference; mlsweep.results.bootstrap, 1,000 resamples, seed 0), both rows
averaged over their calibration seeds as in the tables. A finding "holds"
when the interval lies on its side of 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from mlsweep.results.bootstrap import paired_interval
from mlsweep.results.items import load_items
from mlsweep.results.store import load_rows

LANGS = ["en", "zh", "es", "ar", "ru", "de", "sw"]


def cells(df: pd.DataFrame, **axes) -> list:
    sel = df[(df["status"] == "done")]
    for axis, value in axes.items():
        sel = sel[sel[axis].astype(str) == str(value)]
    return [load_items(p) for p in sel["path"]]


def mean_ppl(df: pd.DataFrame, lang: str, **axes) -> float:
    sel = df[df["status"] == "done"]
    for axis, value in axes.items():
        sel = sel[sel[axis].astype(str) == str(value)]
    return float(sel[f"ppl/{lang}"].mean())


def line(name: str, parts, row, ref) -> str:
    """One finding, row vs ref: holds (interval below 0: lower perplexity), reversed, or not shown."""
    got = paired_interval(parts, row, ref)
    verdict = "holds" if got.high < 0 else ("reversed" if got.low > 0 else "not shown (covers 0)")
    return f"| {name} | {got.estimate:+.1f}% | [{got.low:+.1f}, {got.high:+.1f}] | {verdict} |"


def lang_calib(df: pd.DataFrame) -> list[str]:
    out = ["| finding | Δ ppl | 95% interval | |", "|---|---|---|---|"]
    for pruner in [p for p in ("wanda", "sparsegpt") if (df["pruner"] == p).any()]:
        for s in (0.5, 0.7):
            axes = dict(pruner=pruner, sparsity_target=s)
            for lang in LANGS:
                others = [c for c in LANGS if c != lang]
                best = min(others, key=lambda c: mean_ppl(df, lang, calib=c, **axes))
                own, other = cells(df, calib=lang, **axes), cells(df, calib=best, **axes)
                out.append(
                    line(f"{pruner} {s:g} {lang}: calib={lang} vs best other ({best})", [[f"ppl/{lang}"]], own, other)
                )
            magnitude = cells(df, pruner="magnitude", sparsity_target=s) if pruner == "wanda" else []
            if magnitude:  # activation-aware vs data-free, on each language
                for lang in LANGS:
                    name = f"wanda {s:g} {lang}: calib={lang} vs magnitude"
                    out.append(line(name, [[f"ppl/{lang}"]], cells(df, calib=lang, **axes), magnitude))
    return out


def mbs(df: pd.DataFrame) -> list[str]:
    out = ["| finding | Δ ppl | 95% interval | |", "|---|---|---|---|"]
    avg = [[f"ppl/{lang}"] for lang in LANGS]
    for pruner in ("wanda", "sparsegpt"):
        en, prop, uni = (cells(df, pruner=pruner, calib=c) for c in ("en", "proportional", "uniform"))
        for lang in LANGS[1:]:
            out.append(line(f"{pruner} {lang}: proportional vs en only", [[f"ppl/{lang}"]], prop, en))
        out.append(line(f"{pruner} avg: proportional vs en only", avg, prop, en))
        out.append(line(f"{pruner} avg: uniform vs proportional", avg, uni, prop))
    return out


def mwanda_readings(df: pd.DataFrame) -> list[str]:
    out = [
        "| reading vs the first reading (input, pooled_sd, uniform) | Δ avg ppl | 95% interval | |",
        "|---|---|---|---|",
    ]
    avg = [[f"ppl/{lang}"] for lang in LANGS]
    first = cells(df, pruner="mwanda", sparsity_allocation="uniform", reading="prob=input, agg=pooled_sd")
    mw = df[(df["pruner"] == "mwanda") & (df["status"] == "done")]
    for alloc, reading in sorted(set(zip(mw["sparsity_allocation"], mw["reading"]))):
        if (alloc, reading) != ("uniform", "prob=input, agg=pooled_sd"):
            row = cells(df, pruner="mwanda", sparsity_allocation=alloc, reading=reading)
            out.append(line(f"{alloc}, {reading}", avg, row, first))
    wanda = cells(df, pruner="wanda", sparsity_allocation="uniform")
    out.append(line("the first reading vs Wanda (uniform)", avg, first, wanda))
    return out


if __name__ == "__main__":
    study, folder = sys.argv[1], Path(sys.argv[2])
    print(
        "\n".join(
            {"lang_calib": lang_calib, "mbs": mbs, "mwanda_readings": mwanda_readings}[study](load_rows([folder]))
        )
    )
