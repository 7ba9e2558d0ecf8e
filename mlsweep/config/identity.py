"""A cell's identity: its grid coordinates and the hash of everything that determines its numbers.

The sweeper folds grid points with equal ids (dense ignores calibration and
sparsity), skips cells whose id already has a `done` row in the sweep folder,
and the tables group rows by the axes. Settings that change where or how fast
something is computed, not what (threads, offloading, the tracker), stay out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Optional

from mlsweep.data.calibration import CalibRequest
from mlsweep.data.mixes import MIXES
from mlsweep.prune.masks import SparsityTarget
from mlsweep.prune.registry import PrunerSpec

# Bumped whenever a code change alters the numbers a cell produces (a pruner's maths, sampling,
# evaluation), so rows computed before no longer count as done. Not the git sha: a README edit
# must not invalidate a finished study. 2: acc_lang counts FLORES/ISO 639-3 task names; explicit lm-eval
# max_length. 3: per-language statistics with Wanda's running mean; the cell id hashes only the
# sparsity settings the cell's allocation reads.
RESULTS_VERSION = 3
# Engine settings that change where or how fast a cell computes, not what: not part of its identity.
WHERE_NOT_WHAT = ("offload_blocks", "stream_from_disk", "activations_on_cpu")
# Model settings of the same kind: which devices evaluate the model (mlsweep.devicemap).
MODEL_WHERE_NOT_WHAT = ("device_map", "max_memory")
# Axes that name the cell or follow from others: not hashed again.
DERIVED_AXES = ("experiment", "reading")
EMPTY: Mapping[str, Any] = MappingProxyType({})


def cell_axes(
    cfg: Mapping[str, Any],
    pruner: PrunerSpec,
    params: Mapping[str, Any],
    target: Optional[SparsityTarget],
    calib: Optional[CalibRequest],
    reading: str = "",
) -> dict[str, Any]:
    """The grid coordinates of a cell; axes a pruner ignores are '-' (dense: no calib, no sparsity).

    `reading` names the options that choose a reading of a paper (M-Wanda's probability source and
    aggregate, CWL's direction); it follows from pruner_params and the sparsity settings.
    """
    per_language = calib is not None and MIXES.get(calib.mix).per_eval_language
    return {
        "experiment": cfg["name"],
        "model": cfg["model"]["name"],
        "pruner": pruner.name,
        "pruner_params": json.dumps(dict(params), sort_keys=True),
        "calib": calib.name if calib else "-",
        "calib_languages": (calib.mix if per_language else ",".join(calib.languages)) if calib else "-",
        "calib_source": calib.source.name if calib else "-",
        "nsamples": calib.nsamples if calib else 0,
        "calib_seed": calib.seed if calib else -1,
        "sparsity_target": float(target.sparsity) if target else 0.0,
        "sparsity_pattern": target.pattern if target else "-",
        "sparsity_allocation": cfg["sparsity"]["allocation"] if target else "-",
        "reading": reading or "-",
        "eval_suite": cfg["eval"]["name"],
        "seed": cfg["seed"],
    }


def cell_id(
    axes: Mapping[str, Any],
    resolved: Mapping[str, Any],
    raw: Mapping[str, Any],
    prunes: bool,
    calibrated: bool,
    allocation_params: Mapping[str, Any] = EMPTY,
) -> str:
    """Hash of what determines the cell's numbers: axes, model, calibration, sparsity, engine and eval settings.

    The model node is taken unresolved: the testbed's path is an interpolation, so the id does not
    depend on where the checkout lives. Of the sparsity settings only those the cell's allocation
    reads count (a uniform cell does not change with cwl_direction); `reading` is derived, not counted.
    """
    ident: dict[str, Any] = {
        "axes": {k: v for k, v in axes.items() if k not in DERIVED_AXES},
        # an empty model.exclude is what every model had before the key existed: keep those ids
        "model": {k: v for k, v in raw["model"].items() if k not in MODEL_WHERE_NOT_WHAT and (k != "exclude" or v)},
        "eval": resolved["eval"],
    }
    if prunes:
        ident["sparsity"] = {k: raw["sparsity"][k] for k in ("target", "pattern", "allocation")}
        ident["sparsity"].update(allocation_params)
        ident["engine"] = {k: v for k, v in raw["engine"].items() if k not in WHERE_NOT_WHAT}
    if calibrated:
        ident["calib"] = resolved["calib"]
    ident["results_version"] = RESULTS_VERSION
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
