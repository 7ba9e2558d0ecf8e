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
from mlsweep.data.sources import check_languages, source_from
from mlsweep.modeling import DTYPES, context_length, load_config
from mlsweep.prune.allocation import ALLOCATIONS, check_cwl, check_owl
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
        if cfg.sparsity.allocation == "cwl" and cfg.calib.mix != "target":
            check_cwl(target, cfg.sparsity.cwl_lambda, len(set(cfg.calib.languages)))
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
    check_logger(cfg)
    check_eval(cfg)
    from mlsweep.identity import uses_calibration

    if uses_calibration(cfg):
        calib_source = source_from(cfg.calib.source)
        target = cfg.calib.mix == "target"
        langs = list(cfg.eval.languages if target else cfg.calib.languages)
        check_languages("eval.languages (calib.mix=target)" if target else "calib.languages", langs, calib_source)
        calib_source.check(langs, cfg.calib.split)
        if cfg.calib.format not in ("windows", "translation", "monolingual", "translation_code"):
            raise ConfigError(f"calib.format={cfg.calib.format!r}: allowed values are windows, translation, "
                              "monolingual, translation_code")
        if cfg.calib.direction not in ("xx-pivot", "pivot-xx"):
            raise ConfigError(f"calib.direction={cfg.calib.direction!r}: allowed values are xx-pivot, pivot-xx")
        if cfg.calib.format in ("translation", "translation_code"):
            check_languages("calib.pivot", [cfg.calib.pivot], calib_source)
        if cfg.calib.format == "translation_code":
            source_from(cfg.calib.code_source).check(["code"], cfg.calib.split)
        if not target:
            sample_counts(cfg.calib.mix, cfg.calib.nsamples, langs, cfg.model.family, dict(cfg.calib.weights))
        elif cfg.sparsity.allocation == "cwl":
            raise ConfigError("calib.mix='target' calibrates in one language at a time; "
                              "sparsity.allocation='cwl' needs several")
        if cfg.calib.source == cfg.eval.source and cfg.calib.split == cfg.eval.split:
            raise ConfigError(f"calib.split={cfg.calib.split!r} equals eval.split: calibration and "
                              "evaluation text must be disjoint; choose another split")


def _get(cfg: DictConfig, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def check_logger(cfg: DictConfig) -> None:
    """A known tracker, mode and positive timeouts (a tracker never fails a running cell, so check here)."""
    from mlsweep.tracking import get_tracker
    from mlsweep.tracking.wandb_run import MODES

    get_tracker(cfg.logger.name)
    if cfg.logger.mode not in MODES:
        raise ConfigError(f"logger.mode={cfg.logger.mode!r}: allowed values are {', '.join(MODES)}")
    for key in ("init_timeout", "finish_timeout"):
        if cfg.logger[key] <= 0:
            raise ConfigError(f"logger.{key}={cfg.logger[key]}: must be a positive number of seconds")


def check_eval(cfg: DictConfig) -> None:
    """Every corpus and task of the suite is reachable: data on disk or in the HF cache."""
    from mlsweep.cell import eval_suite

    for i, c in enumerate(cfg.eval.corpora):
        if not c.key.startswith("ppl_"):
            raise ConfigError(f"eval.corpora[{i}].key={c.key!r}: must start with 'ppl_' (e.g. ppl_xlsum)")
    suite = eval_suite(cfg, cfg.model.seqlen)
    for i, corpus in enumerate(suite.corpora):
        field = "eval.languages" if i == 0 else f"eval.corpora[{i - 1}].languages"
        check_languages(field, corpus.languages, corpus.source)
        corpus.source.check(corpus.languages, corpus.split)
    harness = [t for t in suite.tasks if not t.startswith("kim_xnli_")]
    if harness:
        from mlsweep.evaluate.harness import check_tasks

        check_tasks(harness, suite.include_paths)
    for task in suite.tasks:
        if task.startswith("kim_xnli_"):
            suite.scorer_sources["kim_xnli"].check([task.removeprefix("kim_xnli_")], "test")
