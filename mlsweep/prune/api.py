"""The engine core behind `mlsweep.prune`: validated jobs, allocation, the layer loop, the report.

    report = prune_model(model, calibration, "wanda", 0.5)

`calibration` is a LongTensor of token ids shaped (n, seqlen), or a list of
such rows; `languages` optionally tags each row with its language (language-
aware pruners and statistics use it). The model is pruned in place. Three
namespaces stay apart: the pruner's own parameters (`params`, its Params
dataclass), the allocation's (`allocation_params`) and the engine's
(`EngineOptions`: batching, propagation, devices, checkpoints). Every one of
them is checked before any weight is touched, naming the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Optional, Union

import torch
from torch import nn

from mlsweep.prune.allocation import ALLOCATIONS, AllocationSpec
from mlsweep.prune.arch import check_exclusions, find_blocks
from mlsweep.prune.capture import CalibBatch, as_rows, calibration_batches
from mlsweep.prune.checkpoint import BlockCheckpoint
from mlsweep.prune.loop import BlockCallback, LoopOptions, LoopResult, prune_blocks
from mlsweep.prune.masks import SparsityTarget, make_target
from mlsweep.prune.registry import PrunerSpec, get_pruner
from mlsweep.prune.report import PruneReport, summarize, zero_counts
from mlsweep.registry import suggest

PROPAGATIONS = ("sequential", "dense")
EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class EngineOptions:
    """How the layer loop runs; what is computed depends only on the first three."""

    batch_size: int = 8  # calibration windows per forward
    propagation: str = "sequential"  # sequential: pruned outputs feed the next block (reference) | dense
    true_sequential: bool = False  # prune q/k/v, then o, then gate/up, then down, re-running the block
    device: Optional[Union[str, torch.device]] = None  # compute device; None: where the stem is
    activations_on_cpu: bool = False  # captured activations on the CPU between blocks
    checkpoint_dir: Optional[Union[str, Path]] = None  # save each pruned block there; resume from it
    checkpoint_key: str = ""  # names the computation a checkpoint belongs to ("": derived from the data)

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise ValueError(f"engine.calib_batch_size={self.batch_size}: must be a positive integer")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(
                f"engine.propagation={self.propagation!r}: allowed values are {', '.join(map(repr, PROPAGATIONS))}"
            )

    def loop_options(self) -> LoopOptions:
        return LoopOptions(
            sequential=self.propagation == "sequential",
            true_sequential=self.true_sequential,
            device=torch.device(self.device) if self.device is not None else None,
            activations_on_cpu=self.activations_on_cpu,
        )

    @classmethod
    def of(cls, value: Union[EngineOptions, Mapping[str, Any], None]) -> EngineOptions:
        """EngineOptions from itself, a mapping of its fields, or None (the defaults)."""
        if value is None or isinstance(value, EngineOptions):
            return value or cls()
        allowed = [f.name for f in fields(cls)]
        for key in value:
            if key not in allowed:
                raise ValueError(
                    f"engine.{key}: not an engine option.{suggest(key, allowed)} Allowed: {', '.join(allowed)}"
                )
        return cls(**value)


def _job_key(rows: torch.Tensor, *parts: Any) -> str:
    """Names a pruning computation (its data and settings), so a checkpoint is never reused for another."""
    h = hashlib.sha1(rows.numpy().tobytes())
    h.update(repr(parts).encode())
    return h.hexdigest()[:16]


@dataclass
class Job:
    """Validated arguments of one pruning run (checked before any weight is touched)."""

    spec: PrunerSpec
    target: SparsityTarget
    params: Any
    allocation: AllocationSpec
    allocation_params: Any
    batches: list[CalibBatch]
    opts: LoopOptions

    @property
    def checkpoint(self) -> Optional[BlockCheckpoint]:
        return self.opts.checkpoint


def prepare(
    calibration: Any,
    method: str,
    sparsity: float,
    pattern: str = "unstructured",
    allocation: str = "uniform",
    *,
    params: Mapping[str, Any] = EMPTY,
    allocation_params: Mapping[str, Any] = EMPTY,
    engine: Union[EngineOptions, Mapping[str, Any], None] = None,
    languages: Optional[Sequence[str]] = None,
    attention_mask: Optional[torch.Tensor] = None,
    mask_pad_in_stats: bool = True,
    exclude: Mapping[str, str] = EMPTY,
) -> Job:
    """Check every argument and build the job; raises ValueError naming the field."""
    spec: PrunerSpec = get_pruner(method)
    target: SparsityTarget = make_target(sparsity, pattern)
    method_params = spec.check_params(params)
    engine = EngineOptions.of(engine)
    alloc = ALLOCATIONS.get(allocation)
    alloc_params = alloc.check_params(allocation_params)
    rows = as_rows(calibration)
    if spec.needs_calibration and rows.shape[0] == 0:
        raise ValueError(f"calibration: pruner {method!r} needs calibration data, got an empty set")
    if spec.prunes:
        alloc.check(target, alloc_params, len(set(languages or [])))
        if alloc.needs_calibration and rows.shape[0] == 0:
            raise ValueError(f"calibration: allocation {allocation!r} needs calibration data for its statistics pass")
    opts = engine.loop_options()
    opts.exclude = check_exclusions(exclude)
    batches = (
        calibration_batches(rows, languages, engine.batch_size, attention_mask, mask_pad_in_stats)
        if rows.shape[0]
        else []
    )
    if engine.checkpoint_dir is not None and spec.prunes:
        # the key names the computation, so a checkpoint folder is never reused for another one
        key = engine.checkpoint_key or _job_key(
            rows,
            method,
            target,
            allocation,
            method_params,
            alloc_params,
            engine.propagation,
            engine.true_sequential,
            languages,
            sorted(opts.exclude.items()),
        )
        opts.checkpoint = BlockCheckpoint(engine.checkpoint_dir, key)
    return Job(spec, target, method_params, alloc, alloc_params, batches, opts)


def allocate(model: nn.Module, job: Job, scores: Optional[list[float]] = None) -> list[SparsityTarget]:
    """Per-block targets of the job; `scores`: the allocation's statistics when already computed."""
    n_blocks = len(find_blocks(model))
    if not job.spec.prunes:
        return [SparsityTarget(0.0)] * n_blocks
    return job.allocation.targets(
        n_blocks, job.target, lambda: scores or allocation_scores(model, job), job.allocation_params
    )


