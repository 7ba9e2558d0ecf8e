"""CellSpec: everything one grid cell computes, as plain values, built once from the composed config.

`CellSpec.from_config(cfg)` is the only function of mlsweep that reads the
composed Hydra config (the Hydra-facing shells only hand it over). It turns
every option name into its registry entry (pruner, allocation, calibration
mix and format, tracker), checks every value that needs no disk (ranges,
unknown keys, cross-field rules) and raises ConfigError naming the field.
Everything downstream (the cell, the sweeper, the cost model, the launchers,
the tracker) takes the CellSpec; the checks that read the disk (model
config, corpora, lm-eval tasks) are `mlsweep.config.validate.validate(spec)`.

A cell's identity (its grid coordinates `axes` and `cell_id`, the hash of
everything that determines its numbers) is computed by mlsweep.config.identity;
the sections' own specs and builders are in mlsweep.config.parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Optional

from omegaconf import DictConfig

from mlsweep.config.errors import ConfigError
from mlsweep.config.identity import RESULTS_VERSION, cell_axes, cell_id
from mlsweep.config.keys import unknown_keys
from mlsweep.config.parts import (
    EngineSettings,
    LoggerSpec,
    ModelSpec,
    Pass,
    RuntimeSpec,
    calib_request,
    model_spec,
    suite_spec,
)
from mlsweep.config.plain import plain
from mlsweep.data.calibration import CalibRequest
from mlsweep.data.formats import FORMATS
from mlsweep.data.mixes import MIXES
from mlsweep.evaluate.suite import SuiteSpec
from mlsweep.prune.allocation import ALLOCATIONS, AllocationSpec
from mlsweep.prune.masks import SparsityTarget, make_target
from mlsweep.prune.registry import PrunerSpec, get_pruner
from mlsweep.tracking import TRACKERS

__all__ = [
    "RESULTS_VERSION",
    "CellSpec",
    "ConfigError",
    "EngineSettings",
    "LoggerSpec",
    "ModelSpec",
    "Pass",
    "RuntimeSpec",
]


@dataclass(frozen=True)
class CellSpec:
    """Everything one grid cell computes, as plain values (built once, checked once)."""

    experiment: str
    seed: int
    axes: Mapping[str, Any]  # grid coordinates; '-' where the pruner ignores an axis
    cell_id: str  # hash of what determines the numbers (see RESULTS_VERSION)
    model: ModelSpec
    pruner: PrunerSpec
    params: Any  # the pruner's validated Params instance (None when it has none)
    pruner_params: Mapping[str, Any]  # the same as plain values, for the engine and the row
    target: Optional[SparsityTarget]  # None for the dense baseline
    tolerance: float
    allocation: Optional[AllocationSpec]  # None for the dense baseline
    allocation_params: Mapping[str, Any]
    calib: Optional[CalibRequest]  # None when calibration data cannot change the numbers
    suite: SuiteSpec
    passes: tuple[Pass, ...]
    engine: EngineSettings
    runtime: RuntimeSpec
    logger: LoggerSpec
    config: Mapping[str, Any]  # the composed config, interpolations unresolved (the row's `config`)
    resolved: Mapping[str, Any]  # the same, resolved (what a tracker records)

    @property
    def checkpoints(self) -> bool:
        """Whether pruned blocks are saved for a restart: runtime.checkpoint_blocks, else the pruner's default."""
        wanted = self.runtime.checkpoint_blocks
        return self.target is not None and (self.pruner.checkpoint_blocks if wanted is None else wanted)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> CellSpec:
        """Build and check the spec of a composed cell config; raises ConfigError naming the field."""
        try:
            bad = unknown_keys(cfg)
            if bad:
                raise ConfigError(bad[0])
            return _build(plain(cfg, resolve=True), plain(cfg, resolve=False))
        except ConfigError:
            raise
        except ValueError as e:  # the registries and the engine's own checks name their field
            raise ConfigError(str(e)) from e


def _passes(calib: Optional[CalibRequest], suite: SuiteSpec) -> tuple[Pass, ...]:
    if calib is None or not MIXES.get(calib.mix).per_eval_language:
        return (Pass(None, calib, suite),)
    # the diagonal of Kurz et al. in one cell: calibrate and evaluate in each evaluation language alone
    return tuple(Pass(lang, replace(calib, languages=(lang,)), suite.only(lang)) for lang in suite.languages)


