"""A cell folder on disk, shared by the cell (which writes it) and the sweep (which reads it).

- result.json: the row, written atomically when the cell ends (`done` or `failed`);
- running.json: present while the cell runs (host, pid and the process's start
  time, SLURM job id), so a cell killed mid-way is never mistaken for a
  finished one and a live one is never mistaken for a killed one;
- .lock: held (flock) by the process running the cell, so a second launch of
  the same sweep cannot run the cell at the same time;
- attempts/<n>.json: earlier failed rows, kept when the cell runs again;
- items.npz: the per-item results behind the row's metrics (mlsweep.results.items).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

RESULT_FILE = "result.json"
MARKER_FILE = "running.json"
ATTEMPTS_DIR = "attempts"
LOCK_FILE = ".lock"
FOLDER_MAX = 200  # bytes of a folder name; most filesystems stop at 255


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
    """The JSON object in `path`; ValueError naming the file for anything else (truncated, a list, a number)."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a JSON object (found {type(obj).__name__})")
    return obj


def safe_folder(name: Any) -> str:
    """One folder name made from user-typed text (an experiment name, a cell's overrides), inside its parent.

    Path separators would put a cell folder outside its sweep (`model.path=../../x`) or a sweep
    outside outputs/ (`name=../../x`), so they become `_`, as do `.` and `..` standing alone; a name
    longer than FOLDER_MAX bytes keeps its head and a hash of the whole, so it stays distinct.
    """
    text = str(name).replace("/", "_").replace("\\", "_").replace("\0", "_")
    if text in (".", ".."):
        text = "_" * len(text)
    if len(text.encode()) > FOLDER_MAX:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        text = text.encode()[: FOLDER_MAX - 11].decode(errors="ignore") + "-" + digest
    return text


def process_identity() -> dict[str, Any]:
    """Host, pid and the pid's start time: enough to tell later whether this very process still runs."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _start_time(os.getpid())}


def _start_time(pid: int) -> Optional[str]:
    """The process's start time since boot (clock ticks, /proc), which a reused pid does not share."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22; the name in (...) may hold spaces


def process_alive(marker: dict[str, Any]) -> Optional[bool]:
    """Whether the process a marker names still runs: None when it cannot be told from this host."""
    if marker.get("host") != socket.gethostname() or not isinstance(marker.get("pid"), int):
        return None
    started = _start_time(marker["pid"])
    if started is None:
        try:
            os.kill(marker["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return marker.get("pid_start") is None  # no /proc here: a live pid is taken as the same process
    return started == marker.get("pid_start")


class CellHeld(RuntimeError):
    """Another live process holds this cell folder (a second launch of the same sweep)."""


@contextmanager
def claim(out_dir: Path) -> Iterator[None]:
    """Hold the cell folder's lock while the cell runs; CellHeld if another process holds it.

    flock is released by the kernel when its process ends, however it ends (kill -9 included),
    so a killed cell never blocks its relaunch, and two launches never run one cell twice.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, umask_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = _marker_holder(out_dir)
        raise CellHeld(f"{out_dir} is being run by another process{holder}; not run again here") from None
    try:
        yield
    finally:
        os.close(fd)


def _marker_holder(out_dir: Path) -> str:
    try:
        marker = read_row(out_dir / MARKER_FILE)
    except (OSError, ValueError):
        return ""
    return f" ({marker.get('host')}, pid {marker.get('pid')})"


def finished_row(out_dir: Path, ident: str) -> Optional[dict[str, Any]]:
    """This cell's row if it is already done, else None; an earlier failed row is moved aside (kept)."""
    path = Path(out_dir) / RESULT_FILE
    if not path.exists():
        return None
    try:
        old = read_row(path)
    except (OSError, ValueError):
        old = {}  # unreadable: moved aside below like a failed row, and the cell runs again
    if old.get("status") == "done" and old.get("cell_id") == ident:
        return old
    attempts = Path(out_dir) / ATTEMPTS_DIR
    attempts.mkdir(exist_ok=True)
    os.replace(path, attempts / f"{len(list(attempts.glob('*.json'))) + 1}.json")
    return None