def allocation_scores(model: nn.Module, job: Job) -> list[float]:
    """The allocation's per-block scores (its dense statistics pass)."""
    return job.allocation.scores(model, job.batches, job.opts, job.allocation_params)


def run(
    model: nn.Module, job: Job, on_block: Optional[BlockCallback] = None, scores: Optional[list[float]] = None
) -> tuple[list[SparsityTarget], LoopResult]:
    """Allocate per-block targets and prune; returns (targets, the loop's result)."""
    was_training = model.training
    model.eval()
    try:
        targets = allocate(model, job, scores)
        batches = job.batches if job.spec.needs_calibration else []
        result = prune_blocks(model, job.spec, targets, job.params, batches, job.opts, on_block)
    finally:
        model.train(was_training)
    return targets, result


def report_of(
    job: Job, method: str, targets: list[SparsityTarget], result: LoopResult, counts: list[dict[str, tuple[int, int]]]
) -> PruneReport:
    overall, per_block, per_linear = summarize(counts)
    return PruneReport(
        method,
        job.target.sparsity if job.spec.prunes else 0.0,
        job.target.pattern,
        overall,
        per_block,
        per_linear,
        result.seconds,
        [t.sparsity for t in targets],
        list(job.checkpoint.resumed) if job.checkpoint else [],
        result.excluded,
        result.fallback,
    )


def prune_model(
    model: nn.Module,
    calibration: Any,
    method: str,
    sparsity: float,
    pattern: str = "unstructured",
    allocation: str = "uniform",
    *,
    params: Mapping[str, Any] = EMPTY,
    allocation_params: Mapping[str, Any] = EMPTY,
    engine: Union[EngineOptions, Mapping[str, Any], None] = None,
    languages: Optional[Sequence[str]] = None,
    attention_mask: Optional[torch.Tensor] = None,
    mask_pad_in_stats: bool = True,
    exclude: Mapping[str, str] = EMPTY,
    on_block: Optional[BlockCallback] = None,
) -> PruneReport:
    """Prune `model` in place with `method` at `sparsity`.

    Args:
        calibration: LongTensor (n, seqlen) of token ids, or rows of equal length (None: no data).
        method: a name in PRUNERS (wanda, sparsegpt, magnitude, ...).
        sparsity: fraction of weights zeroed per matrix, in [0, 1); N/M for an N:M `pattern`.
        allocation: a name in ALLOCATIONS (uniform, owl, cwl); `allocation_params` its fields
            (owl_lambda, owl_m; cwl_lambda).
        params: the pruner's own parameters (its Params dataclass fields, e.g. percdamp).
        engine: EngineOptions, or a mapping of its fields.
        languages: a tag per calibration row; attention_mask: (n, seqlen) for padded rows, whose
            padding stays out of the statistics unless mask_pad_in_stats is False.
        exclude: shell-style patterns over tensor names in a block -> why they stay dense (a 2-D
            tensor the engine does not prune, such as Cohere's qk-norm weights; see arch.py).
        on_block: called as on_block(i, seconds, sparsity) after each block.
    Returns:
        PruneReport with the measured sparsity overall, per block and per matrix, the exclusions
        and the experts pruned by the no-token fallback.
    Raises:
        ValueError: naming the field, before any weight is touched.
    """
    job = prepare(
        calibration,
        method,
        sparsity,
        pattern,
        allocation,
        params=params,
        allocation_params=allocation_params,
        engine=engine,
        languages=languages,
        attention_mask=attention_mask,
        mask_pad_in_stats=mask_pad_in_stats,
        exclude=exclude,
    )
    targets, result = run(model, job, on_block)
    return report_of(job, method, targets, result, [zero_counts(b, job.opts.exclude) for b in find_blocks(model)])
