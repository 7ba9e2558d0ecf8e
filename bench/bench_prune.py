"""Benchmark: the pruning engine (mlsweep.prune.prune_model) against a naive reference loop.

Why: the engine batches calibration (batch_size=8) and accumulates fp32
statistics with one kernel per batch, where the reference code (locuslab/wanda
`prune_wanda`, IST-DASLab/sparsegpt `llama_sequential`) runs every block one
sample at a time and updates running means per sample. This script measures,
side by side in one run, what that buys on CPU, and checks that it does not
change the result:

- a ~100M-parameter random Llama (fp32, eager attention, fixed seed);
- 16 calibration windows of 128 random token ids (fixed seed), sparsity 0.5;
- for each method (wanda, sparsegpt) and implementation (naive = bench/naive_prune.py,
  engine = prune_model), one subprocess: it builds the model, hashes its
  initial weights (both implementations must start from identical weights),
  times only the pruning call, reads its own ru_maxrss (peak RSS), saves the
  pruned block weights and the pruned model's final hidden states on 4
  held-out windows;
- the parent compares naive and engine: differing mask entries (zero vs
  non-zero) per block, max abs weight difference, and each pruned model's
  relative output error against the dense model on the held-out windows.

Last, streaming memory: a 24-block Llama saved with save_pretrained is pruned
from disk with SparseGPT (prune_checkpoint); the peak resident set during the
call minus the resident set just before it, divided by one block's parameter
bytes. The peak is the kernel's exact high-water mark (VmHWM, reset just
before the call: no sampling); one torch thread, as in tests/test_stream.py;
the median of 3 fresh processes. Target: at most 3 blocks.

Exit status 1 if the initial weights differ or the results disagree beyond
what is expected: Wanda, no differing mask entry at all; SparseGPT (whose
masks are sensitive to fp32 rounding of the Hessian, and sequential
propagation carries one block's flips into the next block's inputs), at most
MAX_SPARSEGPT_BLOCK0_FLIP_FRAC of block 0's entries (its inputs are
bit-identical in both) and output errors within MAX_SPARSEGPT_ERR_GAP of each other.

    .venv/bin/python bench/bench_prune.py            # full run (~100M model), about 4 minutes on 2 quiet cores
    .venv/bin/python bench/bench_prune.py --quick    # smoke run: a 4-block, hidden-256 model; 6 blocks streamed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import quiet  # bench/ is sys.path[0] when this file runs as a script
from quiet import OthersLoad

METHODS = ("wanda", "sparsegpt")
IMPLS = ("naive", "engine")
SPARSITY = 0.5
THREADS = 2
MODEL_SEED, CALIB_SEED, HELDOUT_SEED, N_HELDOUT = 0, 1, 2, 4
MAX_SPARSEGPT_BLOCK0_FLIP_FRAC = 1e-3  # fp32-order flips where both sides see identical inputs
MAX_SPARSEGPT_ERR_GAP = 0.05  # relative gap between the two pruned models' output errors
QUIET_WAIT_S, QUIET_THRESHOLD = 10.0, 0.15  # before each timing, wait (capped) for a quiet machine
STREAM_TARGET_BLOCKS = 3.0  # peak growth while streaming, in blocks' parameter bytes
# The streamed model: 24 blocks of 7.3 MB in fp32 (the memory test's model); calibration 8 x 64, batches of 4.
STREAM_MODEL = dict(
    vocab_size=512,
    hidden_size=384,
    intermediate_size=1152,
    num_hidden_layers=24,
    num_attention_heads=6,
    num_key_value_heads=6,
    max_position_embeddings=128,
)
STREAM_CALIB = (8, 64)
STREAM_REPEATS = 3

SIZES = {
    "full": dict(
        model=dict(
            vocab_size=8000,
            hidden_size=768,
            intermediate_size=2048,
            num_hidden_layers=12,
            num_attention_heads=12,
            num_key_value_heads=12,
            max_position_embeddings=256,
        ),
        n=16,
        seqlen=128,
    ),
    "quick": dict(
        model=dict(
            vocab_size=8000,
            hidden_size=256,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=256,
        ),
        n=16,
        seqlen=128,
    ),
}


# ---------------------------------------------------------------- model, data, machine


def build_model(model_kwargs: dict):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**model_kwargs, tie_word_embeddings=False, attn_implementation="eager")
    torch.manual_seed(MODEL_SEED)
    return LlamaForCausalLM(config).float().eval()


def token_ids(size: str, seed: int, n: int):
    import torch

    cfg = SIZES[size]
    g = torch.Generator().manual_seed(seed)
    return torch.randint(cfg["model"]["vocab_size"], (n, cfg["seqlen"]), generator=g)


def final_hidden(model, ids):
    """The model's last hidden states (after the final norm) for `ids`, in fp32."""
    import torch

    with torch.no_grad():
        return model.model(input_ids=ids, use_cache=False).last_hidden_state.float()


