"""The grid cell: load -> calibrate -> prune -> check sparsity -> evaluate -> write the row.

`run_cell` is the only function that reads the config; everything it calls
takes plain values. Whatever happens, the cell ends by writing result.json
atomically: status `done` with the metrics, or `failed` with the error (and
the traceback beside it in error.txt).
"""
from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import socket
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from mlsweep.data.calibration import PromptSpec, build_calibration, build_prompts, merge_tagged
from mlsweep.data.mixes import sample_counts
from mlsweep.data.sources import source_from
from mlsweep.evaluate.suite import Corpus, Suite
from mlsweep.evaluate.suite import evaluate as evaluate_suite
from mlsweep.modeling import load_model, load_tokenizer, local_folder, resolve_device
from mlsweep.progress import Progress
from mlsweep.prune import prune_model
from mlsweep.prune.stream import prune_checkpoint
from mlsweep.prune.registry import get_pruner
from mlsweep.identity import cell_axes, cell_id, uses_calibration
from mlsweep.jobenv import job_id, job_threads
from mlsweep.lifecycle import MARKER_FILE, finished_row
from mlsweep.results import RESULT_FILE, atomic_write_json, provenance
from mlsweep import tracking
from mlsweep.validate import pruner_params, validate


CHECKPOINT_DIR = "checkpoint"  # per-block pruning checkpoint of a cell (removed once the cell is done)


def _peak_memory() -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_cell(cfg: DictConfig, out_dir: Path, label: str = "cell") -> dict[str, Any]:
    """Run one cell and write its row (`_run_cell`); its tracker run, if it started one, is always closed."""
    tracker = tracking.Guarded(label)
    row = None
    try:
        row = _run_cell(cfg, out_dir, label, tracker)
        return row
    finally:
        tracker.finish(row)  # exit code 0 for a done row, 1 for a failed or interrupted cell (no row)


def _run_cell(cfg: DictConfig, out_dir: Path, label: str, tracker: tracking.Guarded) -> dict[str, Any]:
    """Run one cell and write its row; never raises for a cell-level failure.

    A cell whose folder already holds its `done` row returns that row at once
    (a requeued or re-launched job); a failed row is kept under attempts/ and
    the cell runs again. While it runs, running.json marks the folder, so a
    killed cell is never mistaken for a finished one.
    """
    out_dir = Path(out_dir)
    progress = Progress(label, out_dir)
    try:
        ident: Optional[str] = cell_id(cfg)
    except Exception:  # an invalid config: the try below records why
        ident = None
    finished = finished_row(out_dir, ident) if ident else None
    if finished is not None:
        progress.line("skip", f"already done: {out_dir / RESULT_FILE}")
        return finished
    row: dict[str, Any] = {"cell_id": ident, "status": "running", "error": None}
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(out_dir / MARKER_FILE, {"cell_id": ident, "host": socket.gethostname(), "pid": os.getpid(),
                                              "job_id": job_id(), "started_at": started})
    try:
        row.update(cell_axes(cfg))
        row["cell_id"] = cell_id(cfg)
        with progress.stage("validate"):
            validate(cfg)
        _start_tracker(cfg, out_dir, label, tracker)
        row.update(_execute(cfg, progress, tracker))
        row["status"] = "done"
    except Exception as e:  # the row records it; the sweep goes on
        row["status"] = "failed"
        row["error"] = f"{type(e).__name__}: {e}"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        progress.line("FAILED", row["error"])
    row.update({f"time/{k}_s": round(v, 3) for k, v in progress.seconds.items()})
    row["time/total_s"] = round(time.perf_counter() - progress.start, 3)
    row.update(_peak_memory())
    row.update({"threads": torch.get_num_threads(), "job_id": job_id()})
    row.update(provenance())
    row.update({"started_at": started, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "config": tracking.redact(OmegaConf.to_container(cfg, resolve=False))})
    atomic_write_json(out_dir / RESULT_FILE, row)
    (out_dir / MARKER_FILE).unlink(missing_ok=True)
    if row["status"] == "done":
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
    progress.line(row["status"], str(out_dir / RESULT_FILE))
    return row


