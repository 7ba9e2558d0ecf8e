"""Analyses of finished sweeps and of calibration data, as pandas tables (and CSV).

    python -m mlsweep.analysis masks <sweep folder>            # Kurz et al.'s mask comparison
    python -m mlsweep.analysis similarity [--model PATH] [...]  # MBS's language similarity

`masks` needs cells run with `runtime.save_masks=true` (bit-packed masks.npz
in the cell folder); it compares every pair of cells that differ only in the
calibration language: Jaccard overlap of the pruned sets per block and overall.
`similarity` computes, per language, Wanda's statistic of the input to block 0
from calibration windows and the cosine between languages.
`diagonal` summarises a perplexity matrix (own-language calibration vs others).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

MASK_FILE = "masks.npz"


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


def save_masks(model, path: Path) -> None:
    """Bit-packed masks (True = pruned) of every block linear: ~1/32 of fp32 weights on disk."""
    from mlsweep.prune.arch import find_blocks, find_linears

    arrays = {}
    for i, block in enumerate(find_blocks(model)):
        for name, lin in find_linears(block).items():
            zero = (lin.weight == 0).cpu().numpy()
            arrays[f"{i}.{name}"] = np.packbits(zero.reshape(-1))
            arrays[f"{i}.{name}.shape"] = np.array(zero.shape)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_masks(path: Path) -> dict[str, np.ndarray]:
    data = np.load(path)
    out = {}
    for key in data.files:
        if not key.endswith(".shape"):
            shape = tuple(data[f"{key}.shape"])
            out[key] = np.unpackbits(data[key])[: int(np.prod(shape))].astype(bool)
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


_SAME = ("model", "pruner", "pruner_params", "sparsity_target", "sparsity_pattern", "sparsity_allocation",
         "calib_seed", "nsamples")


def mask_overlap(folders: list[Path]) -> pd.DataFrame:
    """Jaccard overlap per block and overall for cells that differ only in calibration."""
    cells = []
    for path in sorted(p for f in folders for p in Path(f).rglob(MASK_FILE)):
        row = json.loads((path.parent / "result.json").read_text())
        cells.append((row, load_masks(path)))
    out = []
    for (ra, ma), (rb, mb) in itertools.combinations(cells, 2):
        if any(ra.get(k) != rb.get(k) for k in _SAME) or ra["calib"] == rb["calib"]:
            continue
        rec = {k: ra.get(k) for k in _SAME} | {"calib_a": ra["calib"], "calib_b": rb["calib"]}
        blocks = sorted({int(k.split(".")[0]) for k in ma})
        for i in blocks:
            names = [k for k in ma if k.startswith(f"{i}.")]
            rec[f"block{i}"] = jaccard(np.concatenate([ma[k] for k in names]), np.concatenate([mb[k] for k in names]))
        rec["overall"] = jaccard(np.concatenate(list(ma.values())), np.concatenate(list(mb.values())))
        out.append(rec)
    return pd.DataFrame(out)


def language_similarity(norms: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Cosine between languages' block-0 input statistics (MBS's similarity)."""
    langs = list(norms)
    v = torch.stack([norms[l].double() for l in langs])
    v = v / v.norm(dim=1, keepdim=True)
    return pd.DataFrame((v @ v.t()).numpy(), index=langs, columns=langs)


def similarity(model_path: str, source_name: str, split: str, languages: list[str], nsamples: int,
               seqlen: int, seed: int) -> pd.DataFrame:
    from mlsweep.data.calibration import build_calibration
    from mlsweep.data.sources import get_source
    from mlsweep.modeling import load_model
    from mlsweep.prune import _batches
    from mlsweep.prune.loop import LoopOptions, block_input_norms

    model, tok = load_model(model_path, "float32", torch.device("cpu"))
    source = get_source(source_name)
    docs = {l: source.documents(l, split) for l in languages}
    calib = build_calibration(tok, docs, {l: nsamples for l in languages}, seqlen, seed)
    return language_similarity(block_input_norms(model, _batches(calib.input_ids, calib.languages, 8),
                                                 LoopOptions()))


def main(argv: list[str] | None = None) -> None:
    from mlsweep import PACKAGE_DIR
    from mlsweep.testbed.languages import LANGUAGES

    ap = argparse.ArgumentParser(prog="python -m mlsweep.analysis", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("masks", help="mask overlap between cells that differ in calibration language")
    m.add_argument("folders", nargs="+", type=Path)
    s = sub.add_parser("similarity", help="cosine similarity of languages' block-0 input statistics")
    s.add_argument("--model", default=str(PACKAGE_DIR / "testbed" / "model"))
    s.add_argument("--source", default="testbed")
    s.add_argument("--split", default="calib")
    s.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    s.add_argument("--nsamples", type=int, default=32)
    s.add_argument("--seqlen", type=int, default=128)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--out", type=Path, default=Path("language_similarity.csv"))
    args = ap.parse_args(argv)
    if args.what == "masks":
        table = mask_overlap(args.folders)
        out = args.folders[0] / "report" / "mask_overlap.csv"
    else:
        table = similarity(args.model, args.source, args.split, args.languages, args.nsamples, args.seqlen,
                           args.seed)
        out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    print(table.round(3).to_string())
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