def block_matrices(model) -> dict:
    from mlsweep.prune.arch import find_blocks, find_matrices

    return {f"{i}.{name}": m for i, block in enumerate(find_blocks(model)) for name, m in find_matrices(block).items()}


def weights_digest(model) -> str:
    """sha256 over every parameter's bytes (no copy), in a fixed order."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().contiguous().numpy().data)
    return h.hexdigest()


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def wait_for_quiet() -> None:
    quiet.wait_for_quiet(QUIET_WAIT_S, QUIET_THRESHOLD)


# ---------------------------------------------------------------- worker side (one subprocess per row)


def run_pruning(model, calibration, method: str, impl: str) -> None:
    if impl == "naive":
        from naive_prune import prune_naive  # bench/ is sys.path[0] when this file runs as a script

        prune_naive(model, calibration, method, SPARSITY)
    else:
        from mlsweep.prune import prune_model

        prune_model(model, calibration, method, SPARSITY)


def timed_pruning(size: str, method: str, impl: str) -> tuple:
    """Build the model from the seed, prune it once; (model, digest, wall_s, others_load, rss_before_mb)."""
    import gc

    model = build_model(SIZES[size]["model"])
    digest = weights_digest(model)
    calibration = token_ids(size, CALIB_SEED, SIZES[size]["n"])
    gc.collect()
    wait_for_quiet()
    rss_before, load = current_rss_mb(), OthersLoad()
    load.start()
    tic = time.perf_counter()
    run_pruning(model, calibration, method, impl)
    wall = time.perf_counter() - tic
    return model, digest, wall, load.stop(), rss_before


def save_first(model, out: Path, size: str) -> dict:
    """After the first repetition: peak RSS, then the pruned weights and held-out outputs to out.pt."""
    import torch

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; read before anything else
    saved = {
        "weights": {k: m.tensor().detach() for k, m in block_matrices(model).items()},
        "heldout": final_hidden(model, token_ids(size, HELDOUT_SEED, N_HELDOUT)),
    }
    torch.save(saved, out.with_suffix(".pt"))
    return dict(peak_rss_mb=peak, torch=torch.__version__, n_params=sum(p.numel() for p in model.parameters()))


def worker(method: str, impl: str, size: str, repeats: int, out: Path) -> None:
    """One (method, impl) row in this process; writes out.json and out.pt.

    Peak RSS, weights and outputs come from the first repetition. The model
    is rebuilt from the seed for each repetition; repetitions stop at the
    first one run on a quiet machine (others_cpu under QUIET_THRESHOLD) or
    after `repeats`; wall_s is the fastest.
    """
    import gc

    import torch

    torch.set_num_threads(THREADS)
    result, walls, loads = dict(method=method, impl=impl), [], []
    for r in range(repeats):
        model, digest, wall, load, rss = timed_pruning(size, method, impl)
        assert result.setdefault("init_digest", digest) == digest, "the seed did not give the same weights twice"
        walls.append(wall)
        loads.append(load)
        if r == 0:
            result.update(save_first(model, out, size), rss_before_mb=rss)
        del model
        gc.collect()
        if load < QUIET_THRESHOLD:
            break
    best = min(range(len(walls)), key=walls.__getitem__)
    result.update(wall_s=walls[best], others_load=loads[best], walls=walls, loads=loads)
    out.with_suffix(".json").write_text(json.dumps(result))


# ---------------------------------------------------------------- streaming memory (one subprocess)


def status_mb(key: str) -> float:
    """A /proc/self/status field in MB (VmRSS: resident now; VmHWM: its high-water mark)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def stream_once(src: Path, dst: Path, ids) -> None:
    from mlsweep.prune.stream import prune_checkpoint

    prune_checkpoint(src, dst, ids, "sparsegpt", SPARSITY, engine=dict(batch_size=4))


