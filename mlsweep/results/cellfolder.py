"""A cell folder on disk, shared by the cell (which writes it) and the sweep (which reads it).

- result.json: the row, written atomically when the cell ends (`done` or `failed`);
- running.json: present while the cell runs (host, pid, SLURM job id), so a
  cell killed mid-way is never mistaken for a finished one;
- attempts/<n>.json: earlier failed rows, kept when the cell runs again;
- items.npz: the per-item results behind the row's metrics (mlsweep.results.items).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

RESULT_FILE = "result.json"
MARKER_FILE = "running.json"
ATTEMPTS_DIR = "attempts"


def umask_mode() -> int:
    """The mode a plain `open()` would give a new file (0o666 under the umask).

    `mkstemp` creates its file 0600 whatever the umask, which on a shared sweep
    folder hides every row from colleagues (their `mlsweep status` would see
    `todo` and their relaunch recompute). The umask is read by setting it and
    restoring it at once.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`.

    A reader (or a re-launched sweep) therefore sees either the old row or the
    new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, sort_keys=False, ensure_ascii=False, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_row(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def finished_row(out_dir: Path, ident: str) -> Optional[dict[str, Any]]:
    """This cell's row if it is already done, else None; an earlier failed row is moved aside (kept)."""
    path = Path(out_dir) / RESULT_FILE
    if not path.exists():
        return None
    try:
        old = read_row(path)
    except (OSError, ValueError):
        old = {}
    if old.get("status") == "done" and old.get("cell_id") == ident:
        return old
    attempts = Path(out_dir) / ATTEMPTS_DIR
    attempts.mkdir(exist_ok=True)
    os.replace(path, attempts / f"{len(list(attempts.glob('*.json'))) + 1}.json")
    return None