def _sparsity(node: Mapping[str, Any], pruner: PrunerSpec):
    """(target, allocation, its parameters as plain values and validated), or Nones for the dense baseline."""
    if node["tolerance"] < 0:
        raise ConfigError(f"sparsity.tolerance={node['tolerance']}: must be >= 0 (allowed |measured - target|)")
    if not pruner.prunes:
        return None, None, {}, None
    target = make_target(node["target"], node["pattern"])
    allocation = ALLOCATIONS.get(node["allocation"])
    values = {k: node[k] for k in allocation.param_names()}
    return target, allocation, values, allocation.check_params(values)


def _check_tags(pruner: PrunerSpec, params: Any, calib: Optional[CalibRequest]) -> None:
    """A pruner that reads tagged statistics gets a calibration whose rows carry those tags."""
    needed = pruner.required_tags(params)
    have = FORMATS.get(calib.format).tags(calib) if calib is not None else ()
    missing = [t for t in needed if t not in have]
    if missing:
        raise ConfigError(
            f"pruner={pruner.name} reads calibration rows tagged {list(needed)}, but calib.format="
            f"{calib.format if calib else None!r} gives {list(have)}; e.g. calib=translation_code"
        )


def _check_masks(runtime: RuntimeSpec, engine: EngineSettings, model: ModelSpec) -> None:
    if runtime.save_masks and engine.stream_from_disk and model.device_map:
        raise ConfigError(
            "runtime.save_masks with engine.stream_from_disk and model.device_map: the masks would be read "
            "from weights offloaded to other devices; save them in a run without model.device_map"
        )


def _canonical_codes(cfg: Mapping[str, Any], calib: Optional[CalibRequest], suite: SuiteSpec) -> dict[str, Any]:
    """The resolved config with its language codes canonical, as the spec holds them: `hin_Deva` and
    `hi` are one computation, so one cell id (a config typed in canonical codes keeps its id)."""
    out = dict(cfg)
    out["eval"] = dict(cfg["eval"], languages=list(suite.corpora[0].languages))
    out["eval"]["corpora"] = [
        dict(c, languages=list(spec.languages)) for c, spec in zip(cfg["eval"]["corpora"], suite.corpora[1:])
    ]
    if calib is not None:
        out["calib"] = dict(cfg["calib"], languages=list(calib.languages), weights=dict(calib.weights))
        out["calib"]["pivot"] = calib.pivot
    return out


def _build(cfg: Mapping[str, Any], raw: Mapping[str, Any]) -> CellSpec:
    model = model_spec(cfg["model"])
    pruner = get_pruner(cfg["pruner"]["name"])
    pruner_params = {k: v for k, v in cfg["pruner"].items() if k != "name"}
    params = pruner.check_params(pruner_params)
    target, allocation, alloc_values, alloc_params = _sparsity(cfg["sparsity"], pruner)
    calibrated = pruner.needs_calibration or (allocation is not None and allocation.needs_calibration)
    calib = calib_request(cfg["calib"], model) if calibrated else None
    suite = suite_spec(cfg["eval"], model)
    passes = _passes(calib, suite)
    for p in passes:
        if p.calib is not None:
            p.calib.counts()  # the mix's own checks: budget, shares, weights
            if p.calib.source == p.suite.corpora[0].source and p.calib.split == p.suite.corpora[0].split:
                raise ConfigError(
                    f"calib.split={p.calib.split!r} equals eval.split: calibration and evaluation "
                    "text must be disjoint; choose another split"
                )
        if target is not None:
            allocation.check(target, alloc_params, len(set(p.calib.languages)) if p.calib else 0)
        _check_tags(pruner, params, p.calib)
    engine = EngineSettings(**cfg["engine"])
    engine.options()  # the engine's own checks (propagation, batch size)
    runtime = RuntimeSpec(**cfg["runtime"])
    _check_masks(runtime, engine, model)
    logger = LoggerSpec(cfg["logger"]["name"], {k: v for k, v in cfg["logger"].items() if k != "name"})
    TRACKERS.get(logger.name).check(dict(logger.options))
    readings = (pruner.reading(params), allocation.reading(alloc_params) if allocation is not None else "")
    axes = cell_axes(cfg, pruner, pruner_params, target, calib, ", ".join(r for r in readings if r))
    return CellSpec(
        experiment=cfg["name"],
        seed=cfg["seed"],
        axes=axes,
        cell_id=cell_id(axes, _canonical_codes(cfg, calib, suite), raw, target is not None, calibrated, alloc_values),
        model=model,
        pruner=pruner,
        params=params,
        pruner_params=pruner_params,
        target=target,
        tolerance=cfg["sparsity"]["tolerance"],
        allocation=allocation,
        allocation_params=alloc_values,
        calib=calib,
        suite=suite,
        passes=passes,
        engine=engine,
        runtime=runtime,
        logger=logger,
        config=raw,
        resolved=cfg,
    )
