"""Mask overlap between cells that differ only in calibration, and the diagonal of a perplexity matrix.

Both read finished cells from disk (result.json, masks.npz); nothing is loaded or pruned here.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mlsweep.prune.maskfile import MASK_FILE, load_masks
from mlsweep.results.cellfolder import RESULT_FILE
from mlsweep.results.row import AXES, SEED_AXES

# What two cells must share for their masks to be compared: everything but calibration and evaluation.
SAME = tuple(
    a
    for a in AXES + SEED_AXES
    if a not in ("experiment", "calib", "calib_languages", "calib_source", "eval_suite", "seed")
)


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
        rows.append(
            {
                "eval": lang,
                "own": own,
                "best_other": others[best_calib],
                "best_other_calib": best_calib,
                "margin": others[best_calib] / own - 1,
                "own_is_best": own < others[best_calib],
                "own_sd": own_sd,
            }
        )
    return pd.DataFrame(rows).set_index("eval")


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def mask_overlap(folders: list[Path]) -> pd.DataFrame:
    """Jaccard overlap per block and overall for cells that differ only in calibration."""
    cells = []
    for path in sorted(p for f in folders for p in Path(f).rglob(MASK_FILE)):
        row = json.loads((path.parent / RESULT_FILE).read_text())
        cells.append((row, load_masks(path)))
    out = []
    for (ra, ma), (rb, mb) in itertools.combinations(cells, 2):
        if any(ra.get(k) != rb.get(k) for k in SAME) or ra["calib"] == rb["calib"]:
            continue
        rec = {k: ra.get(k) for k in SAME} | {"calib_a": ra["calib"], "calib_b": rb["calib"]}
        blocks = sorted({int(k.split(".")[0]) for k in ma})
        for i in blocks:
            names = [k for k in ma if k.startswith(f"{i}.")]
            rec[f"block{i}"] = jaccard(np.concatenate([ma[k] for k in names]), np.concatenate([mb[k] for k in names]))
        rec["overall"] = jaccard(np.concatenate(list(ma.values())), np.concatenate(list(mb.values())))
        out.append(rec)
    return pd.DataFrame(out)