def stream_worker(blocks: int, out: Path) -> None:
    """Save a `blocks`-block Llama, warm up on a 1-block copy, then measure one streamed SparseGPT prune."""
    import ctypes

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mlsweep.prune.arch import find_blocks

    torch.set_num_threads(1)  # as the memory test does: each intra-op thread brings its own malloc arena
    tmp = out.parent
    for name, n in (("warmup", 1), ("model", blocks)):
        torch.manual_seed(MODEL_SEED)
        model = LlamaForCausalLM(LlamaConfig(**dict(STREAM_MODEL, num_hidden_layers=n)))
        block_bytes = sum(p.numel() * p.element_size() for p in find_blocks(model)[0].parameters())
        model.save_pretrained(tmp / name)
        del model
    g = torch.Generator().manual_seed(CALIB_SEED)
    ids = torch.randint(STREAM_MODEL["vocab_size"], STREAM_CALIB, generator=g)
    stream_once(tmp / "warmup", tmp / "warmup-out", ids)  # lazy imports and thread pools: paid here
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    tic = time.perf_counter()
    stream_once(tmp / "model", tmp / "model-out", ids)
    wall = time.perf_counter() - tic
    growth = status_mb("VmHWM") - before
    block_mb = block_bytes / 2**20
    result = dict(blocks=blocks, block_mb=block_mb, growth_mb=growth, growth_blocks=growth / block_mb, wall_s=wall)
    out.write_text(json.dumps(result))


