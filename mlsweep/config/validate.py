"""The checks of a CellSpec that read the disk, run before any weight is loaded.

`CellSpec.from_config` already checked every value that needs nothing but
the config; these need the model's config.json (context length), the text
sources (languages, splits) and lm-eval's task index. Every message names
the config field and what is allowed. The sweeper runs them on every cell
of the grid before launching any; the cell runs them as its first stage.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from mlsweep.config.spec import CellSpec, ConfigError
from mlsweep.data.calibration import CalibRequest
from mlsweep.data.formats import FORMATS
from mlsweep.data.sources import check_languages, make_source
from mlsweep.evaluate.harness import check_tasks
from mlsweep.evaluate.scorers import project_task
from mlsweep.evaluate.suite import SuiteSpec
from mlsweep.modeling import context_length, load_config


@lru_cache(maxsize=32)
def _model_context(path: str, trust_remote_code: bool, revision: Any) -> Optional[int]:
    return context_length(load_config(path, trust_remote_code, revision))


def validate(spec: CellSpec) -> None:
    """Raise ConfigError naming the field for anything the cell could not run."""
    try:
        _validate(spec)
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _validate(spec: CellSpec) -> None:
    m = spec.model
    context = _model_context(m.path, m.trust_remote_code, m.revision)
    lengths = [("model.seqlen", m.seqlen), ("eval.seqlen", spec.suite.seqlen)]
    lengths += [("calib.seqlen", p.calib.seqlen) for p in spec.passes[:1] if p.calib is not None]
    for field, value in lengths:
        if context and value > context:
            raise ConfigError(f"{field}={value}: must be in [2, {context}] (the context length of {m.path})")
    check_suite(spec.suite)
    for p in spec.passes:
        if p.calib is not None:
            check_calibration(p.calib, "eval.languages (calib.mix=target)" if p.label else "calib.languages")


def check_calibration(calib: CalibRequest, field: str) -> None:
    """Languages known to the source, the split present, the format's own fields."""
    source = make_source(calib.source)
    check_languages(field, list(calib.languages), source)
    source.check(list(calib.languages), calib.split)
    FORMATS.get(calib.format).check(calib)


def check_suite(suite: SuiteSpec) -> None:
    """Every corpus and task of the suite is reachable: data on disk or in the HF cache."""
    for i, corpus in enumerate(suite.corpora):
        field = "eval.languages" if i == 0 else f"eval.corpora[{i - 1}].languages"
        source = make_source(corpus.source)
        check_languages(field, list(corpus.languages), source)
        source.check(list(corpus.languages), corpus.split)
    harness, ours = suite.split_tasks()
    if harness:
        check_tasks(harness, suite.include_paths)
    for task in ours:
        scorer, lang = project_task(task)
        scorer.check(make_source(suite.scorer_source(scorer)), lang)
