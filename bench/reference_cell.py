"""One grid point the way the papers' scripts run it: way (c) of bench/bench_study.py.

A fresh Python process per grid point, as a shell loop over the reference
code (locuslab/wanda `main.py`, IST-DASLab/sparsegpt `llama.py`) runs it:

- load the testbed model from its files (fp32, eager attention, as
  conf/model/testbed.yaml loads it), and build lm-eval's TaskManager over
  the project's task folder (once, for both evaluations);
- evaluate the dense model (perplexity and the lm-eval tasks), the baseline
  each point's script reports beside its pruned numbers; a dense grid point
  evaluates once;
- build the calibration set: 64 windows of 128 tokens of the calibration
  language (mlsweep's own sampler, mlsweep.data.calibration, without its
  disk cache, so the windows are the ones a cell draws);
- prune: magnitude with the reference's per-matrix threshold, Wanda and
  SparseGPT with the per-sample naive loop of bench/naive_prune.py;
- evaluate the pruned model again from scratch: a plain perplexity loop,
  one window at a time (the reference `eval_ppl`), and lm-eval's
  `simple_evaluate` with a fresh HFLM.

Of mlsweep only the data side is used (the testbed's text source, the window
sampler, the project's lm-eval task folder), so the numbers are comparable
with a cell's: perplexity over the `test` split joined with blank lines,
tokenised without special tokens, cut into floor(N / 128) windows, every
shifted position scored; accuracy of testbed_xcopa_<lang> and
testbed_xnli_<lang> (batch size 32, zero-shot, max_length 128), and their
mean per language. The result is one JSON file: the metrics, the dense
model's metrics and the seconds per stage.

    .venv/bin/python bench/reference_cell.py --pruner wanda --calib en --sparsity 0.5 --seed 0 --out row.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from naive_prune import prune_naive  # bench/ is sys.path[0] when this file runs as a script
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from mlsweep import PACKAGE_DIR
from mlsweep.data.calibration import build_calibration
from mlsweep.data.sources import SourceSpec, make_source

MODEL_DIR = PACKAGE_DIR / "testbed" / "model"
TASK_DIR = PACKAGE_DIR / "evaluate" / "tasks"  # the project's lm-eval tasks (testbed_xcopa_*, testbed_xnli_*)
SEQLEN = 128  # conf/model/testbed.yaml model.seqlen: calibration and perplexity windows (the model's context)
NSAMPLES = 64  # calib.nsamples default
CALIB_SPLIT, EVAL_SPLIT = "calib", "test"
LANGUAGES = ("en", "zh", "es", "ar", "ru", "de", "sw")  # conf/eval/testbed.yaml
TASK_FAMILIES = ("testbed_xcopa", "testbed_xnli")  # conf/eval/testbed.yaml tasks, one task per language each
EVAL_BATCH = 32  # conf/eval/testbed.yaml batch_size (lm-eval requests per forward)
PRUNERS = ("dense", "magnitude", "wanda", "sparsegpt")


def load():
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, dtype=torch.float32, attn_implementation="eager")
    return model.eval(), AutoTokenizer.from_pretrained(MODEL_DIR)


@torch.no_grad()
def eval_ppl(model, tokenizer, text: str) -> float:
    """The reference `eval_ppl`: one window at a time, mean token loss times seqlen, exp of the mean."""
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids  # (1, N)
    nwindows = ids.shape[1] // SEQLEN
    nlls = []
    for i in range(nwindows):
        window = ids[:, i * SEQLEN : (i + 1) * SEQLEN]
        logits = model(window, use_cache=False).logits
        loss = nn.CrossEntropyLoss()(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), window[:, 1:].reshape(-1))
        nlls.append(loss.float() * SEQLEN)
    return torch.exp(torch.stack(nlls).sum() / (nwindows * SEQLEN)).item()


def perplexities(model, tokenizer) -> dict[str, float]:
    source = make_source(SourceSpec(name="testbed"))
    return {
        f"ppl/{lang}": eval_ppl(model, tokenizer, "\n\n".join(source.documents(lang, EVAL_SPLIT))) for lang in LANGUAGES
    }


def tasks() -> list[tuple[str, str]]:
    return [(f"{family}_{lang}", lang) for family in TASK_FAMILIES for lang in LANGUAGES]


def accuracies(model, tokenizer, manager: TaskManager) -> dict[str, float]:
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=EVAL_BATCH, max_length=SEQLEN)
    results = simple_evaluate(model=lm, tasks=[t for t, _ in tasks()], task_manager=manager)["results"]
    out = {}
    for task, _ in tasks():
        out[f"acc/{task}"] = results[task]["acc,none"]
        out[f"acc_stderr/{task}"] = results[task]["acc_stderr,none"]
    for lang in LANGUAGES:
        out[f"acc_lang/{lang}"] = sum(out[f"acc/{t}"] for t, lg in tasks() if lg == lang) / len(TASK_FAMILIES)
    return out


def evaluate(model, tokenizer, manager: TaskManager) -> dict[str, float]:
    return {**perplexities(model, tokenizer), **accuracies(model, tokenizer, manager)}


def calibration(tokenizer, lang: str, seed: int) -> torch.Tensor:
    docs = make_source(SourceSpec(name="testbed")).documents(lang, CALIB_SPLIT)
    return build_calibration(tokenizer, {lang: docs}, {lang: NSAMPLES}, SEQLEN, seed).input_ids  # (64, 128)


def block_linears(model) -> list[nn.Linear]:
    return [m for layer in model.model.layers for m in layer.modules() if isinstance(m, nn.Linear)]


@torch.no_grad()
def prune_magnitude(model, sparsity: float) -> None:
    """The reference `prune_magnitude`: |W|, one threshold per matrix, ties at the threshold pruned."""
    for lin in block_linears(model):
        W = lin.weight.data
        metric = W.abs()
        thresh = torch.sort(metric.flatten())[0][int(W.numel() * sparsity)]
        W[metric <= thresh] = 0


def measured_sparsity(model) -> float:
    weights = [lin.weight for lin in block_linears(model)]
    return sum((w == 0).sum().item() for w in weights) / sum(w.numel() for w in weights)


class Stages:
    """Wall seconds per stage of the script."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        return out


