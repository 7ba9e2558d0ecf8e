"""`python -m mlsweep.data.download DATASET [--config C] [--split S]`: fill the HF cache.

Run on a machine with network; offline runs (HF_DATASETS_OFFLINE=1) then read
the cache. The error of an offline run that lacks a dataset prints this command.
"""

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--config", default=None)
    ap.add_argument("--split", default=None)
    args = ap.parse_args()
    import datasets  # noqa: PLC0415 (heavy (pyarrow): only when a hub dataset is read)

    ds = datasets.load_dataset(args.dataset, args.config, split=args.split)
    print(f"cached {args.dataset} {args.config or ''} {args.split or ''}: {ds}")


if __name__ == "__main__":
    main()
