"""GPU readiness check: real cells on CUDA in bf16, measured beside `mlsweep plan`'s estimates.

Why: the cost plan (mlsweep/sweep/costs.py) sizes GPU memory and time from
formulas and constants (THROUGHPUT, LOAD_RATE, STARTUP, the 1.2 overhead) that
only a GPU can check. This script runs, on one CUDA device in bfloat16, the
same cell entrypoint a sweep runs (mlsweep.cell.app.run_config) on

- a tiny random Llama (2 blocks, hidden 64) and
- a ~1.2B random Llama-3-shaped model (Llama-3.2-1B's config.json shape:
  hidden 2048, MLP 8192, 16 blocks, 32/8 heads, vocabulary 128256), built from
  a LlamaConfig with random weights and saved to a temporary folder with the
  testbed's tokenizer,

each with Wanda and SparseGPT, pruned in memory, offloaded (engine.offload_blocks),
streamed (engine.stream_from_disk) and evaluated spread over GPU 0 and the CPU
(model.device_map=auto with a GPU budget of half the weights), on the offline
testbed's text (perplexity in 7 languages, 8 windows each, plus 50 items of
testbed_xcopa_en through lm-eval). For every cell it prints the measured peak
GPU memory (torch.cuda.max_memory_allocated, reset before each cell) and
seconds per stage beside the plan's estimate (cell_cost) as ratios
measured/estimated. Without CUDA it says so and exits 0.

    make gpu-check                                 # on a GPU node, with a CUDA build of torch installed
    python bench/gpu_check.py --tiny               # the tiny model only
    python bench/gpu_check.py --device cpu --tiny  # the same code on CPU (a test runs this)

Exit status 1 if any cell failed; the rows are written under --out (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRUNERS = ("wanda", "sparsegpt")
MODES = {  # engine/model overrides of each way of holding the model
    "memory": [],
    "offload": ["engine.offload_blocks=true"],
    "stream": ["engine.stream_from_disk=true"],
    "spread": ["model.device_map=auto"],  # + a max_memory budget, set per model and device
}
SHAPES = {
    "tiny": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "llama3-1b": dict(  # Llama-3.2-1B's shape (mlsweep/conf/model/llama3_2_1b.yaml), random weights
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
}
WORK = ("calib", "prune", "place", "eval")
SEQLEN = {"tiny": 128, "llama3-1b": 512}
NSAMPLES = {"tiny": 16, "llama3-1b": 32}


def build(shape: str, folder: Path, dtype: str) -> Path:
    """A random-weight Llama of `shape` with the testbed's tokenizer, saved to `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mlsweep import PACKAGE_DIR
    from mlsweep.modeling import DTYPES

    testbed = PACKAGE_DIR / "testbed" / "model"
    kwargs = {"vocab_size": 2048, "max_position_embeddings": 2048, **SHAPES[shape]}
    config = LlamaConfig(bos_token_id=0, eos_token_id=1, pad_token_id=2, **kwargs)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(DTYPES[dtype])
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(testbed / name, folder / name)
    return folder


def weights_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*.safetensors"))


def overrides(shape: str, folder: Path, pruner: str, mode: str, device: str, dtype: str) -> list[str]:
    out = [
        f"model.path={folder}",
        f"model.name={shape}",
        f"model.dtype={dtype}",
        f"model.device={device}",
        f"model.seqlen={SEQLEN[shape]}",
        "model.attn_implementation=sdpa",
        f"pruner={pruner}",
        "calib=uniform",
        f"calib.nsamples={NSAMPLES[shape]}",
        "eval=testbed",
        "eval.max_windows=8",
        "eval.tasks=[testbed_xcopa_en]",
        "eval.limit=50",
        "eval.truncate_long=true",
        *MODES[mode],
    ]
    if mode == "spread":  # half the weights on the first device, the rest on the CPU (or disk, for a CPU run)
        half = weights_bytes(folder) // 2
        out.append(
            f"model.max_memory={{0:{half},cpu:{100 * 2**30}}}"
            if device == "cuda"
            else f"model.max_memory={{cpu:{half * 8 // 5}}}"
        )
    return out


