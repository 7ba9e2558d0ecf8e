"""`python -m mlsweep.analysis masks|similarity|outliers`: the analyses of mlsweep.analysis on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlsweep import PACKAGE_DIR
from mlsweep.analysis.masks import mask_overlap
from mlsweep.testbed.languages import LANGUAGES


def probe_args(p: argparse.ArgumentParser, nsamples: int, seed: int, out: str) -> None:
    """The arguments of an analysis that runs a model over calibration windows (mlsweep.analysis.probe)."""
    p.add_argument("--model", default=str(PACKAGE_DIR / "testbed" / "model"))
    p.add_argument("--source", default="testbed")
    p.add_argument("--split", default="calib")
    p.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    p.add_argument("--nsamples", type=int, default=nsamples, help="windows per language")
    p.add_argument("--seqlen", type=int, default=128)
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--out", type=Path, default=Path(out))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m mlsweep.analysis", description="analyses of finished sweeps and of calibration data"
    )
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("masks", help="mask overlap between cells that differ in calibration language")
    m.add_argument("folders", nargs="+", type=Path)
    probe_args(
        sub.add_parser("similarity", help="cosine similarity of languages' block-0 input statistics"),
        nsamples=32,
        seed=1,
        out="language_similarity.csv",
    )
    probe_args(
        sub.add_parser("outliers", help="outlier features per block: max/median feature norm, OWL's outlier share"),
        nsamples=8,
        seed=0,
        out="outliers.csv",
    )
    args = ap.parse_args(argv)
    if args.what == "masks":
        table = mask_overlap(args.folders)
        out = args.folders[0] / "report" / "mask_overlap.csv"
    elif args.what == "outliers":
        from mlsweep.analysis.outliers import outlier_table  # noqa: PLC0415 (loads torch models: only when asked)

        table = outlier_table(
            args.model, args.source, args.split, args.languages, args.nsamples, args.seqlen, args.seed
        )
        out = args.out
    else:
        from mlsweep.analysis.similarity import similarity  # noqa: PLC0415 (loads torch models: only when asked)

        table = similarity(args.model, args.source, args.split, args.languages, args.nsamples, args.seqlen, args.seed)
        out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out)
    print(table.round(3).to_string())
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
