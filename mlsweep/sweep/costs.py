"""Cost estimates of a cell before it runs: peak GPU memory, GPUs and GPU-hours.

`mlsweep plan` prints them per cell and in total, and the launcher's resource
rules use them (mlsweep.resources). They are deliberately simple and
documented, meant to tell a 10-minute cell from a 10-hour one and a 24 GB
card from an 80 GB one, not to predict to the minute.

Model shape: P parameters, L blocks, hidden h, MLP width f, vocabulary V,
and for mixture-of-experts models E experts of width i, k of them computing
per token, read from the model's config.json when it is on this machine, else
from the model YAML (`params_b`, `dims`: layers, hidden, intermediate, vocab,
and experts, expert_intermediate, active for MoE), else guessed from P alone
(h = (128 P / 12)^(1/3), L = h / 128, f = 3.5 h, V = 32000: typical of
Llama-like models). Memory counts all P; compute only the active
P_a = P - L (E - k) 3 h i (P when k is not known).

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

GPUs: one, unless `model.device_map` spreads evaluation over the job's GPUs (mlsweep.devicemap;
pruning then holds one block at a time on one GPU, the model on the CPU). The evaluation needs
  spread = P b + 1.2 x evaluation, over n = ceil(spread / (G - 1 GiB)) GPUs of G GiB each
(GPU_MEMORY_GB = 80, or the launcher's `gpu_mem_gb`); weights are placed once and do not fragment,
so only the working set carries the 1.2. The peak per GPU is then max(pruning's peak, spread / n + 1 GiB).
A cell without a device map whose peak exceeds G is flagged by `mlsweep plan`.

Time: FLOPs divided by an achieved throughput, plus fixed costs.
  calibration passes  2 (statistics, then propagation) x 2 P_a n T;  +1 pass for an allocation with a
                      statistics pass (OWL, CWL)
  the pruner's solver per block, from its registry entry (PrunerSpec.solver_flops, swept_columns;
                      a mixture of experts: E times with width i, each on k / E of the tokens):
                      SparseGPT 2 n T (3 h^2 + f^2) (Hessians) + 2 (4 h^3 + 2 h^2 f + f^2 h) (OBS update)
                      + LATENCY x (6 h + f) (the column loop is latency-bound, not FLOP-bound)
  evaluation          2 P_a x scored tokens: perplexity languages x windows x T (windows unknown: 100),
                      tasks x items (limit, or 1000) x 3 choices x 64 tokens
  seconds = FLOPs / THROUGHPUT + P b / LOAD_RATE + STARTUP  (a spread model runs its GPUs one after
  another, so n GPUs take as long as one: GPU-hours = n x hours).
"""

from __future__ import annotations

import json
import math
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
GPU_MEMORY_GB = 80.0  # GiB of one GPU the plan sizes cells for (A100/H100 80 GB); the launcher's gpu_mem_gb overrides
ASSUMED_WINDOWS = 100  # perplexity windows per language when the suite does not cap them
ASSUMED_ITEMS = 1000  # task items per task when the suite sets no limit

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


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
    active: int = 0  # experts each token computes (0: not known)

    @property
    def active_params(self) -> float:
        """Parameters one token computes with (all of them for a dense model, or when `active` is unknown)."""
        idle = max(0, self.experts - self.active) if self.active else 0
        return self.params - self.layers * idle * 3 * self.hidden * self.expert_intermediate