def run_one(cfg_overrides: list[str], out_dir: Path) -> tuple[dict, object]:
    """(the cell's row, the plan's estimate for it)."""
    import torch
    from hydra import compose, initialize_config_dir

    from mlsweep import CONF_DIR
    from mlsweep.cell.app import run_config
    from mlsweep.config.spec import CellSpec
    from mlsweep.sweep.plan import planned_cost

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=cfg_overrides)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    row = run_config(cfg, out_dir)
    return row, planned_cost(CellSpec.from_config(cfg), {})


from mlsweep.sweep.costs import LOAD_RATE, STARTUP  # noqa: E402 (after the checkout is on sys.path)


def ratio(measured, estimated) -> str:
    return f"{measured / estimated:.2f}" if measured and estimated else "-"


def report(results: list[tuple[str, str, str, dict, object]], device: str, weight_bytes: int) -> int:
    print(
        f"\n{'model':<10} {'pruner':<9} {'mode':<7} {'status':<6} {'peak GB':>8} {'plan GB':>8} {'ratio':>6} "
        f"{'secs':>7} {'plan s':>8} {'ratio':>6}  stages (s)"
    )
    failed = 0
    for shape, pruner, mode, row, cost in results:
        failed += row["status"] != "done"
        peak = row.get("peak_gpu_mb", 0) / 1024 if device == "cuda" else 0.0
        secs = sum(row.get(f"time/{k}_s", 0.0) for k in WORK)  # the stages the plan's FLOPs cover
        plan = cost.hours * 3600 - STARTUP - cost.params_b * 1e9 * weight_bytes / LOAD_RATE
        stages = " ".join(f"{k[5:-2]}={v:.1f}" for k, v in row.items() if k.startswith("time/") and k != "time/total_s")
        print(
            f"{shape:<10} {pruner:<9} {mode:<7} {row['status']:<6} {peak:>8.2f} {cost.gpu_mem_gb:>8.2f} "
            f"{ratio(peak, cost.gpu_mem_gb):>6} {secs:>7.1f} {plan:>8.3g} {ratio(secs, plan):>6}  {stages}"
        )
        if row["status"] != "done":
            print(f"    {row['error']}")
    print(
        f"\n{len(results)} cells, {failed} failed; ratios are measured / estimated (mlsweep/sweep/costs.py); work s: "
        "calib + prune + place + eval, against the plan's FLOP time (its STARTUP and weight loading left out)"
        + ("" if device == "cuda" else "; no GPU memory on a CPU run")
    )
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--tiny", action="store_true", help="the tiny model only")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--pruners", default=",".join(PRUNERS), help=f"comma-separated, of {', '.join(PRUNERS)}")
    ap.add_argument("--out", type=Path, default=None, help="where the cells write (default: a temporary folder)")
    args = ap.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run it on a GPU node, or --device cpu --tiny)")
        return 0
    root = Path(tempfile.mkdtemp(prefix="gpu_check-")) if args.out is None else args.out
    results = []
    try:
        for shape in ("tiny",) if args.tiny else ("tiny", "llama3-1b"):
            t0 = time.perf_counter()
            folder = build(shape, root / "models" / shape, args.dtype)
            took = time.perf_counter() - t0
            print(f"[gpu_check] built {shape} ({weights_bytes(folder) / 2**30:.2f} GiB) in {took:.1f}s")
            for pruner in args.pruners.split(","):
                for mode in MODES:
                    cell = overrides(shape, folder, pruner, mode, args.device, args.dtype)
                    row, cost = run_one(cell, root / "cells" / f"{shape}-{pruner}-{mode}")
                    results.append((shape, pruner, mode, row, cost))
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    from mlsweep.modeling import DTYPES

    return report(results, args.device, DTYPES[args.dtype].itemsize)


if __name__ == "__main__":
    sys.exit(main())
