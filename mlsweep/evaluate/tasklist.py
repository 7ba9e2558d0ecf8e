"""Which lm-eval tasks a suite runs, and in which of its languages each one counts.

A task's language is read from the end of its name, in any spelling
mlsweep.data.languages knows: ISO 639-1 (`xnli_de`), ISO 639-3
(`afrixnli_amh`) or FLORES-200 (`belebele_zho_Hans`); lm-eval's `xwinograd_jp`
is Japanese. It is given in the suite's own spelling when it is one of the
suite's languages (`belebele_zho_Hans` counts for `zh`), else as its canonical
code; a name that ends in no known code has none (`boolq`).

Expansion: a group or tag in `eval.tasks` runs its tasks (from the task
index, mlsweep.evaluate.taskindex), restricted to the suite's languages when
the group is per-language, i.e. its task names carry language codes
(`belebele` in a suite of seven languages runs seven Belebele tasks, not 122;
`mmlu`'s subjects all run); a task named explicitly always runs. In a
per-language pass (`calib=target`) only the pass's language's tasks run, and
every task of the suite must belong to one of the suite's languages: the
check refuses, naming them, those that belong to none (validation, before any
weight loads), instead of dropping them from every pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from mlsweep import PACKAGE_DIR
from mlsweep.data.languages import lookup
from mlsweep.evaluate.scorers import project_task
from mlsweep.evaluate.taskindex import kind, leaves, task_manager

if TYPE_CHECKING:
    from mlsweep.evaluate.suite import SuiteSpec

PROJECT_TASKS = PACKAGE_DIR / "evaluate" / "tasks"
# More lm-eval tasks than this in one suite is a group named by mistake (`mmmlu` alone is 798):
# each task loads its dataset and is evaluated in full.
MAX_TASKS = 1000
# Task-name codes that are not ISO/FLORES codes (lm-eval's own spellings).
TASK_CODES = {"jp": "ja"}


def suite_manager(suite: SuiteSpec):
    """The task index of a suite: lm-eval's tasks, the project's, then eval.include_paths."""
    return task_manager((PROJECT_TASKS, *suite.include_paths))


def task_language(task: str, languages: tuple[str, ...] = ()) -> Optional[str]:
    """The language a task counts for: one of `languages` (their spelling) if it matches, else canonical, else None."""
    parts = task.replace("::", "_").split("_")
    for n in (2, 1):  # FLORES `zho_Hans` before ISO `de`
        if len(parts) <= n:
            continue
        code = "_".join(parts[-n:])
        if code in languages:
            return code
        canonical = lookup(TASK_CODES.get(code, code))
        if canonical is not None:
            return next((lang for lang in languages if lookup(lang) == canonical), canonical)
    return None


def _named(suite: SuiteSpec) -> list[str]:
    """The lm-eval names of eval.tasks (the project scorers' `<scorer>_<lang>` are not lm-eval's)."""
    return [t for t in suite.tasks if project_task(t) is None]


def expand(suite: SuiteSpec, manager=None) -> list[tuple[str, Optional[str]]]:
    """[(task named in eval.tasks, None) | (task of a group, the group)], each task once, in order."""
    names = _named(suite)
    if not names:
        return []
    manager = manager or suite_manager(suite)
    out: dict[str, Optional[str]] = {}
    for name in names:
        if kind(manager, name) == "task":
            out.setdefault(name, None)
        else:
            for leaf in leaves(manager, name):
                out.setdefault(leaf, name)
    return list(out.items())


def _kept(suite: SuiteSpec, expanded: list[tuple[str, Optional[str]]]) -> list[str]:
    """The tasks to run: a group's tasks in the suite's languages (all of them if the group is not per-language:
    no task of it ends in a language code); named tasks always; a per-language pass: its language's only."""
    langs = {t: task_language(t, suite.languages) for t, _ in expanded}
    per_language_groups = {g for t, g in expanded if g is not None and langs[t] is not None}
    if suite.per_language:
        return [t for t, _ in expanded if langs[t] == suite.languages[0]]
    return [t for t, g in expanded if g is None or g not in per_language_groups or langs[t] in suite.languages]


def harness_tasks(suite: SuiteSpec, manager=None) -> list[str]:
    """The lm-eval tasks this suite (or per-language pass) runs."""
    return _kept(suite, expand(suite, manager))


def scorer_tasks(suite: SuiteSpec) -> list[str]:
    """The project-scorer tasks this suite (or per-language pass) runs."""
    ours = [t for t in suite.tasks if project_task(t) is not None]
    if suite.per_language:
        return [t for t in ours if task_language(t, suite.languages) == suite.languages[0]]
    return ours


def count_tasks(suite: SuiteSpec) -> int:
    """The tasks this suite (or pass) evaluates: lm-eval's after expansion, plus the project scorers'."""
    return len(harness_tasks(suite)) + len(scorer_tasks(suite))


def check_task_list(suite: SuiteSpec, per_language_passes: bool, manager=None) -> list[str]:
    """The suite's lm-eval tasks after expansion; raises ValueError naming what cannot run."""
    if _named(suite):
        manager = manager or suite_manager(suite)
    expanded = expand(suite, manager)
    kept = _kept(suite, expanded)
    for name in _named(suite):
        if kind(manager, name) != "task" and not any(g == name and t in kept for t, g in expanded):
            langs = sorted({task_language(t) or "?" for t, g in expanded if g == name})
            raise ValueError(
                f"eval.tasks: {kind(manager, name)} {name!r} has no task in eval.languages "
                f"[{', '.join(suite.languages)}]; its tasks' languages: {', '.join(langs)}"
            )
    if len(kept) > MAX_TASKS:
        raise ValueError(
            f"eval.tasks expands to {len(kept)} lm-eval tasks (more than {MAX_TASKS}): name the tasks "
            f"or the languages you mean instead of whole groups"
        )
    if per_language_passes:
        stray = [t for t in kept + scorer_tasks(suite) if task_language(t, suite.languages) not in suite.languages]
        if stray:
            shown = ", ".join(f"{t} ({task_language(t) or 'no language in its name'})" for t in stray[:12])
            raise ValueError(
                f"eval.tasks: calib.mix=target calibrates and evaluates each of eval.languages "
                f"[{', '.join(suite.languages)}] in its own pass, and {len(stray)} task(s) belong to none "
                f"of them: {shown}{', ...' if len(stray) > 12 else ''}. Name tasks of the suite's "
                f"languages (`<task>_<lang>`), or use another calib mix"
            )
    return kept
