"""The result row: one flat, self-describing record per cell.

`ROW_SCHEMA` documents every key (the README's "Result schema" is held equal
to it by a test). Provenance (versions, git sha, host) is gathered here so
every number in a table can be traced to the code and config that produced it.
"""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from typing import Any

from mlsweep import PACKAGE_DIR, __version__

# The columns of a row that say what a cell computes (its grid coordinates, mlsweep.config.spec),
# and the seeds the tables average over unless a spec names them.
AXES = (
    "experiment",
    "model",
    "pruner",
    "pruner_params",
    "calib",
    "calib_languages",
    "calib_source",
    "nsamples",
    "sparsity_target",
    "sparsity_pattern",
    "sparsity_allocation",
    "reading",
    "eval_suite",
)
SEED_AXES = ("calib_seed", "seed")

# The documented row (README "Result schema"); a test holds every cell to it.
ROW_SCHEMA: dict[str, str] = {
    "cell_id": "hash of what determines the cell's numbers (axes, model, calibration and eval settings)",
    "status": "done | failed (running rows are never written)",
    "error": "exception type and message when failed, else null (traceback in error.txt)",
    "experiment": "experiment name (first folder under outputs/)",
    "model": "model option name",
    "pruner": "pruner option name",
    "pruner_params": "JSON of the pruner's parameters",
    "calib": "calibration mix name; '-' for pruners that use no data",
    "calib_languages": "comma-separated calibration languages; '-' if none",
    "calib_source": "text source of the calibration set; '-' if none",
    "nsamples": "calibration windows (0 if none)",
    "calib_seed": "seed of the calibration sampling (-1 if none)",
    "sparsity_target": "target fraction of zeros in block matrices (0 for dense)",
    "sparsity_pattern": "unstructured | N:M ('-' for dense)",
    "sparsity_allocation": "uniform | owl | cwl: how the target is spread over blocks ('-' for dense)",
    "reading": (
        "the options that choose a reading of a paper (M-Wanda: prob=<prob_source>, agg=<aggregate>; "
        "CWL: cwl=<cwl_direction>); '-' if none"
    ),
    "eval_suite": "eval option name",
    "seed": "global seed",
    "calib_count/<lang>": "calibration windows drawn per language",
    "sparsity_measured": (
        "zeros / weights over every matrix the engine prunes in the decoder blocks (linears, Conv1D, expert matrices)"
    ),
    "sparsity_per_block": "list, measured sparsity of each block",
    "sparsity_allocated": "list, target sparsity given to each block (OWL varies it)",
    "resumed_blocks": "list, blocks restored from the cell's checkpoint after a restart (empty: pruned in one go)",
    "sparsity_excluded": (
        "dict, >=2-D block tensors left dense and out of sparsity_measured -> reason ('router', or model.exclude's)"
    ),
    "experts_fallback": "MoE experts (over all blocks) that no calibration token reached, pruned by magnitude instead",
    "ppl/<lang>": "perplexity on the eval split (non-overlapping seqlen windows)",
    "eval_tokens/<lang>": "tokens scored for ppl/<lang>",
    "eval_windows/<lang>": "windows scored for ppl/<lang>",
    "bpb/<lang>": "bits per UTF-8 byte of the text scored for ppl/<lang> (comparable across tokenizers)",
    "bpc/<lang>": "bits per character of the same text",
    "ppl_<corpus>/<lang>": (
        "the same metrics for a further corpus of the suite (ppl_<corpus>_bpb, _bpc, _tokens, _windows)"
    ),
    "acc/<task>": "lm-eval accuracy of a task or group (or a project scorer such as kim_xnli_<lang>)",
    "acc_norm/<task>": "length-normalised accuracy, where lm-eval reports it",
    "acc_stderr/<task>": "its standard error (acc_norm_stderr likewise)",
    "n/<task>": "items evaluated",
    "acc_lang/<lang>": (
        "mean accuracy over the suite's tasks of one language (its code at the end of the task name: ISO 639-1, "
        "639-3 or FLORES, e.g. belebele_zho_Hans counts for zh)"
    ),
    "truncated/<task>": "lm-eval requests of the task whose context was cut from the left (eval.truncate_long)",
    "eval_max_length": "tokens per lm-eval request: eval.max_length, else the model's context",
    "eval_chat_template": "eval.apply_chat_template: prompts rendered with the tokenizer's chat template",
    "eval_system_instruction": "eval.system_instruction given to lm-eval (null: none)",
    "eval_fewshot_as_multiturn": "eval.fewshot_as_multiturn: few-shot examples as chat turns (with a chat template)",
    "eval_truncate_long": "eval.truncate_long: requests longer than eval_max_length allowed, left-truncated",
    "eval_devices": "devices holding the evaluated model's weights, comma-separated (several with model.device_map)",
    "time/<stage>_s": "seconds per stage: validate, load, calib, prune, place (onto the eval devices), eval; and total",
    "peak_rss_mb": "peak resident memory of the process so far (MB)",
    "model_source": "loaded, or restored:copy / restored:files: the process's previous cell of this model, "
    "its dense weights put back (mlsweep.cell.modelcache); absent when streamed from disk",
    "threads": "torch threads the cell computed with (runtime.threads, the launcher's share, or SLURM's CPUs)",
    "job_id": "SLURM job (array jobs: <array>_<task>) that ran the cell; null when run locally",
    "peak_gpu_mb": "peak CUDA memory allocated (MB), only with a GPU",
    "git_sha": "HEAD of the mlsweep checkout that ran the cell",
    "git_dirty": "true if tracked files had uncommitted changes",
    "host": "machine name",
    "version/<package>": "versions of mlsweep, python, torch, transformers, ...",
    "started_at": "UTC start time",
    "finished_at": "UTC end time",
    "config": "the cell's full config (nested; interpolations unresolved)",
}
_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "hydra-core",
    "omegaconf",
    "lm_eval",
    "wandb",
    "submitit",
    "pandas",
    "numpy",
)


def versions() -> dict[str, str]:
    out = {"mlsweep": __version__, "python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def git_state() -> dict[str, Any]:
    """HEAD sha and whether the work tree had uncommitted changes."""
    root = PACKAGE_DIR.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        return {
            "git_sha": git("rev-parse", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "unknown", "git_dirty": None}


def provenance() -> dict[str, Any]:
    return {**git_state(), "host": socket.gethostname(), **{f"version/{k}": v for k, v in versions().items()}}
