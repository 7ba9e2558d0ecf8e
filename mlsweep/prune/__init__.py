"""Pruning API usable without Hydra.

    report = prune_model(model, calibration, "wanda", 0.5)

`calibration` is a LongTensor of token ids shaped (n, seqlen), or a list of
such rows; `languages` optionally tags each row with its language (language-
aware pruners and statistics use it). The model is pruned in place.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import torch
from torch import nn

from mlsweep.prune.arch import find_blocks, find_linears
from mlsweep.prune import wanda
from mlsweep.prune.allocation import (ALLOCATIONS, allocate, check_cwl, check_owl, cross_language_correlation,
                                     outlier_ratio)
from mlsweep.prune.loop import BlockCallback, LoopOptions, prune_blocks, walk_statistics
from mlsweep.prune.masks import SparsityTarget, make_target
from mlsweep.prune.registry import PrunerSpec, get_pruner


@dataclass
class PruneReport:
    method: str
    target: float
    pattern: str
    overall: float  # zeros / weights over every linear of every block
    per_block: list[float]
    per_linear: dict[str, float]  # "<block index>.<name in block>" -> sparsity
    seconds_per_block: list[float] = field(default_factory=list)
    allocated: list[float] = field(default_factory=list)  # target sparsity given to each block
    resumed: list[int] = field(default_factory=list)  # blocks restored from a checkpoint, not pruned again

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def zero_counts(block: nn.Module) -> dict[str, tuple[int, int]]:
    """(zeros, weights) of every linear in a block."""
    return {name: (int((lin.weight == 0).sum()), lin.weight.numel()) for name, lin in find_linears(block).items()}


def summarize(counts: list[dict[str, tuple[int, int]]]) -> tuple[float, list[float], dict[str, float]]:
    """Sparsity over all block linears, per block and per linear, from per-block zero counts."""
    per_linear: dict[str, float] = OrderedDict()
    per_block = []
    for i, block in enumerate(counts):
        per_linear.update({f"{i}.{name}": z / n for name, (z, n) in block.items()})
        per_block.append(sum(z for z, _ in block.values()) / sum(n for _, n in block.values()))
    zeros = sum(z for block in counts for z, _ in block.values())
    total = sum(n for block in counts for _, n in block.values())
    return zeros / total, per_block, per_linear


def measure_sparsity(model: nn.Module) -> tuple[float, list[float], dict[str, float]]:
    """Fraction of exact zeros per linear, per block and over all block linears."""
    return summarize([zero_counts(block) for block in find_blocks(model)])


def _as_rows(calibration: Any) -> torch.Tensor:
    if isinstance(calibration, torch.Tensor):
        rows = calibration
    else:
        rows = list(calibration)
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise ValueError(f"calibration: rows must all have the same length, got lengths {sorted(lengths)}")
        rows = torch.stack([torch.as_tensor(r) for r in rows]) if rows else torch.empty(0, 0)
    if rows.dim() != 2:
        raise ValueError(f"calibration: expected token ids shaped (n, seqlen), got shape {tuple(rows.shape)}")
    if rows.shape[0] and rows.shape[1] < 2:
        raise ValueError(f"calibration: rows of {rows.shape[1]} token(s) are too short; need at least 2")
    return rows.long()


def _batches(rows: torch.Tensor, languages: Optional[Sequence[str]], batch_size: int,
             attention_mask: Optional[torch.Tensor] = None, mask_pad_in_stats: bool = True):
    """Language-homogeneous batches, so per-language statistics see one language per batch.

    With an attention mask (padded prompts), the model sees it, and padded positions are
    kept out of the statistics unless mask_pad_in_stats is False (Kim et al.'s original code).
    """
    langs = list(languages) if languages is not None else [None] * len(rows)
    if len(langs) != len(rows):
        raise ValueError(f"languages: {len(langs)} tags for {len(rows)} calibration rows")
    if attention_mask is not None and attention_mask.shape != rows.shape:
        raise ValueError(f"attention_mask: shape {tuple(attention_mask.shape)} differs from the calibration's "
                         f"{tuple(rows.shape)}")
    out = []
    for lang in dict.fromkeys(langs):
        idx = [i for i, l in enumerate(langs) if l == lang]
        for s in range(0, len(idx), batch_size):
            part = idx[s:s + batch_size]
            if attention_mask is None:
                out.append((rows[part], lang))
            else:
                m = attention_mask[part]
                out.append((rows[part], lang, m, m if mask_pad_in_stats else None))
    return out


def _job_key(rows: torch.Tensor, *parts: Any) -> str:
    """Names a pruning computation (its data and settings), so a checkpoint is never reused for another."""
    import hashlib

    h = hashlib.sha1(rows.numpy().tobytes())
    h.update(repr(parts).encode())
    return h.hexdigest()[:16]


@dataclass
class Job:
    """Validated arguments of one pruning run (checked before any weight is touched)."""

    spec: PrunerSpec
    target: SparsityTarget
    params: Any
    batches: list
    allocation: str
    owl_lambda: float
    owl_m: float
    cwl_lambda: float
    opts: LoopOptions

    @property
    def lam(self) -> float:
        return self.cwl_lambda if self.allocation == "cwl" else self.owl_lambda


def prepare(calibration: Any, method: str, sparsity: float, pattern: str = "unstructured",
            allocation: str = "uniform", *, owl_lambda: float = 0.08, owl_m: float = 5.0, cwl_lambda: float = 0.08,
            languages: Optional[Sequence[str]] = None, batch_size: int = 8, propagation: str = "sequential",
            true_sequential: bool = False, device: Any = None, activations_on_cpu: bool = False,
            attention_mask: Optional[torch.Tensor] = None, mask_pad_in_stats: bool = True,
            checkpoint_dir: Any = None, checkpoint_key: str = "", **params: Any) -> Job:
    spec: PrunerSpec = get_pruner(method)
    target: SparsityTarget = make_target(sparsity, pattern)
    method_params = spec.check_params(params)
    rows = _as_rows(calibration) if calibration is not None else torch.empty(0, 0, dtype=torch.long)
    if spec.needs_calibration and rows.shape[0] == 0:
        raise ValueError(f"calibration: pruner {method!r} needs calibration data, got an empty set")
    if batch_size <= 0:
        raise ValueError(f"engine.calib_batch_size={batch_size}: must be a positive integer")
    if propagation not in ("sequential", "dense"):
        raise ValueError(f"engine.propagation={propagation!r}: allowed values are 'sequential', 'dense'")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"sparsity.allocation={allocation!r}: allowed values are {', '.join(ALLOCATIONS)}")
    if allocation == "owl" and spec.prunes:
        check_owl(target, owl_lambda, owl_m)
    if allocation == "cwl" and spec.prunes:
        check_cwl(target, cwl_lambda, len(set(languages or [])))
    if allocation != "uniform" and spec.prunes and rows.shape[0] == 0:
        raise ValueError(f"calibration: allocation {allocation!r} needs calibration data for its statistics pass")
    opts = LoopOptions(sequential=propagation == "sequential", true_sequential=true_sequential,
                       device=torch.device(device) if device is not None else None,
                       activations_on_cpu=activations_on_cpu)
    if checkpoint_dir is not None and spec.prunes:
        from mlsweep.prune.checkpoint import BlockCheckpoint

        opts.checkpoint = BlockCheckpoint(checkpoint_dir, checkpoint_key or _job_key(
            rows, method, target, allocation, method_params, propagation, true_sequential, languages))
    batches = _batches(rows, languages, batch_size, attention_mask, mask_pad_in_stats) if rows.shape[0] else []
    return Job(spec, target, method_params, batches, allocation, owl_lambda, owl_m, cwl_lambda, opts)


def run(model: nn.Module, job: Job, on_block: Optional[BlockCallback] = None,
        ratios: Optional[list[float]] = None):
    """Allocate per-block targets and prune; returns (targets, seconds per block).

    `ratios`: OWL outlier ratios when already computed (else computed here).
    """
    n_blocks = len(find_blocks(model))
    was_training = model.training
    model.eval()
    try:
        if not job.spec.prunes:
            targets = [SparsityTarget(0.0)] * n_blocks
        else:
            targets = allocate(job.allocation, n_blocks, job.target,
                               lambda: ratios or allocation_scores(model, job), job.lam, job.owl_m)
        batches = job.batches if job.spec.needs_calibration else []
        seconds = prune_blocks(model, job.spec, targets, job.params, batches, job.opts, on_block)
    finally:
        model.train(was_training)
    return targets, seconds


def prune_model(model: nn.Module, calibration: Any, method: str, sparsity: float,
                pattern: str = "unstructured", allocation: str = "uniform", *,
                on_block: Optional[BlockCallback] = None, **options: Any) -> PruneReport:
    """Prune `model` in place with `method` at `sparsity`; see the module docstring.

    Options: languages (a tag per row), batch_size, propagation ('sequential'
    feeds each block the pruned outputs of the one before, as the reference;
    'dense' the unpruned ones), true_sequential, device (where blocks are
    computed; blocks not being pruned stay where they are), activations_on_cpu,
    owl_lambda / owl_m (allocation='owl'), checkpoint_dir (save each pruned
    block there and, on a restart, resume after the last saved one;
    checkpoint_key names the computation), and the pruner's own parameters.
    `on_block(i, seconds, sparsity)` is called after each block (progress, logging).
    """
    job = prepare(calibration, method, sparsity, pattern, allocation, **options)
    targets, seconds = run(model, job, on_block)
    overall, per_block, per_linear = measure_sparsity(model)
    return PruneReport(method, job.target.sparsity if job.spec.prunes else 0.0, job.target.pattern, overall,
                       per_block, per_linear, seconds, [t.sparsity for t in targets],
                       list(job.opts.checkpoint.resumed) if job.opts.checkpoint else [])


def allocation_scores(model: nn.Module, job: Job) -> list[float]:
    """The per-block scores of a non-uniform allocation (a dense statistics pass)."""
    if job.allocation == "cwl":
        return cwl_scores(model, job.batches, job.opts)
    return owl_outlier_ratios(model, job.batches, job.opts, job.owl_m)


def cwl_scores(model: nn.Module, batches, opts: LoopOptions) -> list[float]:
    """CWL: 1 - mean cross-language correlation of each block's per-language feature norms."""
    from mlsweep.prune.mwanda import LanguageStats

    scores: list[float] = []
    walk_statistics(model, batches, opts, LanguageStats,
                    lambda _i, linears, stats: scores.append(
                        1 - cross_language_correlation([stats[n].n().sqrt() for n in linears])))
    return scores


def owl_outlier_ratios(model: nn.Module, batches, opts: LoopOptions, m: float) -> list[float]:
    """OWL pass 1: Wanda scores of each dense block (dense propagation) -> outlier ratio per block."""
    ratios: list[float] = []

    def visit(_i, linears, stats):
        ratios.append(outlier_ratio([wanda.score(lin.weight.data.float(), stats[n].scaler_row)
                                     for n, lin in linears.items()], m))

    walk_statistics(model, batches, opts, wanda.SquaredNorm, visit)
    return ratios
