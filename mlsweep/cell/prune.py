"""One pass of a cell: load the model, build its calibration set, prune, check the sparsity, evaluate.

Plain values in (a CellSpec and one of its passes), metrics out. The model
is loaded in memory, kept on the CPU with one block at a time on the device
(`engine.offload_blocks`), or never loaded whole: streamed block by block
from its safetensors into <cell>/pruned_model, which evaluation then loads
(`engine.stream_from_disk`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch

from mlsweep.cell.progress import Progress
from mlsweep.config.spec import CellSpec, Pass
from mlsweep.data.formats import calibrate
from mlsweep.evaluate.suite import evaluate
from mlsweep.modeling import load_model, load_tokenizer, local_folder, resolve_device
from mlsweep.prune import prune_model
from mlsweep.prune.arch import find_blocks, find_matrices
from mlsweep.prune.maskfile import MASK_FILE, save_masks
from mlsweep.prune.stream import prune_checkpoint

Log = Callable[[dict[str, Any]], None]


def prune_and_evaluate(
    spec: CellSpec, p: Pass, progress: Progress, log: Log, checkpoint_dir: Optional[Path]
) -> dict[str, Any]:
    """The metrics of one pass: calibration counts, measured sparsity, evaluation."""
    torch.manual_seed(spec.seed)
    model_spec, engine = spec.model, spec.engine
    device = resolve_device(model_spec.device)
    out: dict[str, Any] = {}
    with progress.stage("load"):
        if engine.stream_from_disk:  # weights are read block by block while pruning
            model, tokenizer = None, load_tokenizer(model_spec.path, model_spec.trust_remote_code, model_spec.revision)
        else:
            home = torch.device("cpu") if engine.offload_blocks else device
            model, tokenizer = load_model(
                model_spec.path,
                model_spec.dtype,
                home,
                model_spec.trust_remote_code,
                model_spec.revision,
                model_spec.attn_implementation,
            )
    calib = None
    if p.calib is not None:
        with progress.stage("calib"):
            calib, counts = calibrate(p.calib, tokenizer)
            out.update({f"calib_count/{lang}": n for lang, n in counts.items()})

    def log_block(i: int, seconds: float, sparsity: float) -> None:
        log({"prune/block": i, "prune/block_sparsity": sparsity, "prune/block_seconds": seconds})

    with progress.stage("prune"):
        model, report = _prune(spec, p, model, calib, device, progress.out_dir, checkpoint_dir, log_block)
    out.update(
        {
            "sparsity_measured": report.overall,
            "sparsity_per_block": report.per_block,
            "sparsity_allocated": report.allocated,
            "resumed_blocks": report.resumed,
            "sparsity_excluded": report.excluded,
            "experts_fallback": len(report.fallback_experts),
        }
    )
    if report.fallback_experts:
        progress.line(
            "prune", f"{len(report.fallback_experts)} experts got no calibration token, pruned by magnitude instead"
        )
    if report.resumed:
        progress.line("resume", f"blocks {report.resumed} restored from the cell's checkpoint, not pruned again")
    check_sparsity(report, spec.tolerance, min_d_in(model, model_spec.exclude))
    if spec.runtime.save_masks and len(spec.passes) == 1:
        save_masks(model, progress.out_dir / MASK_FILE, model_spec.exclude)
    with progress.stage("eval"):
        out.update(evaluate(model, tokenizer, p.suite, calib.doc_hashes if calib else set(), log))
    return out


def _prune(
    spec: CellSpec,
    p: Pass,
    model,
    calib,
    device: torch.device,
    out_dir: Path,
    checkpoint_dir: Optional[Path],
    on_block=None,
):
    """Prune in memory, or stream from disk into <cell>/pruned_model and load that for evaluation."""
    model_spec, target = spec.model, spec.target
    args = (
        calib.input_ids if calib else None,
        spec.pruner.name,
        target.sparsity if target else 0.0,
        target.pattern if target else "unstructured",
        spec.allocation.name if spec.allocation else "uniform",
    )
    engine = spec.engine.options(device, checkpoint_dir, checkpoint_dir.name if checkpoint_dir else "")
    options = dict(
        params=spec.pruner_params,
        allocation_params=spec.allocation_params,
        engine=engine,
        languages=calib.languages if calib else None,
        attention_mask=calib.attention_mask if calib else None,
        mask_pad_in_stats=p.calib.mask_pad_in_stats if p.calib else True,
        exclude=model_spec.exclude,
        on_block=on_block,
    )
    if not spec.engine.stream_from_disk:
        report = prune_model(model, *args, **options)
        return model.to(device), report
    pruned = out_dir / "pruned_model"
    source = local_folder(model_spec.path, model_spec.revision)
    report = prune_checkpoint(
        source,
        pruned,
        *args,
        dtype=model_spec.dtype,
        attn_implementation=model_spec.attn_implementation,
        **options,
    )
    model, _ = load_model(
        str(pruned), model_spec.dtype, device, model_spec.trust_remote_code, None, model_spec.attn_implementation
    )
    return model, report


def min_d_in(model, exclude) -> int:
    return min(matrix.d_in for block in find_blocks(model) for matrix in find_matrices(block, exclude).values())


def check_sparsity(report, tolerance: float, d_in: int) -> None:
    """Fail before evaluation when the pruned model is not at its target sparsity.

    Per-row pruning removes int(d_in * s) weights a row, so a narrow layer can
    miss s by up to 1/d_in; that granularity is added to the tolerance.
    """
    allowed = tolerance + (1.0 / d_in if report.target > 0 else 0.0)
    if abs(report.overall - report.target) > allowed:
        raise RuntimeError(
            f"measured sparsity {report.overall:.4f} misses sparsity.target={report.target} "
            f"by more than {allowed:.4f} (sparsity.tolerance={tolerance} + 1/d_in)"
        )