def measure_stream(blocks: int, tmp: Path) -> dict:
    """STREAM_REPEATS fresh processes; the median growth counts (single runs scatter by about a block)."""
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    runs = []
    for r in range(STREAM_REPEATS):
        out = tmp / f"stream{r}" / "result.json"
        out.parent.mkdir()
        cmd = [sys.executable, __file__, "--stream-worker", str(blocks), "--out", str(out)]
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        runs.append(json.loads(out.read_text()))
    runs.sort(key=lambda r: r["growth_mb"])
    return dict(runs[len(runs) // 2], all_blocks=[r["growth_blocks"] for r in runs])


# ---------------------------------------------------------------- parent side


def measure(method: str, impl: str, size: str, repeats: int, tmp: Path) -> dict:
    out = tmp / f"{method}_{impl}"
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        impl,
        "--size",
        size,
        "--repeats",
        str(repeats),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, env=env)
    return json.loads(out.with_suffix(".json").read_text())


def dense_heldout(size: str):
    """The unpruned model's held-out outputs (built here, in the parent, from the same seed)."""
    import torch

    torch.set_num_threads(THREADS)
    model = build_model(SIZES[size]["model"])
    return final_hidden(model, token_ids(size, HELDOUT_SEED, N_HELDOUT))


def compare(tmp: Path, method: str, dense) -> dict:
    """Naive vs engine: differing mask entries per block, max |dW|, output error vs the dense model."""
    import torch

    a = torch.load(tmp / f"{method}_naive.pt")
    b = torch.load(tmp / f"{method}_engine.pt")
    wa, wb = a["weights"], b["weights"]
    assert wa.keys() == wb.keys(), "naive and engine pruned different sets of linears"
    per_block: dict[int, int] = {}
    total, max_diff, zeros = 0, 0.0, 0
    for k in wa:
        block = int(k.split(".")[0])
        per_block[block] = per_block.get(block, 0) + int(((wa[k] == 0) != (wb[k] == 0)).sum())
        total, zeros = total + wa[k].numel(), zeros + int((wb[k] == 0).sum())
        max_diff = max(max_diff, float((wa[k] - wb[k]).abs().max()))
    block0 = sum(wa[k].numel() for k in wa if k.startswith("0."))
    err = {impl: float((d["heldout"] - dense).norm() / dense.norm()) for impl, d in (("naive", a), ("engine", b))}
    return dict(
        mask_diff=sum(per_block.values()),
        entries=total,
        block0_entries=block0,
        max_abs_diff=max_diff,
        engine_sparsity=zeros / total,
        flips_per_block=[per_block[i] for i in sorted(per_block)],
        out_err=err,
    )


def check(method: str, cmp: dict, rows: list[dict]) -> list[str]:
    """Failures for this method: initial weights not identical, or results beyond the expected noise."""
    failures = []
    if rows[0]["init_digest"] != rows[1]["init_digest"]:
        failures.append(f"{method}: naive and engine did not start from identical weights")
    if method == "wanda" and cmp["mask_diff"]:
        failures.append(
            f"wanda: {cmp['mask_diff']} mask entries differ (expected 0), per block {cmp['flips_per_block']}"
        )
    if method == "sparsegpt":
        allowed = int(MAX_SPARSEGPT_BLOCK0_FLIP_FRAC * cmp["block0_entries"])
        if cmp["flips_per_block"][0] > allowed:
            failures.append(
                f"sparsegpt: {cmp['flips_per_block'][0]} mask entries of block 0 differ (expected at most {allowed})"
            )
        gap = abs(cmp["out_err"]["engine"] / cmp["out_err"]["naive"] - 1)
        if gap > MAX_SPARSEGPT_ERR_GAP:
            failures.append(
                f"sparsegpt: output errors differ by {gap:.1%} (expected at most {MAX_SPARSEGPT_ERR_GAP:.0%})"
            )
    return failures


def print_table(results: dict) -> None:
    print(
        f"{'method':<10} {'impl':<7} {'wall_s':>7} {'peak_rss_mb':>11} {'rss_before_mb':>13} {'others_cpu':>10} "
        f"{'out_err':>7} {'speedup(naive/engine)':>21} {'mem_ratio(naive/engine)':>23}  mask_diff"
    )
    for method, (rows, cmp) in results.items():
        naive, engine = rows
        for r in rows:
            speed = mem = diff = "-"
            if r is engine:
                speed = f"{naive['wall_s'] / engine['wall_s']:.2f}x"
                mem = f"{naive['peak_rss_mb'] / engine['peak_rss_mb']:.2f}x"
                diff = f"{cmp['mask_diff']} of {cmp['entries']} (max |dW| {cmp['max_abs_diff']:.1e})"
            print(
                f"{method:<10} {r['impl']:<7} {r['wall_s']:>7.2f} {r['peak_rss_mb']:>11.0f} "
                f"{r['rss_before_mb']:>13.0f} {r['others_load']:>10.0%} {cmp['out_err'][r['impl']]:>7.4f} "
                f"{speed:>21} {mem:>23}  {diff}"
            )


def print_notes(results: dict) -> None:
    for method, (rows, cmp) in results.items():
        walls = "; ".join(
            f"{r['impl']} " + ", ".join(f"{w:.2f} ({o:.0%})" for w, o in zip(r["walls"], r["loads"])) for r in rows
        )
        print(f"{method}: wall_s (others_cpu) of every repetition: {walls}")
        print(
            f"{method}: engine result sparsity {cmp['engine_sparsity']:.4f}; "
            f"differing mask entries per block: {cmp['flips_per_block']}"
        )
    print(
        "wall_s: the fastest repetition; others_cpu: share of the cores other processes used during it; "
        "out_err: ||h_pruned - h_dense|| / ||h_dense|| of the final hidden states on held-out windows; "
        "peak_rss_mb: the subprocess's ru_maxrss (imports and model included); "
        "rss_before_mb: its RSS just before pruning"
    )


def run_all(size: str, repeats: int) -> tuple[dict, dict, list[str]]:
    results, failures = {}, []
    dense = dense_heldout(size)
    with tempfile.TemporaryDirectory(prefix="bench_prune_") as tmp:
        for method in METHODS:
            rows = [measure(method, impl, size, repeats, Path(tmp)) for impl in IMPLS]
            cmp = compare(Path(tmp), method, dense)
            results[method] = (rows, cmp)
            failures += check(method, cmp, rows)
            for impl in IMPLS:  # ~340 MB each at full size: free the disk as we go
                (Path(tmp) / f"{method}_{impl}.pt").unlink()
        stream = measure_stream(STREAM_MODEL["num_hidden_layers"] if size == "full" else 6, Path(tmp))
    return results, stream, failures


def print_stream(stream: dict) -> None:
    met = "met" if stream["growth_blocks"] <= STREAM_TARGET_BLOCKS else "NOT met"
    print(
        f"streaming ({stream['blocks']} blocks of {stream['block_mb']:.2f} MB, sparsegpt, prune_checkpoint): "
        f"peak RSS growth {stream['growth_mb']:.1f} MB = {stream['growth_blocks']:.2f} blocks, median of "
        f"{', '.join(f'{b:.2f}' for b in stream['all_blocks'])} (target <= {STREAM_TARGET_BLOCKS:g}: {met}); "
        f"wall {stream['wall_s']:.1f} s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run on a 4-block, hidden-256 model")
    ap.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="at most this many timed repetitions per row (another only if the machine was busy)",
    )
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "IMPL"), help=argparse.SUPPRESS)
    ap.add_argument("--stream-worker", type=int, metavar="BLOCKS", help=argparse.SUPPRESS)
    ap.add_argument("--size", default="full", choices=sorted(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, args.size, args.repeats, args.out)
        return 0
    if args.stream_worker:
        stream_worker(args.stream_worker, args.out)
        return 0
    size = "quick" if args.quick else "full"
    cfg = SIZES[size]
    print(
        f"size={size}: Llama {cfg['model']}, calibration {cfg['n']}x{cfg['seqlen']} random ids, "
        f"sparsity {SPARSITY}, torch threads {THREADS}, one subprocess per row",
        flush=True,
    )
    tic = time.perf_counter()
    results, stream, failures = run_all(size, args.repeats)
    first = results[METHODS[0]][0][0]
    print(f"model: {first['n_params'] / 1e6:.1f}M parameters, torch {first['torch']}, {os.cpu_count()} CPUs\n")
    print_table(results)
    print_notes(results)
    print_stream(stream)
    print(f"total benchmark time {time.perf_counter() - tic:.0f} s")
    busy = [f"{m}/{r['impl']}" for m, (rows, _) in results.items() for r in rows if r["others_load"] >= QUIET_THRESHOLD]
    consequence = (
        "with 2 torch threads on 2 shared cores that slows runs unevenly (up to 33x seen): "
        "treat those wall times and speedups as unreliable and re-run on a quiet machine"
    )
    return quiet.finish(busy, QUIET_THRESHOLD, consequence, failures)


if __name__ == "__main__":
    sys.exit(main())