def _start_tracker(cfg: DictConfig, out_dir: Path, label: str, into: tracking.Guarded) -> None:
    """Mirror the cell to `logger.name` (plain values only); a problem leaves the cell untracked, never failed."""
    try:
        ident = cell_id(cfg)
        parts = label.split(" ", 2)  # "cell 3/17 <overrides>" in a sweep, else "cell"
        run = tracking.CellRun(name=parts[2] if len(parts) == 3 and parts[2] else ident, cell_id=ident,
                               tags=[f"{k}={v}" for k, v in cell_axes(cfg).items() if k != "pruner_params"],
                               config=tracking.redact(OmegaConf.to_container(cfg, resolve=True)),
                               out_dir=out_dir, label=label)
        options = {k: v for k, v in OmegaConf.to_container(cfg.logger, resolve=True).items() if k != "name"}
    except Exception as e:
        into.fail(e)
        return
    tracking.start(cfg.logger.name, run, options, into)


def _execute(cfg: DictConfig, progress: Progress, tracker: tracking.Guarded) -> dict[str, Any]:
    threads = job_threads(cfg.runtime.threads)
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    if cfg.calib.mix != "target":
        return _prune_and_evaluate(cfg, progress, tracker)
    out: dict[str, Any] = {}
    measured = []
    for lang in cfg.eval.languages:  # the diagonal of Kurz et al.: calibrate in each evaluation language
        sub = target_config(cfg, lang)
        res = _prune_and_evaluate(sub, progress, tracker)
        measured.append(res.pop("sparsity_measured"))
        out.update(res)
    out["sparsity_measured"] = sum(measured) / len(measured)
    return out


def target_config(cfg: DictConfig, lang: str) -> DictConfig:
    """The cell for one evaluation language of a `target` mix: calibrate and evaluate in `lang`."""
    sub = copy.deepcopy(cfg)
    with open_dict(sub):
        sub.calib.mix, sub.calib.languages = "uniform", [lang]
        sub.eval.languages, sub.eval.corpora = [lang], []
        sub.eval.tasks = [t for t in cfg.eval.tasks if t.endswith(f"_{lang}")]
    return sub


def _prune_and_evaluate(cfg: DictConfig, progress: Progress, tracker: tracking.Guarded) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)
    spec = get_pruner(cfg.pruner.name)
    m, e = cfg.model, cfg.engine
    device = resolve_device(m.device)
    out: dict[str, Any] = {}
    with progress.stage("load"):
        if e.stream_from_disk:  # weights are read block by block while pruning
            model, tokenizer = None, load_tokenizer(m.path, m.trust_remote_code, m.revision)
        else:
            home = torch.device("cpu") if e.offload_blocks else device
            model, tokenizer = load_model(m.path, m.dtype, home, m.trust_remote_code, m.revision,
                                          m.attn_implementation)
    calib = None
    if uses_calibration(cfg):
        with progress.stage("calib"):
            calib, counts = _calibration(cfg, tokenizer)
            out.update({f"calib_count/{lang}": n for lang, n in counts.items()})
    def log_block(i: int, seconds: float, sparsity: float) -> None:
        tracker.log({"prune/block": i, "prune/block_sparsity": sparsity, "prune/block_seconds": seconds})

    with progress.stage("prune"):
        model, report = _prune(cfg, spec, model, calib, device, progress.out_dir, log_block)
    out.update({"sparsity_measured": report.overall, "sparsity_per_block": report.per_block,
                "sparsity_allocated": report.allocated, "resumed_blocks": report.resumed})
    if report.resumed:
        progress.line("resume", f"blocks {report.resumed} restored from the cell's checkpoint, not pruned again")
    check_sparsity(report, cfg.sparsity.tolerance, min_d_in(model))
    if cfg.runtime.save_masks and cfg.calib.mix != "target":
        from mlsweep.analysis import MASK_FILE, save_masks

        save_masks(model, progress.out_dir / MASK_FILE)
    with progress.stage("eval"):
        out.update(_evaluate(cfg, model, tokenizer, calib.doc_hashes if calib else set(), tracker.log))
    return out


def _calibration(cfg: DictConfig, tokenizer):
    c, m = cfg.calib, cfg.model
    counts = sample_counts(c.mix, c.nsamples, list(c.languages), m.family, dict(c.weights))
    source = source_from(c.source)
    if c.format != "windows":
        fmt = "translation" if c.format == "translation_code" else c.format
        prompts = PromptSpec(fmt, c.shots, c.pivot, c.direction, c.seqlen or m.seqlen, c.seed)
        calib = build_prompts(tokenizer, source, c.split, counts, prompts)
        if c.format == "translation_code":  # Kim et al.'s BLOOM setting: rows tagged mt and code
            n_code = c.code_nsamples or c.nsamples
            code = build_calibration(tokenizer, {"code": source_from(c.code_source).documents("code", c.split)},
                                     {"code": n_code}, c.seqlen or m.seqlen, c.seed)
            calib = merge_tagged(calib, "mt", code)
            counts = {"mt": len(calib.languages) - n_code, "code": n_code}
        return calib, counts
    docs = {lang: source.documents(lang, c.split) for lang in counts}
    key = json.dumps([OmegaConf.to_container(c.source, resolve=True), c.split], sort_keys=True)
    return build_calibration(tokenizer, docs, counts, c.seqlen or m.seqlen, c.seed, source_key=key), counts


