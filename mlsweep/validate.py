"""Checks that run on a composed config before any weight is loaded.

Types were already checked by the schemas at compose time; these are the
value ranges and cross-field rules. Every message names the config field and
the allowed values. The sweeper runs them on every cell before launching any.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from omegaconf import DictConfig

from mlsweep.data.mixes import sample_counts
from mlsweep.data.sources import check_languages, get_source
from mlsweep.modeling import DTYPES, context_length, load_config
from mlsweep.prune.allocation import ALLOCATIONS, check_owl
from mlsweep.prune.masks import make_target
from mlsweep.prune.registry import get_pruner


class ConfigError(ValueError):
    """A config value outside what the cell can run."""


@lru_cache(maxsize=32)
def _model_context(path: str, trust_remote_code: bool, revision: Any) -> Any:
    return context_length(load_config(path, trust_remote_code, revision))


def pruner_params(cfg: DictConfig) -> dict[str, Any]:
    """The pruner's method parameters: every field of `pruner` but its name."""
    return {k: v for k, v in cfg.pruner.items() if k != "name"}


def validate(cfg: DictConfig) -> None:
    try:
        _validate(cfg)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _validate(cfg: DictConfig) -> None:
    spec = get_pruner(cfg.pruner.name)
    spec.check_params(pruner_params(cfg))
    if spec.prunes:
        target = make_target(cfg.sparsity.target, cfg.sparsity.pattern)
        if cfg.sparsity.allocation not in ALLOCATIONS:
            raise ConfigError(f"sparsity.allocation={cfg.sparsity.allocation!r}: allowed values are "
                              f"{', '.join(ALLOCATIONS)}")
        if cfg.sparsity.allocation == "owl":
            check_owl(target, cfg.sparsity.owl_lambda, cfg.sparsity.owl_m)
    if cfg.engine.propagation not in ("sequential", "dense"):
        raise ConfigError(f"engine.propagation={cfg.engine.propagation!r}: allowed values are sequential, dense")
    if cfg.engine.calib_batch_size <= 0:
        raise ConfigError(f"engine.calib_batch_size={cfg.engine.calib_batch_size}: must be a positive integer")
    if cfg.model.dtype not in DTYPES:
        raise ConfigError(f"model.dtype={cfg.model.dtype!r}: allowed values are {', '.join(DTYPES)}")
    context = _model_context(cfg.model.path, cfg.model.trust_remote_code, cfg.model.revision)
    for field in ("model.seqlen", "calib.seqlen", "eval.seqlen"):
        value = _get(cfg, field)
        if value is not None and (value <= 1 or (context and value > context)):
            raise ConfigError(f"{field}={value}: must be in [2, {context or 'inf'}] "
                              f"(the context length of {cfg.model.path})")
    if cfg.eval.batch_size <= 0:
        raise ConfigError(f"eval.batch_size={cfg.eval.batch_size}: must be a positive integer")
    eval_source = get_source(cfg.eval.source.name, cfg.eval.source.path)
    check_languages("eval.languages", list(cfg.eval.languages), eval_source)
    from mlsweep.cell import uses_calibration

    if uses_calibration(cfg):
        calib_source = get_source(cfg.calib.source.name, cfg.calib.source.path)
        check_languages("calib.languages", list(cfg.calib.languages), calib_source)
        sample_counts(cfg.calib.mix, cfg.calib.nsamples, list(cfg.calib.languages), cfg.model.family)
        if cfg.calib.source == cfg.eval.source and cfg.calib.split == cfg.eval.split:
            raise ConfigError(f"calib.split={cfg.calib.split!r} equals eval.split: calibration and "
                              "evaluation text must be disjoint; choose another split")


def _get(cfg: DictConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node
