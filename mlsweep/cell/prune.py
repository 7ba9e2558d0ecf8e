"""One pass of a cell: load the model, build its calibration set, prune, check the sparsity, evaluate.

Plain values in (a CellSpec and one of its passes), metrics out. The model
is loaded in memory, kept on the CPU with one block at a time on the device
(`engine.offload_blocks`, and always with `model.device_map`), or never
loaded whole: streamed block by block from its safetensors into
<cell>/pruned_model, which evaluation then loads (`engine.stream_from_disk`).
For evaluation the pruned model goes to the one device, or with
`model.device_map` is spread over the job's devices (mlsweep.devicemap),
with a fresh offload folder inside the cell folder removed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Optional

import torch

from mlsweep.cell import modelcache
from mlsweep.cell.progress import Progress
from mlsweep.config.spec import CellSpec, Pass
from mlsweep.data.formats import calibrate
from mlsweep.devicemap import devices_of, dispatch, infer_map, load_spread, offload_folder
from mlsweep.evaluate.requests import suite_lengths
from mlsweep.evaluate.suite import eval_max_length, evaluate
from mlsweep.evaluate.tasklist import harness_tasks
from mlsweep.modeling import DTYPES, load_model, load_tokenizer, local_folder, resolve_device
from mlsweep.prune import prune_model
from mlsweep.prune.arch import find_blocks, find_matrices
from mlsweep.prune.maskfile import MASK_FILE, save_masks
from mlsweep.prune.stream import prune_checkpoint
from mlsweep.results.items import Items

Log = Callable[[dict[str, Any]], None]


def prune_and_evaluate(
    spec: CellSpec,
    p: Pass,
    progress: Progress,
    log: Log,
    checkpoint_dir: Optional[Path],
    items: Optional[Items] = None,
) -> dict[str, Any]:
    """The metrics of one pass: calibration counts, measured sparsity, evaluation (per-item results into `items`)."""
    torch.manual_seed(spec.seed)
    model_spec, engine = spec.model, spec.engine
    device = resolve_device(model_spec.device)
    out: dict[str, Any] = {}
    with progress.stage("load"):
        if engine.stream_from_disk:  # weights are read block by block while pruning
            model, tokenizer = None, load_tokenizer(model_spec.path, model_spec.trust_remote_code, model_spec.revision)
        else:
            model, tokenizer, out["model_source"] = _load(spec, device)
    calib = None
    if p.calib is not None:
        with progress.stage("calib"):
            calib, counts = calibrate(p.calib, tokenizer)
            out.update({f"calib_count/{lang}": n for lang, n in counts.items()})

    def log_block(i: int, seconds: float, sparsity: float) -> None:
        log({"prune/block": i, "prune/block_sparsity": sparsity, "prune/block_seconds": seconds})
        progress.block_done(i)

    with progress.stage("prune"):
        model, report = _prune(spec, p, model, calib, device, progress.out_dir, checkpoint_dir, log_block)
    folder = progress.out_dir / "pruned_model" if model is None else None  # streamed: load the pruned checkpoint
    if folder is None and spec.runtime.save_masks and len(spec.passes) == 1:
        save_masks(model, progress.out_dir / MASK_FILE, model_spec.exclude)  # before the weights are spread
    with ExitStack() as stack:
        with progress.stage("place"):
            model = stack.enter_context(placed(spec, model, folder, device, progress.out_dir))
        return {**out, **_check_and_evaluate(spec, p, model, report, calib, tokenizer, progress, log, items)}


def _load(spec: CellSpec, device: torch.device) -> tuple[Any, Any, str]:
    """(model, tokenizer, how it came): kept from the process's previous cell of this model when it can be
    restored exactly (one device: mlsweep.cell.modelcache), else loaded."""
    m = spec.model
    home = torch.device("cpu") if spec.engine.offload_blocks or m.device_map else device

    def load():
        return load_model(m.path, m.dtype, home, m.trust_remote_code, m.revision, m.attn_implementation)

    if home != device:  # blocks visit the device one at a time, or accelerate spreads the model: load afresh
        return (*load(), modelcache.LOADED)
    key = (m.path, m.revision, m.dtype, str(home), m.trust_remote_code, m.attn_implementation)
    return modelcache.model_for_cell(key, load, m.path, m.revision)


def _check_and_evaluate(
    spec: CellSpec, p: Pass, model, report, calib, tokenizer, progress: Progress, log: Log, items: Optional[Items]
):
    out: dict[str, Any] = {}
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
    check_sparsity(report, spec.tolerance, min_d_in(model, spec.model.exclude))
    check_finite_weights(model)
    if spec.runtime.save_masks and len(spec.passes) == 1 and spec.engine.stream_from_disk:
        save_masks(model, progress.out_dir / MASK_FILE, spec.model.exclude)
    with progress.stage("eval"):
        out.update(evaluate(model, tokenizer, p.suite, calib.doc_hashes if calib else set(), log, items))
    out.update(p.suite.settings(eval_max_length(model.config, p.suite)))
    out["eval_devices"] = devices_of(model)
    if p.suite.tasks:
        model_spec = spec.model
        lengths = suite_lengths(model_spec.path, model_spec.trust_remote_code, model_spec.revision, spec.suite)
        out.update({f"truncated/{t}": lengths[t].truncated for t in harness_tasks(p.suite) if t in lengths})
    return out


@contextmanager
def placed(spec: CellSpec, model, folder: Optional[Path], device: torch.device, out_dir: Path) -> Iterator[Any]:
    """The pruned model ready for evaluation: on the one device, or spread by model.device_map.

    `model` is the in-memory pruned model, or None with `folder` the streamed pruned checkpoint.
    """
    model_spec = spec.model
    if model_spec.device_map is None:
        if model is None:
            model, _ = load_model(
                str(folder),
                model_spec.dtype,
                device,
                model_spec.trust_remote_code,
                None,
                model_spec.attn_implementation,
            )
        yield model.to(device)
        return
    with offload_folder(out_dir) as offload:  # fresh and empty: accelerate reuses a folder's stale index
        if model is None:
            kwargs = {"trust_remote_code": model_spec.trust_remote_code}
            if model_spec.attn_implementation:
                kwargs["attn_implementation"] = model_spec.attn_implementation
            model = load_spread(
                str(folder), DTYPES[model_spec.dtype], model_spec.device_map, model_spec.max_memory, offload, **kwargs
            )
        else:
            model = dispatch(
                model, infer_map(model, model_spec.device_map, model_spec.max_memory, DTYPES[model_spec.dtype]), offload
            )
        yield model


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
    """(model, report): pruned in memory where it was loaded, or (None, report) streamed into <cell>/pruned_model."""
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
        return model, prune_model(model, *args, **options)
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
    return None, report


def min_d_in(model, exclude) -> int:
    return min(matrix.d_in for block in find_blocks(model) for matrix in find_matrices(block, exclude).values())


FINITE_CHUNK = 1 << 24  # elements checked at once: a 16 MB mask, whatever the size of the embedding matrix


def check_finite_weights(model) -> None:
    """NaN or infinite weights fail the cell before evaluation, whatever its suite measures.

    A broken checkpoint or an fp16 overflow gives NaN perplexities, which the row's own
    check catches, but an lm-eval accuracy of such a model is finite (an argmax over NaN
    log-likelihoods) and would reach a table. Offloaded (meta) weights are not in memory.
    """
    bad = []
    for name, weight in model.named_parameters():
        flat = weight.detach().reshape(-1)
        if flat.device.type == "meta":
            continue
        if any(not torch.isfinite(flat[i : i + FINITE_CHUNK]).all() for i in range(0, flat.numel(), FINITE_CHUNK)):
            bad.append(name)
    if bad:
        raise FloatingPointError(
            f"weights not finite: {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} "
            "(check the checkpoint at model.path and model.dtype)"
        )


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
