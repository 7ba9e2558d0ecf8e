"""Experiment trackers: short name (the `logger=` option) -> module with `NAME` and `start`.

A tracker mirrors a cell to an outside service while it runs; the result row
on disk stays the record (tables are built from it, never from a tracker).
It joins by being named in `_MODULES` and by a YAML of the same name in
conf/logger/ (a test checks both sets are equal). Trackers get plain values
(`CellRun` and the `logger` fields), never the config object.

A tracker can never fail or block its cell: `start` wraps it in `Guarded`,
which prints its first error once and switches it off for the rest of the cell.
"""
from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from mlsweep.tracking.guard import Guarded, redact_text

_MODULES = ("none", "wandb_run")

# Config keys that look like credentials: dropped from anything sent to a tracker.
SECRET_KEY = re.compile(r"(^|[_.-])(api_?key|token|password|passwd|secret)($|[_.-])", re.IGNORECASE)


@dataclass
class CellRun:
    """What a tracker needs to know about the cell it follows."""

    name: str  # the cell's overrides (its folder in a sweep), else its id
    cell_id: str
    tags: list[str]  # the cell's axes as key=value
    config: dict[str, Any]  # resolved cell config, secrets removed
    out_dir: Path
    label: str = "cell"  # progress label, for printed messages


class Tracker(Protocol):
    def log(self, metrics: dict[str, Any]) -> None:
        """Record metrics as they happen (a history row)."""

    def finish(self, row: Optional[dict[str, Any]]) -> None:
        """Close the run: the final row as its summary; None when the cell was interrupted."""


def _modules() -> dict[str, Any]:
    mods = [importlib.import_module(f"mlsweep.tracking.{m}") for m in _MODULES]
    return {m.NAME: m for m in mods}


def tracker_names() -> list[str]:
    return sorted(_modules())


def get_tracker(name: str):
    """The tracker module for a `logger=` name; unknown names say did-you-mean."""
    mods = _modules()
    if name not in mods:
        close = difflib.get_close_matches(name, list(mods), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"logger.name={name!r} is unknown.{hint} Available: {', '.join(sorted(mods))}")
    return mods[name]


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