def _checkpoint(cfg: DictConfig, spec, out_dir: Path) -> dict[str, Any]:
    """Where this cell's per-block checkpoint goes (one folder per sub-run of a target mix), if any."""
    wanted = cfg.runtime.checkpoint_blocks
    if not spec.prunes or not (spec.checkpoint_blocks if wanted is None else wanted):
        return {}
    ident = cell_id(cfg)
    return {"checkpoint_dir": out_dir / CHECKPOINT_DIR / ident, "checkpoint_key": ident}


def _prune(cfg: DictConfig, spec, model, calib, device: torch.device, out_dir: Path, on_block=None):
    """Prune in memory, or stream from disk into <cell>/pruned_model and load that for evaluation."""
    s, e, m = cfg.sparsity, cfg.engine, cfg.model
    args = (calib.input_ids if calib else None, cfg.pruner.name, s.target if spec.prunes else 0.0,
            s.pattern if spec.prunes else "unstructured", s.allocation if spec.prunes else "uniform")
    options = dict(owl_lambda=s.owl_lambda, owl_m=s.owl_m, cwl_lambda=s.cwl_lambda,
                   languages=calib.languages if calib else None,
                   attention_mask=calib.attention_mask if calib else None,
                   mask_pad_in_stats=cfg.calib.mask_pad_in_stats,
                   batch_size=e.calib_batch_size, propagation=e.propagation, true_sequential=e.true_sequential,
                   device=device, activations_on_cpu=e.activations_on_cpu, **_checkpoint(cfg, spec, out_dir),
                   on_block=on_block, **pruner_params(cfg))
    if not e.stream_from_disk:
        report = prune_model(model, *args, **options)
        return model.to(device), report
    pruned = out_dir / "pruned_model"
    report = prune_checkpoint(local_folder(m.path, m.revision), pruned, *args, dtype=m.dtype, **options)
    model, _ = load_model(str(pruned), m.dtype, device, m.trust_remote_code, None, m.attn_implementation)
    return model, report


def min_d_in(model) -> int:
    from mlsweep.prune.arch import find_blocks, find_linears

    return min(lin.in_features for block in find_blocks(model) for lin in find_linears(block).values())


def check_sparsity(report, tolerance: float, d_in: int) -> None:
    """Fail before evaluation when the pruned model is not at its target sparsity.

    Per-row pruning removes int(d_in * s) weights a row, so a narrow layer can
    miss s by up to 1/d_in; that granularity is added to the tolerance.
    """
    allowed = tolerance + (1.0 / d_in if report.target > 0 else 0.0)
    if abs(report.overall - report.target) > allowed:
        raise RuntimeError(f"measured sparsity {report.overall:.4f} misses sparsity.target={report.target} "
                           f"by more than {allowed:.4f} (sparsity.tolerance={tolerance} + 1/d_in)")


def eval_suite(cfg: DictConfig, seqlen: int) -> Suite:
    """The eval config as plain values (sources built, nothing loaded yet)."""
    e = cfg.eval
    corpora = [Corpus("ppl", source_from(e.source), e.split, list(e.languages), e.max_windows)]
    corpora += [Corpus(c.key, source_from(c.source), c.split, list(c.languages), c.max_windows) for c in e.corpora]
    scorers = {"kim_xnli": source_from(e.kim_xnli)} if any(t.startswith("kim_xnli_") for t in e.tasks) else {}
    return Suite(corpora, e.seqlen or seqlen, e.batch_size, list(e.tasks), e.limit, e.num_fewshot,
                 list(e.include_paths), scorers)


def _evaluate(cfg: DictConfig, model, tokenizer, calib_hashes: set[str], on_metrics=None) -> dict[str, Any]:
    return evaluate_suite(model, tokenizer, eval_suite(cfg, cfg.model.seqlen), calib_hashes, on_metrics)
