"""`python -m mlsweep.testbed.build` (make testbed): regenerate corpus, retrain, record.

1. generate the corpus (mlsweep.testbed.generator.corpus) into testbed_build/ and copy
   the small held-out parts (calib/valid/test text, parallel sentences, tasks)
   into mlsweep/testbed/data/, which is committed;
2. train the tokenizer and the model (mlsweep.testbed.generator.train);
3. measure dense perplexity per language against a unigram baseline, and the
   outlier features (mlsweep.analysis.outliers) on 8 calibration windows per language;
4. write the fp16 weights, tokenizer, testbed.json (every recorded number)
   and the model card into mlsweep/testbed/model/.
Everything is seeded; the training split itself is not committed (about 6 MB)
because it regenerates byte-identically.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from collections import Counter
from pathlib import Path

import torch

from mlsweep import PACKAGE_DIR
from mlsweep.analysis.outliers import outlier_stats
from mlsweep.data.calibration import build_calibration
from mlsweep.evaluate.perplexity import join_documents, perplexity
from mlsweep.testbed.generator import corpus, score_tasks
from mlsweep.testbed.generator.train import Recipe, build_model, held_out_loss, pack, train, train_tokenizer
from mlsweep.testbed.languages import LANGUAGES, SHARES

DATA_DIR = PACKAGE_DIR / "testbed" / "data"
MODEL_DIR = PACKAGE_DIR / "testbed" / "model"
COMMITTED = ("text", "parallel", "tasks", "manifest.json")


def copy_heldout(build_dir: Path, data_dir: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    for name in COMMITTED:
        src = build_dir / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, data_dir / name)


def read_jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def unigram_ppl(train_ids: list[int], test_ids: list[int], vocab: int) -> float:
    """Add-one unigram model from the training tokens, scored on the test tokens."""
    counts = Counter(train_ids)
    total = len(train_ids) + vocab
    nll = -sum(math.log((counts[t] + 1) / total) for t in test_ids[1:])
    return math.exp(nll / max(1, len(test_ids) - 1))


def chars_per_token(tokenizer, docs: list[str]) -> float:
    """Tokenizer fertility; per character because `zh` writes no spaces between words."""
    text = join_documents(docs)
    return round(len(text) / len(tokenizer(text, add_special_tokens=False)["input_ids"]), 3)


def measure(model, tokenizer, build_dir: Path, data_dir: Path, seqlen: int) -> dict:
    out = {}
    for lang in LANGUAGES:
        test = read_jsonl_texts(data_dir / "text" / lang / "test.jsonl")
        ids = tokenizer(join_documents(test), add_special_tokens=False)["input_ids"]
        train_text = (build_dir / "train" / f"{lang}.txt").read_text(encoding="utf-8")
        train_ids = tokenizer(train_text, add_special_tokens=False)["input_ids"]
        res = perplexity(model, torch.tensor(ids), seqlen)
        out[lang] = {
            "ppl": round(res.ppl, 4),
            "unigram_ppl": round(unigram_ppl(train_ids, ids, len(tokenizer)), 2),
            "tokens": res.tokens,
            "chars_per_token": chars_per_token(tokenizer, test),
        }
    return out


def outliers(model, tokenizer, data_dir: Path, seqlen: int) -> dict:
    """The outlier statistics on 8 windows per language of the calibration split (what the model card shows)."""
    docs = {lang: read_jsonl_texts(data_dir / "text" / lang / "calib.jsonl") for lang in LANGUAGES}
    calib = build_calibration(tokenizer, docs, {lang: 8 for lang in LANGUAGES}, seqlen, seed=0)
    return outlier_stats(model, calib.input_ids).summary()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=Path("testbed_build"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=Recipe.steps)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where the held-out data go (committed)")
    ap.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="where the model goes (committed)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = Recipe(seed=args.seed, steps=args.steps)
    tic = time.perf_counter()
    manifest = corpus.build(args.build_dir, seed=args.seed)
    copy_heldout(args.build_dir, args.data_dir)
    print(f"corpus: {time.perf_counter() - tic:.0f}s")
    train_files = [args.build_dir / "train" / f"{lang}.txt" for lang in LANGUAGES]
    tokenizer = train_tokenizer(train_files, recipe.vocab_size)
    docs = [d for f in train_files for d in f.read_text(encoding="utf-8").splitlines() if d.strip()]
    windows = pack(docs, tokenizer, recipe.seqlen, recipe.seed)
    valid_docs = [d for lang in LANGUAGES for d in read_jsonl_texts(args.data_dir / "text" / lang / "valid.jsonl")]
    valid = pack(valid_docs, tokenizer, recipe.seqlen, recipe.seed)
    print(f"train windows {tuple(windows.shape)}, valid windows {tuple(valid.shape)}")
    model = build_model(recipe, tokenizer)
    t_train = time.perf_counter()
    curve = train(model, windows, valid, recipe)
    train_s = time.perf_counter() - t_train
    results = measure(model, tokenizer, args.build_dir, args.data_dir, recipe.seqlen)
    model.half().float()  # the statistics of the weights as committed (fp16)
    outlier = outliers(model, tokenizer, args.data_dir, recipe.seqlen)
    args.model_dir.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(args.model_dir, safe_serialization=True)
    tokenizer.save_pretrained(args.model_dir)
    record = {
        "recipe": recipe.to_dict(),
        "shares": SHARES,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_windows": windows.shape[0],
        "train_seconds": round(train_s, 1),
        "valid_loss": held_out_loss(model.float(), valid),
        "curve": [{k: round(v, 4) if isinstance(v, float) else v for k, v in c.items()} for c in curve],
        "dense": results,
        "outliers": outlier,
        "corpus_manifest_sha256": {k: v for k, v in manifest.get("sha256", {}).items() if not k.startswith("train/")},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),  # the last bits of the weights depend on it
    }
    (args.model_dir / "testbed.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=1))
    score_tasks.main(args.model_dir)
    print(f"done in {time.perf_counter() - tic:.0f}s -> {args.model_dir}")


if __name__ == "__main__":
    main()
