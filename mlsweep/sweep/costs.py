"""Cost estimates of a cell before it runs: peak GPU memory and GPU-hours.

`mlsweep plan` prints them per cell and in total, and the launcher's resource
rules use them (mlsweep.resources). They are deliberately simple and
documented, meant to tell a 10-minute cell from a 10-hour one and a 24 GB
card from an 80 GB one, not to predict to the minute.

Model shape: P parameters, L blocks, hidden h, MLP width f, vocabulary V,
and for mixture-of-experts models E experts of width i, read from the
model's config.json when it is on this machine, else from the model YAML
(`params_b`, `dims`: layers, hidden, intermediate, vocab, and experts,
expert_intermediate for MoE), else guessed from P alone (h = (128 P / 12)^(1/3),
L = h / 128, f = 3.5 h, V = 32000: typical of Llama-like models).

Memory (bytes), b = bytes per weight of model.dtype, n x T = calibration windows x seqlen:
  weights     P b                          (one block's share, P/L b, with engine.offload_blocks)
  activations 2 n T h b                    (inputs and outputs of the current block; 0 with activations_on_cpu)
  pruner      the pruner's working set, from its registry entry (PrunerSpec.working_bytes):
              SparseGPT: 3 * 4 max(h,f)^2 (Hessian, its inverse factor, the shared product buffer; fp32)
              + 4 h f (fp32 weight copy); score-based pruners (Wanda, M-Wanda, magnitude): 2 * 4 h f
  experts     E (s(h) + s(i)): every expert's statistics are collected at once (mlsweep.prune.loop),
              s(d) the pruner's statistics of a d-wide input (PrunerSpec.stats_bytes): SparseGPT's
              Hessian 4 d^2 (Mixtral-8x7B: 7.1 GB), else a few fp32 vectors, 16 d
  evaluation  4 B T V                      (fp32 logits of one batch of B windows)
  peak = 1.2 x (weights + max(activations + pruner + experts, evaluation)) + 1 GiB (CUDA context).

Time: FLOPs divided by an achieved throughput, plus fixed costs.
  calibration passes  2 (statistics, then propagation) x 2 P n T;  +1 pass for an allocation with a
                      statistics pass (OWL, CWL)
  the pruner's solver per block, from its registry entry (PrunerSpec.solver_flops, swept_columns):
                      SparseGPT 2 n T (3 h^2 + f^2) (Hessians) + 2 (4 h^3 + 2 h^2 f + f^2 h) (OBS update)
                      + LATENCY x (6 h + f) (the column loop is latency-bound, not FLOP-bound);
                      an MoE model's experts are not in these time terms (P counts them, so the
                      calibration and evaluation passes are overestimated by the inactive experts)
  evaluation          2 P x scored tokens: perplexity languages x windows x T (windows unknown: 100),
                      tasks x items (limit, or 1000) x 3 choices x 64 tokens
  seconds = FLOPs / THROUGHPUT + P b / LOAD_RATE + STARTUP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mlsweep.prune.registry import PrunerSpec

if TYPE_CHECKING:
    from mlsweep.config.spec import CellSpec, ModelSpec

THROUGHPUT = 50e12  # achieved FLOP/s of an fp16 forward on an A100/H100-class GPU (about 1/4 of peak)
LATENCY = 1e-4  # seconds per SparseGPT column (a few kernel launches each)
LOAD_RATE = 1e9  # bytes/s reading weights from shared storage
STARTUP = 120.0  # seconds: interpreter, imports, lm-eval task index, CUDA context
CUDA_CONTEXT_GB = 1.0
ASSUMED_WINDOWS = 100  # perplexity windows per language when the suite does not cap them
ASSUMED_ITEMS = 1000  # task items per task when the suite sets no limit

_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class Shape:
    params: float  # parameter count
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    source: str  # where the numbers came from: config.json, model config, or guessed
    experts: int = 0  # routed experts per MoE block (0: a dense model)
    expert_intermediate: int = 0  # width i of one expert's MLP


def shape_from_config_json(cfg: dict) -> Shape:
    """Shape of a causal LM from its Hugging Face config.json (names vary by architecture)."""

    def first(*keys, default=None):
        for k in keys:
            if cfg.get(k) is not None:
                return cfg[k]
        return default

    h = int(first("hidden_size", "n_embd", "d_model"))
    layers = int(first("num_hidden_layers", "n_layer", "num_layers"))
    f = int(first("intermediate_size", "ffn_dim", "n_inner", default=4 * h) or 4 * h)
    vocab = int(first("vocab_size", default=32000))
    gated = cfg.get("model_type") in (
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "gemma3_text",
        "cohere",
        "phi3",
        "olmo2",
    )
    heads = first("num_attention_heads", "n_head", default=1)
    kv = h * first("num_key_value_heads", default=heads) // heads  # grouped-query attention: smaller k, v
    experts = int(first("num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    expert_i = int(first("moe_intermediate_size", default=f) or f) if experts else 0
    mlp = (3 if gated else 2) * h * f
    if experts:  # routed experts, their router, and a shared expert where there is one
        shared = int(first("shared_expert_intermediate_size", default=0))
        mlp = experts * 3 * h * expert_i + experts * h + 3 * h * shared
    per_block = 2 * h * h + 2 * h * kv + mlp
    tied = cfg.get("tie_word_embeddings", True)
    params = layers * per_block + vocab * h * (1 if tied else 2)
    return Shape(float(params), layers, h, f, vocab, "config.json", experts, expert_i)


def guess_shape(params_b: float) -> Shape:
    p = params_b * 1e9
    h = max(64, int(round((128 * p / 12) ** (1 / 3) / 64)) * 64)
    return Shape(p, max(1, round(h / 128)), h, int(3.5 * h), 32000, "guessed from params_b")


def model_shape(model: ModelSpec) -> Shape:
    """The shape of a model (fields path, params_b, dims), best source first."""
    path = Path(str(model.path or "")).expanduser()
    if (path / "config.json").is_file():
        return shape_from_config_json(json.loads((path / "config.json").read_text()))
    dims = dict(model.dims or {})
    params_b = model.params_b
    if dims and params_b:
        return Shape(
            params_b * 1e9,
            int(dims["layers"]),
            int(dims["hidden"]),
            int(dims["intermediate"]),
            int(dims["vocab"]),
            "model config",
            int(dims.get("experts", 0)),
            int(dims.get("expert_intermediate", 0)),
        )
    if params_b:
        return guess_shape(params_b)
    cached = _cached_config_json(str(model.path or ""), model.revision)
    if cached is not None:
        return shape_from_config_json(cached)
    raise ValueError(
        f"model.params_b: unknown size of model.path={model.path!r} (no config.json on this "
        f"machine); set model.params_b (and model.dims) for cost estimates and resource rules"
    )


def _cached_config_json(repo: str, revision: Optional[str]) -> Optional[dict]:
    try:
        from huggingface_hub import hf_hub_download  # noqa: PLC0415 (only for hub models)

        return json.loads(
            Path(hf_hub_download(repo, "config.json", revision=revision, local_files_only=True)).read_text()
        )
    except Exception:  # not in the cache: the caller says what to set instead
        return None


@dataclass(frozen=True)
class Cost:
    gpu_mem_gb: float
    gpu_hours: float
    params_b: float


def estimate(
    shape: Shape,
    *,
    dtype: str,
    pruner: PrunerSpec,
    calibrated: bool,
    nsamples: int,
    seqlen: int,
    allocation_pass: bool = False,
    offload_blocks: bool = False,
    activations_on_cpu: bool = False,
    eval_languages: int = 0,
    eval_windows: Optional[int] = None,
    eval_seqlen: Optional[int] = None,
    eval_batch: int = 8,
    tasks: int = 0,
    task_limit: Optional[float] = None,
    passes: int = 1,
) -> Cost:
    """Peak GPU memory and GPU-hours of one cell (formulas in the module docstring).

    `passes`: how many times the cell prunes and evaluates (a `target` mix: once per language);
    `allocation_pass`: the allocation runs a dense statistics pass first (OWL, CWL).
    """
    b = _BYTES.get(dtype, 4)
    p, h, f, layers, v = shape.params, shape.hidden, shape.intermediate, shape.layers, shape.vocab
    n, t = (nsamples, seqlen) if calibrated else (0, seqlen)
    t_eval = eval_seqlen or seqlen
    prunes = pruner.prunes

    weights = (p / layers if offload_blocks else p) * b
    activations = 0.0 if activations_on_cpu else 2 * n * t * h * b
    solver = pruner.working_bytes(h, f) if prunes else 0.0
    if prunes and calibrated and shape.experts:
        solver += shape.experts * (pruner.stats_bytes(h) + pruner.stats_bytes(shape.expert_intermediate))
    evaluation = 4 * eval_batch * t_eval * v
    peak = 1.2 * (weights + max(activations + solver, evaluation)) / 2**30 + CUDA_CONTEXT_GB

    flops = 0.0
    seconds = 0.0
    if calibrated:
        flops += (2 + (1 if allocation_pass else 0)) * 2 * p * n * t
    if prunes:
        flops += layers * pruner.solver_flops(h, f, n * t)
        seconds += layers * LATENCY * pruner.swept_columns(h, f)
    windows = eval_windows if eval_windows is not None else ASSUMED_WINDOWS
    items = ASSUMED_ITEMS if not task_limit else (task_limit if task_limit >= 1 else task_limit * ASSUMED_ITEMS)
    eval_tokens = eval_languages * windows * t_eval + tasks * items * 3 * 64
    flops += 2 * p * eval_tokens
    seconds = passes * (seconds + flops / THROUGHPUT) + p * b / LOAD_RATE + STARTUP
    return Cost(round(peak, 2), seconds / 3600, p / 1e9)


def cell_cost(spec: CellSpec) -> Cost:
    """The estimate for one cell."""
    model, engine, suite, calib = spec.model, spec.engine, spec.suite, spec.passes[0].calib
    return estimate(
        model_shape(model),
        dtype=model.dtype,
        pruner=spec.pruner,
        calibrated=calib is not None,
        nsamples=calib.nsamples if calib else 0,
        seqlen=calib.seqlen if calib else model.seqlen,
        allocation_pass=spec.allocation is not None and spec.allocation.needs_calibration,
        offload_blocks=engine.offload_blocks or engine.stream_from_disk,
        activations_on_cpu=engine.activations_on_cpu,
        eval_languages=sum(len(c.languages) for c in suite.corpora),
        eval_windows=suite.corpora[0].max_windows,
        eval_seqlen=suite.seqlen,
        eval_batch=suite.batch_size,
        tasks=len(suite.tasks),
        task_limit=suite.limit,
        passes=len(spec.passes),
    )


def fmt_hours(hours: float) -> str:
    return f"{hours * 60:.1f} min" if hours < 1 else f"{hours:.2f} h"
