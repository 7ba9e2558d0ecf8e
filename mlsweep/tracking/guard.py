"""Keeps a tracker from failing or blocking its cell, and secrets out of what it prints.

Tracking is a side channel: the result row on disk is the record. So every
tracker call goes through `Guarded`, which catches the tracker's errors, prints
the first one once (with any API key masked) and then drops the tracker; the
cell goes on and writes its row as usual.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from mlsweep.credentials import redact_text


class Guarded:
    """A cell's tracker: empty until `mlsweep.tracking.start` fills it; every call is safe."""

    def __init__(self, label: str = "cell", inner: Any = None):
        self.inner = inner
        self.label = label
        self.failed = False

    def fail(self, error: BaseException) -> None:
        """Print the first error once and stop tracking this cell."""
        if not self.failed:
            message = redact_text(f"{type(error).__name__}: {error}".strip().splitlines()[0])
            print(
                f"[{self.label}] tracker  off for this cell ({message}); the cell goes on", file=sys.stderr, flush=True
            )
        self.failed = True
        inner, self.inner = self.inner, None
        if inner is not None:
            try:  # close what was opened, as failed; a second error is not news
                inner.finish(None)
            except Exception:
                pass

    def log(self, metrics: dict[str, Any]) -> None:
        if self.inner is None:
            return
        try:
            self.inner.log(metrics)
        except Exception as e:
            self.fail(e)

    def finish(self, row: Optional[dict[str, Any]]) -> None:
        inner, self.inner = self.inner, None
        if inner is None:
            return
        try:
            inner.finish(row)
        except Exception as e:
            self.fail(e)
