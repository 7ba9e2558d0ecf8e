"""The grid cell: load -> calibrate -> prune -> check sparsity -> evaluate -> write the row.

`run_cell` is the only function that reads the config; everything it calls
takes plain values. Whatever happens, the cell ends by writing result.json
atomically: status `done` with the metrics, or `failed` with the error (and
the traceback beside it in error.txt).
"""
from __future__ import annotations

import copy
import hashlib
import json
import resource
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
from mlsweep.results import RESULT_FILE, atomic_write_json, provenance
from mlsweep.validate import pruner_params, validate


def uses_calibration(cfg: DictConfig) -> bool:
    """Whether the calibration set changes this cell's numbers (OWL needs it even for magnitude)."""
    spec = get_pruner(cfg.pruner.name)
    return spec.needs_calibration or (spec.prunes and cfg.sparsity.allocation != "uniform")


def cell_axes(cfg: DictConfig) -> dict[str, Any]:
    """The grid coordinates of a cell; axes a pruner ignores are '-' (dense: no calib, no sparsity)."""
    spec = get_pruner(cfg.pruner.name)
    calibrated = uses_calibration(cfg)
    return {
        "experiment": cfg.name,
        "model": cfg.model.name,
        "pruner": cfg.pruner.name,
        "pruner_params": json.dumps(pruner_params(cfg), sort_keys=True),
        "calib": cfg.calib.name if calibrated else "-",
        "calib_languages": (",".join(cfg.calib.languages) if cfg.calib.mix != "target" else "target")
        if calibrated else "-",
        "calib_source": cfg.calib.source.name if calibrated else "-",
        "nsamples": cfg.calib.nsamples if calibrated else 0,
        "calib_seed": cfg.calib.seed if calibrated else -1,
        "sparsity_target": float(cfg.sparsity.target) if spec.prunes else 0.0,
        "sparsity_pattern": cfg.sparsity.pattern if spec.prunes else "-",
        "sparsity_allocation": cfg.sparsity.allocation if spec.prunes else "-",
        "eval_suite": cfg.eval.name,
        "seed": cfg.seed,
    }


def cell_id(cfg: DictConfig) -> str:
    """Hash of what determines the cell's numbers: axes, model, calibration and eval settings."""
    spec = get_pruner(cfg.pruner.name)
    # unresolved: the testbed's path is an interpolation, so the id does not depend on the checkout's place
    ident = {"axes": cell_axes(cfg), "model": OmegaConf.to_container(cfg.model, resolve=False),
             "eval": OmegaConf.to_container(cfg.eval, resolve=True)}
    if spec.prunes:
        ident["sparsity"] = {k: v for k, v in OmegaConf.to_container(cfg.sparsity).items() if k != "tolerance"}
        where = ("offload_blocks", "stream_from_disk", "activations_on_cpu")  # where, not what, is computed
        ident["engine"] = {k: v for k, v in OmegaConf.to_container(cfg.engine).items() if k not in where}
    if uses_calibration(cfg):
        ident["calib"] = OmegaConf.to_container(cfg.calib, resolve=True)
    ident["axes"].pop("experiment")
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def _peak_memory() -> dict[str, float]:
    out = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_cell(cfg: DictConfig, out_dir: Path, label: str = "cell") -> dict[str, Any]:
    """Run one cell and write its row; never raises for a cell-level failure."""
    out_dir = Path(out_dir)
    progress = Progress(label, out_dir)
    row: dict[str, Any] = {"cell_id": None, "status": "running", "error": None}
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        row.update(cell_axes(cfg))
        row["cell_id"] = cell_id(cfg)
        with progress.stage("validate"):
            validate(cfg)
        row.update(_execute(cfg, progress))
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
    row.update(provenance())
    row.update({"started_at": started, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "config": OmegaConf.to_container(cfg, resolve=False)})
    atomic_write_json(out_dir / RESULT_FILE, row)
    progress.line(row["status"], str(out_dir / RESULT_FILE))
    return row


def _execute(cfg: DictConfig, progress: Progress) -> dict[str, Any]:
    if cfg.runtime.threads > 0:
        torch.set_num_threads(cfg.runtime.threads)
    if cfg.calib.mix != "target":
        return _prune_and_evaluate(cfg, progress)
    out: dict[str, Any] = {}
    measured = []
    for lang in cfg.eval.languages:  # the diagonal of Kurz et al.: calibrate in each evaluation language
        sub = target_config(cfg, lang)
        res = _prune_and_evaluate(sub, progress)
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


def _prune_and_evaluate(cfg: DictConfig, progress: Progress) -> dict[str, Any]:
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
    with progress.stage("prune"):
        model, report = _prune(cfg, spec, model, calib, device, progress.out_dir)
    out.update({"sparsity_measured": report.overall, "sparsity_per_block": report.per_block,
                "sparsity_allocated": report.allocated})
    check_sparsity(report, cfg.sparsity.tolerance, min_d_in(model))
    if cfg.runtime.save_masks and cfg.calib.mix != "target":
        from mlsweep.analysis import MASK_FILE, save_masks

        save_masks(model, progress.out_dir / MASK_FILE)
    with progress.stage("eval"):
        out.update(_evaluate(cfg, model, tokenizer, calib.doc_hashes if calib else set()))
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


def _prune(cfg: DictConfig, spec, model, calib, device: torch.device, out_dir: Path):
    """Prune in memory, or stream from disk into <cell>/pruned_model and load that for evaluation."""
    s, e, m = cfg.sparsity, cfg.engine, cfg.model
    args = (calib.input_ids if calib else None, cfg.pruner.name, s.target if spec.prunes else 0.0,
            s.pattern if spec.prunes else "unstructured", s.allocation if spec.prunes else "uniform")
    options = dict(owl_lambda=s.owl_lambda, owl_m=s.owl_m, cwl_lambda=s.cwl_lambda,
                   languages=calib.languages if calib else None,
                   attention_mask=calib.attention_mask if calib else None,
                   mask_pad_in_stats=cfg.calib.mask_pad_in_stats,
                   batch_size=e.calib_batch_size, propagation=e.propagation, true_sequential=e.true_sequential,
                   device=device, activations_on_cpu=e.activations_on_cpu, **pruner_params(cfg))
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


def _evaluate(cfg: DictConfig, model, tokenizer, calib_hashes: set[str]) -> dict[str, Any]:
    return evaluate_suite(model, tokenizer, eval_suite(cfg, cfg.model.seqlen), calib_hashes)
