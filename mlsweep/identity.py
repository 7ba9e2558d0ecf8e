"""A cell's identity: its grid coordinates and the hash of everything that determines its numbers.

The sweeper folds grid points with equal ids (dense ignores calibration and
sparsity), skips cells whose id already has a `done` row in the sweep folder,
and the tables group rows by the axes. Settings that change where or how fast
something is computed, not what (threads, offloading, the tracker), stay out.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlsweep.prune.registry import get_pruner
from mlsweep.validate import pruner_params

# Bumped whenever a code change alters the numbers a cell produces (a pruner's maths, sampling,
# evaluation), so rows computed before no longer count as done. Not the git sha: a README edit
# must not invalidate a finished study.
RESULTS_VERSION = 1


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
    ident["results_version"] = RESULTS_VERSION
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