def shape_from_config_json(cfg: dict) -> Shape:
    """Shape of a causal LM from its Hugging Face config.json (names vary by architecture)."""

    cfg = {**cfg, **(cfg.get("text_config") or {})}  # multimodal (Gemma-3 4B/12B): the text model's shape

    def first(*keys, default=None):
        for k in keys:
            if cfg.get(k) is not None:
                return cfg[k]
        return default

    h = int(first("hidden_size", "n_embd", "d_model"))
    layers = int(first("num_hidden_layers", "n_layer", "num_layers"))
    f = int(first("intermediate_size", "ffn_dim", "n_inner", default=4 * h) or 4 * h)
    vocab = int(first("vocab_size", default=32000))
    gated = str(cfg.get("model_type")) in _GATED
    heads = first("num_attention_heads", "n_head", default=1)
    head_dim = first("head_dim", default=h // heads)
    q = heads * head_dim  # Gemma/Qwen3 heads can be wider than h / heads
    kv = first("num_key_value_heads", default=heads) * head_dim  # grouped-query attention: smaller k, v
    experts = int(first("num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    expert_i = int(first("moe_intermediate_size", default=f) or f) if experts else 0
    active = int(first("num_experts_per_tok", default=0) or 0) if experts else 0
    mlp = (3 if gated else 2) * h * f
    if experts:  # routed experts, their router, and a shared expert where there is one
        shared = int(first("shared_expert_intermediate_size", default=0))
        mlp = experts * 3 * h * expert_i + experts * h + 3 * h * shared
    per_block = 2 * h * q + 2 * h * kv + mlp
    tied = cfg.get("tie_word_embeddings", True)
    params = layers * per_block + vocab * h * (1 if tied else 2)
    return Shape(float(params), layers, h, f, vocab, "config.json", experts, expert_i, active)


_GATED = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "cohere",
    "phi3",
    "olmo2",
)


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
            int(dims.get("active", 0)),
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
    gpu_mem_gb: float  # peak per GPU
    gpu_hours: float  # GPUs x hours
    params_b: float
    gpus: int = 1  # GPUs the cell holds (more than one only with model.device_map)
    fits: bool = True  # the peak fits one GPU of the planned size (or the model is spread)

    @property
    def hours(self) -> float:
        """Wall-clock hours (what a time limit must cover)."""
        return self.gpu_hours / self.gpus


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
    spread: bool = False,
    gpu_mem_gb: float = GPU_MEMORY_GB,
) -> Cost:
    """Peak GPU memory and GPU-hours of one cell (formulas in the module docstring).

    `passes`: how many times the cell prunes and evaluates (a `target` mix: once per language);
    `allocation_pass`: the allocation runs a dense statistics pass first (OWL, CWL);
    `spread`: evaluation over as many GPUs of `gpu_mem_gb` as it needs (model.device_map), pruning on one.
    """
    b = DTYPE_BYTES.get(dtype, 4)
    p, h, f, layers, v = shape.params, shape.hidden, shape.intermediate, shape.layers, shape.vocab
    n, t = (nsamples, seqlen) if calibrated else (0, seqlen)
    t_eval = eval_seqlen or seqlen
    prunes = pruner.prunes

    weights = (p / layers if offload_blocks or spread else p) * b
    activations = 0.0 if activations_on_cpu else 2 * n * t * h * b
    solver = pruner.working_bytes(h, f) if prunes else 0.0
    if prunes and calibrated and shape.experts:
        solver += shape.experts * (pruner.stats_bytes(h) + pruner.stats_bytes(shape.expert_intermediate))
    evaluation = 4 * eval_batch * t_eval * v
    peak, gpus = _peak(weights, activations + solver, evaluation, p * b if spread else None, gpu_mem_gb)
    p = shape.active_params  # compute scales with the parameters a token uses

    flops, seconds = _solver(shape, pruner, n * t) if prunes else (0.0, 0.0)
    if calibrated:
        flops += (2 + (1 if allocation_pass else 0)) * 2 * p * n * t
    windows = eval_windows if eval_windows is not None else ASSUMED_WINDOWS
    items = ASSUMED_ITEMS if not task_limit else (task_limit if task_limit >= 1 else task_limit * ASSUMED_ITEMS)
    flops += 2 * p * (eval_languages * windows * t_eval + tasks * items * 3 * 64)  # the evaluation's tokens
    seconds = passes * (seconds + flops / THROUGHPUT) + shape.params * b / LOAD_RATE + STARTUP
    return Cost(round(peak, 2), gpus * seconds / 3600, shape.params / 1e9, gpus, spread or peak <= gpu_mem_gb)


def _solver(shape: Shape, pruner: PrunerSpec, tokens: int) -> tuple[float, float]:
    """(FLOPs, latency seconds) of the pruner's solver over all blocks; a mixture of experts: each expert's
    linears on its share of the tokens (an upper bound: the attention's share counted per expert too)."""
    copies = max(1, shape.experts)
    share = tokens * (shape.active / shape.experts if shape.experts and shape.active else 1)
    h, f = shape.hidden, shape.expert_intermediate or shape.intermediate
    return (
        shape.layers * copies * pruner.solver_flops(h, f, int(share)),
        shape.layers * copies * LATENCY * pruner.swept_columns(h, f),
    )


def _peak(weights: float, pruning: float, evaluation: float, spread: Optional[float], gpu_gb: float):
    """(peak GiB per GPU, GPUs): one GPU, or with `spread` (all weights, bytes) evaluation over n GPUs."""
    if gpu_gb <= CUDA_CONTEXT_GB:
        raise ValueError(f"hydra.launcher.gpu_mem_gb={gpu_gb}: must exceed the {CUDA_CONTEXT_GB} GiB CUDA context")
    if spread is None:
        return 1.2 * (weights + max(pruning, evaluation)) / 2**30 + CUDA_CONTEXT_GB, 1
    need = (spread + 1.2 * evaluation) / 2**30  # placed weights do not fragment: 1.2 on the working set only
    gpus = max(1, math.ceil(need / (gpu_gb - CUDA_CONTEXT_GB)))
    return max(1.2 * (weights + pruning) / 2**30, need / gpus) + CUDA_CONTEXT_GB, gpus


def cell_cost(spec: CellSpec, gpu_mem_gb: float = GPU_MEMORY_GB, tasks: Optional[int] = None) -> Cost:
    """The estimate for one cell (`tasks`: its lm-eval tasks per pass after group expansion; default: as
    named). A `target` cell's passes each evaluate one language: the first pass's suite is the one costed."""
    model, engine, suite, calib = spec.model, spec.engine, spec.passes[0].suite, spec.passes[0].calib
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
        tasks=len(suite.tasks) if tasks is None else tasks,
        task_limit=suite.limit,
        passes=len(spec.passes),
        spread=model.device_map is not None,
        gpu_mem_gb=gpu_mem_gb,
    )
