"""Analyses of finished sweeps, as pandas tables.

`diagonal` asks the question of Kurz et al. 2024 of a perplexity matrix: for
each evaluation language, does calibrating in that language beat calibrating
in any other single language, by how much, and is the margin larger than the
seed-to-seed spread?
"""
from __future__ import annotations

import math

import pandas as pd


def diagonal(mean: pd.DataFrame, sd: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per evaluation language that also appears as a calibration row.

    own: ppl when calibrated in the language; best_other / best_other_calib:
    the lowest ppl over the other single-language rows; margin: best_other /
    own - 1 (positive = own language best); own_sd: seed sd of `own`.
    """
    rows = []
    singles = [c for c in mean.columns if f"calib={c}" in mean.index]
    for lang in singles:
        own = float(mean.loc[f"calib={lang}", lang])
        others = {c: float(mean.loc[f"calib={c}", lang]) for c in singles if c != lang}
        best_calib = min(others, key=others.get)
        own_sd = float(sd.loc[f"calib={lang}", lang]) if sd is not None else math.nan
        rows.append({"eval": lang, "own": own, "best_other": others[best_calib], "best_other_calib": best_calib,
                     "margin": others[best_calib] / own - 1, "own_is_best": own < others[best_calib],
                     "own_sd": own_sd})
    return pd.DataFrame(rows).set_index("eval")
