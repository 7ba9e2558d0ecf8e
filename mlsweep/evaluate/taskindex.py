"""lm-eval's task index, kept on disk between processes, and groups expanded to their tasks from it.

`TaskManager()` parses every task YAML lm-eval ships (about 14,000 files,
12-15 s on 2 cores) each time a process starts, and lm-eval has no cache for
it. Here the index of each task folder (lm-eval's own, the project's, each
`eval.include_paths` folder) is pickled under `<MLSWEEP_CACHE>/lm_eval_index/`,
keyed by the lm-eval version, the folder and the (path, mtime, size) of every
YAML file in it, so an edited or added YAML rebuilds that folder's index. The
TaskManager is then built by its own constructor with the index answered from
the cache: the folders are merged in the same order, later ones overriding
earlier ones, as `TaskIndex.build` does. Pickling is safe because an index
entry is a dataclass of plain values (`!function` kept as a path string);
loading a task re-reads its YAML and resolves functions and datasets afresh.

`leaves(manager, name)` expands a group or tag to its tasks from the index
alone (no dataset is loaded), in lm-eval's order.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterable
from contextlib import contextmanager
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

INDEX_DIR = "lm_eval_index"


def cache_dir() -> Path:
    return Path(os.environ.get("MLSWEEP_CACHE", Path.home() / ".cache" / "mlsweep")) / INDEX_DIR


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks  # noqa: PLC0415 (heavy: only when tasks are indexed)

    return Path(lm_eval.tasks.__file__).parent


def folder_key(root: Path) -> str:
    """Hash of the lm-eval version, the folder and every YAML file's (path, mtime, size) in it."""
    from lm_eval.tasks._index import TaskIndex  # noqa: PLC0415 (heavy: only when tasks are indexed)

    h = hashlib.sha256(f"lm_eval={version('lm_eval')}\nroot={root.resolve()}\n".encode())
    for path in TaskIndex._iter_yaml_files(root):  # the file set and order TaskIndex.build reads
        st = path.stat()
        h.update(f"{path.as_posix()}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return h.hexdigest()[:32]


def folder_index(root: Path) -> dict[str, Any]:
    """{name: Entry} of one task folder: from the cache, else built and written there (atomically)."""
    from lm_eval.tasks._index import TaskIndex  # noqa: PLC0415 (heavy: only when tasks are indexed)

    path = cache_dir() / f"{folder_key(root)}.pkl"
    if path.exists():
        try:
            return pickle.loads(path.read_bytes())
        except Exception:  # a truncated or foreign file: rebuild it
            path.unlink(missing_ok=True)
    index = TaskIndex.build([root])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)
    return index


@contextmanager
def _index_from_cache():
    """TaskManager's constructor, with `TaskIndex.build` answered per folder from the cache."""
    from lm_eval.tasks import manager  # noqa: PLC0415 (heavy: only when tasks are indexed)

    original = manager.TaskIndex

    class CachedIndex(original):
        @staticmethod
        def build(paths: Iterable[Path], *, resolve_includes: bool = True) -> dict[str, Any]:
            index: dict[str, Any] = {}
            for root in paths:  # later folders override earlier ones, as in TaskIndex.build
                index.update(folder_index(Path(root)))
            return index

    manager.TaskIndex = CachedIndex
    try:
        yield manager.TaskManager
    finally:
        manager.TaskIndex = original


def task_manager(include_paths: Iterable[str | Path] = (), include_defaults: bool = True):
    """A TaskManager over lm-eval's tasks (unless include_defaults=False) and these folders (in order)."""
    return _task_manager(tuple(str(Path(p).resolve()) for p in include_paths), include_defaults)


@lru_cache(maxsize=8)
def _task_manager(paths: tuple[str, ...], include_defaults: bool):
    # One per process and folder list; `load()` adds namespaced group members to it, never to the cache.
    with _index_from_cache() as manager_class:
        return manager_class(include_path=list(paths) or None, include_defaults=include_defaults)


def kind(manager, name: str) -> str:
    """'task', 'group', 'tag' or 'unknown' for a name of the index."""
    entry = manager.task_index.get(name)
    return "unknown" if entry is None else {"PY_TASK": "task"}.get(entry.kind.name, entry.kind.name.lower())


def leaves(manager, name: str) -> list[str]:
    """The tasks a group or tag runs, from the index alone (lm-eval's order; a task is itself)."""
    index = manager.task_index
    entry = index[name]
    what = kind(manager, name)
    if what == "task":
        return [name]
    if what == "tag":
        return sorted(entry.tags)  # lm-eval's factory sorts a tag's members
    out: list[str] = []
    for item in (entry.cfg or {}).get("task", []):
        if isinstance(item, dict):
            if "group" in item and item["group"] not in index:  # an inline sub-group: "<g>::<sub>::<task>"
                for sub in item.get("task", []):
                    n = sub if isinstance(sub, str) else sub.get("task")
                    out += leaves(manager, n) if n in index else [f"{name}::{item['group']}::{n}"]
                continue
            n = item.get("group") or item.get("task")
        else:
            n = item
        out += leaves(manager, n) if n in index else [f"{name}::{n}"]  # an inline task: a namespaced name
    return out