def run(args) -> dict:
    stages = Stages()
    model, tokenizer = stages.run("load", load)
    manager = stages.run("task_index", lambda: TaskManager(include_path=str(TASK_DIR)))
    dense = stages.run("dense_eval", evaluate, model, tokenizer, manager) if args.pruner != "dense" else None
    if args.pruner in ("wanda", "sparsegpt"):
        calib = stages.run("calib", calibration, tokenizer, args.calib, args.seed)
        stages.run("prune", prune_naive, model, calib, args.pruner, args.sparsity)
    elif args.pruner == "magnitude":
        stages.run("prune", prune_magnitude, model, args.sparsity)
    metrics = stages.run("eval", evaluate, model, tokenizer, manager)
    metrics["sparsity_measured"] = measured_sparsity(model)
    point = {"pruner": args.pruner, "calib": args.calib, "sparsity": args.sparsity, "seed": args.seed}
    return {"point": point, "metrics": metrics, "dense_metrics": dense, "seconds": stages.seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pruner", choices=PRUNERS, required=True)
    ap.add_argument("--calib", default=None, help="calibration language (wanda, sparsegpt)")
    ap.add_argument("--sparsity", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0, help="calibration seed")
    ap.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    args = ap.parse_args()
    torch.manual_seed(0)  # the cell's `seed`; nothing here draws from torch's generator
    row = run(args)
    if any(not math.isfinite(v) for v in row["metrics"].values()):
        print(f"non-finite metrics: {row['metrics']}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
