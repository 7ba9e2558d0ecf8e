"""Project scorers: evaluations that are not lm-eval tasks (the `eval.tasks` names `<scorer>_<lang>`).

A scorer registers a `ScorerSpec` in `SCORERS`: the source its items come
from by default (`eval.scorers.<name>` overrides it), how to score one
language, and how to check that its data are reachable before any pruning.
A task named `<scorer>_<lang>` (e.g. `kim_xnli_sw`) runs scorer `<scorer>`
on language `<lang>`; every other task name goes to lm-eval.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from mlsweep.data.sources import SourceSpec
from mlsweep.registry import Registry


@dataclass(frozen=True)
class ScorerSpec:
    name: str
    source: SourceSpec  # default data source; eval.scorers.<name> replaces it
    # (model, tokenizer, items source, language, batch size) -> metrics without the task suffix {"acc": ..., "n": ...},
    # plus "items": {metric: (item ids, 0/1 per item)} for the per-item file (mlsweep.results.items)
    score: Callable[..., dict[str, Any]]
    check: Callable[[Any, str], None]  # (source, language): data reachable offline


SCORERS: Registry[ScorerSpec] = Registry("eval.tasks (project scorer)", package=__name__)


def project_task(task: str) -> Optional[tuple[ScorerSpec, str]]:
    """(scorer, language) for a `<scorer>_<lang>` task name, else None (an lm-eval task)."""
    for name in SCORERS.names():
        if task.startswith(f"{name}_"):
            return SCORERS.get(name), task[len(name) + 1 :]
    return None
