"""Write the testbed corpus: training text, parallel evaluation text, tasks.

    python3 -m mlsweep.testbed.generator.corpus --out DIR [--seed 0] [--only-eval]

Layout under DIR:
  train/<lang>.txt                   one document per line, counts by share
  text/<lang>/{calib,valid,test}.jsonl  {"id", "text"}, parallel across languages
  parallel/{dev,devtest}/<lang>.txt  FLORES-like, line i parallel across languages
  tasks/xcopa/<lang>.jsonl           HF xcopa schema, parallel
  tasks/xnli/<lang>.jsonl            HF xnli schema, parallel
  manifest.json                      seed, counts, shares, sha256 per file

Training documents of each language come from their own random meanings
(seeded per language), as in real monolingual corpora. The text splits are
parallel documents of the same distribution, taken from the stories whose
first sentence falls in a fixed tenth of sentence meanings (`meaning.bucket`
0), which training never uses; training also drops any document whose text
hash is an evaluation document's. Tasks and parallel sentences start from held-out clauses (see
`meaning.held_out`). Everything is deterministic in the seed: files are
UTF-8 with "\\n" newlines and JSON with sorted keys. The evaluation files do
not depend on whether the training split is written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

from mlsweep.testbed.languages import CODES, LANGUAGES, SHARES

from .meaning import bucket, doc_key
from .render import clause, document, sentence
from .story import story
from .tasks import parallel_sentences, xcopa, xnli

TRAIN_DOCS = 60_000
TEXT_SPLITS = {"calib": 400, "valid": 100, "test": 200}
PARALLEL_SPLITS = {"dev": 500, "devtest": 300}
XCOPA_ITEMS, XNLI_ITEMS = 200, 300
EVAL_BUCKET = 0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Writer:
    """Writes files under a root and records their sha256 for the manifest."""

    def __init__(self, root: Path):
        self.root, self.files = root, {}

    def lines(self, rel: str, lines: list[str]) -> None:
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[rel] = sha256(data)

    def jsonl(self, rel: str, objects: list[dict]) -> None:
        self.lines(rel, [json.dumps(o, ensure_ascii=False, sort_keys=True) for o in objects])


def train_counts(scale: float = 1.0) -> dict[str, int]:
    """Training documents per language: proportional to the share, at least 1."""
    return {code: max(1, round(TRAIN_DOCS * scale * share)) for code, share in SHARES.items()}


def eval_documents(seed: int) -> dict[str, list]:
    """Parallel documents of the text splits, drawn from the evaluation bucket
    and deduplicated by meaning and by text in every language."""
    rng = random.Random(f"mlsweep-testbed-{seed}-text")
    seen_keys, seen_text = set(), {code: set() for code in CODES}
    splits = {}
    for split, n in TEXT_SPLITS.items():
        docs = []
        while len(docs) < n:
            doc = story(rng, lambda first: bucket(first) == EVAL_BUCKET)
            if doc is None or doc_key(doc) in seen_keys:
                continue
            texts = {code: document(code, doc) for code in CODES}
            if any(texts[code] in seen_text[code] for code in CODES):
                continue
            seen_keys.add(doc_key(doc))
            for code in CODES:
                seen_text[code].add(texts[code])
            docs.append(doc)
        splits[split] = docs
    return splits


def train_documents(code: str, n: int, seed: int, exclude: set[str]) -> list[str]:
    """n training documents of one language; `exclude` holds the sha256 of
    texts that must not occur (the evaluation documents)."""
    rng = random.Random(f"mlsweep-testbed-{seed}-train-{code}")
    out = []
    while len(out) < n:
        doc = story(rng, lambda first: bucket(first) != EVAL_BUCKET)
        if doc is None:
            continue
        text = document(code, doc)
        if sha256(text.encode("utf-8")) not in exclude:
            out.append(text)
    return out


def _xcopa_rows(code: str, items: list[dict]) -> list[dict]:
    end = LANGUAGES[code].end
    return [{**item, **{k: clause(code, item[k]) + end for k in ("premise", "choice1", "choice2")}} for item in items]


def _xnli_rows(code: str, items: list[dict]) -> list[dict]:
    return [
        {"premise": clause(code, it["premise"]), "hypothesis": clause(code, it["hypothesis"]), "label": it["label"]}
        for it in items
    ]


def write_eval(w: Writer, seed: int, counts: dict) -> dict[str, set[str]]:
    """All evaluation files; returns the sha256 set of eval documents per language."""
    hashes = {code: set() for code in CODES}
    for split, docs in eval_documents(seed).items():
        counts[split] = {}
        for code in CODES:
            texts = [document(code, d) for d in docs]
            hashes[code].update(sha256(t.encode("utf-8")) for t in texts)
            w.jsonl(f"text/{code}/{split}.jsonl", [{"id": f"{split}-{i}", "text": t} for i, t in enumerate(texts)])
            counts[split][code] = len(texts)
    rng, seen = random.Random(f"mlsweep-testbed-{seed}-parallel"), set()
    for split, n in PARALLEL_SPLITS.items():
        sents = parallel_sentences(rng, n, seen)
        for code in CODES:
            w.lines(f"parallel/{split}/{code}.txt", [sentence(code, s) for s in sents])
        counts[split] = {code: n for code in CODES}
    items = xcopa(random.Random(f"mlsweep-testbed-{seed}-xcopa"), XCOPA_ITEMS)
    nli = xnli(random.Random(f"mlsweep-testbed-{seed}-xnli"), XNLI_ITEMS)
    for code in CODES:
        w.jsonl(f"tasks/xcopa/{code}.jsonl", _xcopa_rows(code, items))
        w.jsonl(f"tasks/xnli/{code}.jsonl", _xnli_rows(code, nli))
    counts["xcopa"] = {code: len(items) for code in CODES}
    counts["xnli"] = {code: len(nli) for code in CODES}
    return hashes


def build(out_dir: Path, seed: int = 0, train_tokens_scale: float = 1.0, only_eval: bool = False) -> dict:
    """Write the corpus under out_dir and return the manifest (also written)."""
    out_dir = Path(out_dir)
    w, counts = Writer(out_dir), {}
    eval_hashes = write_eval(w, seed, counts)
    if not only_eval:
        counts["train"] = {}
        for code, n in train_counts(train_tokens_scale).items():
            w.lines(f"train/{code}.txt", train_documents(code, n, seed, eval_hashes[code]))
            counts["train"][code] = n
    manifest = {
        "seed": seed,
        "train_tokens_scale": train_tokens_scale,
        "languages": list(CODES),
        "shares": dict(SHARES),
        "counts": counts,
        "sha256": dict(sorted(w.files.items())),
    }
    text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    (out_dir / "manifest.json").write_bytes(text.encode("utf-8"))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m mlsweep.testbed.generator.corpus", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-eval", action="store_true", help="skip the (large) training split")
    ap.add_argument("--scale", type=float, default=1.0, help="training documents x this factor")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    manifest = build(args.out, args.seed, args.scale, args.only_eval)
    print(f"wrote {len(manifest['sha256'])} files to {args.out} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
