"""Experiment trackers: short name (the `logger=` option) -> TrackerSpec in `TRACKERS`.

A tracker mirrors a cell to an outside service while it runs; the result row
on disk stays the record (tables are built from it, never from a tracker).
It joins by one module in this package that registers its spec, and a YAML
of the same name in conf/logger/ (a test checks both sets are equal).
Trackers get plain values (`CellRun` and the `logger` fields), never the
config object.

A tracker can never fail or block its cell: `start` wraps it in `Guarded`,
which prints its first error once and switches it off for the rest of the cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mlsweep.credentials import SECRET_KEY, redact_text
from mlsweep.registry import Registry
from mlsweep.tracking.guard import Guarded


@dataclass
class CellRun:
    """What a tracker needs to know about the cell it follows."""

    name: str  # the cell's overrides (its folder in a sweep), else its id
    cell_id: str
    tags: list[str]  # the cell's axes as key=value
    config: dict[str, Any]  # resolved cell config, secrets removed
    out_dir: Path
    label: str = "cell"  # progress label, for printed messages


def no_check(options: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class TrackerSpec:
    name: str
    start: Callable[..., Any]  # (CellRun, **logger options) -> an object with log(metrics) and finish(row)
    check: Callable[[dict[str, Any]], None] = no_check  # the logger options, before the cell runs


TRACKERS: Registry[TrackerSpec] = Registry("logger.name", package=__name__)


def get_tracker(name: str) -> TrackerSpec:
    return TRACKERS.get(name)


def tracker_names() -> list[str]:
    return TRACKERS.names()


def start(name: str, run: CellRun, options: dict[str, Any], into: Optional[Guarded] = None) -> Guarded:
    """Start tracker `name` for one cell (into `into`); on any error, a printed warning and no tracking."""
    guarded = into if into is not None else Guarded(run.label)
    try:
        guarded.inner = get_tracker(name).start(run, **options)
    except Exception as e:  # the cell goes on untracked
        guarded.fail(e)
    return guarded


def redact(node: Any) -> Any:
    """A copy of a plain (nested) config without credential-looking keys or values."""
    if isinstance(node, dict):
        return {k: redact(v) for k, v in node.items() if not SECRET_KEY.search(str(k))}
    if isinstance(node, (list, tuple)):
        return [redact(v) for v in node]
    if isinstance(node, str):
        return redact_text(node)
    return node
