"""One printed line per cell stage: which cell, which stage, how long; and the tests' pause hook."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlsweep.credentials import redact_text

# Test hook (unset in real runs): hold a cell at a named stage, so a test can kill, cancel or inspect it
# there instead of polling for a file and racing the job. See `pause_point`.
PAUSE_AT_ENV = "MLSWEEP_TEST_PAUSE_AT"  # a stage name (load, calib, prune, ...) or block:<i>, optionally #<n>
PAUSE_FILE_ENV = "MLSWEEP_TEST_PAUSE_FILE"  # created by the paused cell; write `release` into it to go on
RELEASE = "release"
_REACHED: dict[str, int] = {}  # times this process reached each paused stage


def pause_point(stage: str) -> None:
    """Test hook: wait here if MLSWEEP_TEST_PAUSE_AT names this stage; does nothing otherwise.

    Stages are the progress stages, reached when they end (`load`, `calib`,
    `prune`, `place`, `eval`), and `block:<i>`, reached once block i is pruned
    and checkpointed. The first process to reach the stage creates
    MLSWEEP_TEST_PAUSE_FILE (holding `paused <pid>`) and waits until the file
    says `release` or is removed, or the process is killed. Whoever finds the
    file already there goes on: a relaunched or requeued cell runs through.
    `<stage>#<n>` pauses the n-th time one process reaches the stage: in the
    n-th cell of a job that runs several (hydra.launcher.cells_per_job).
    """
    path, at = os.environ.get(PAUSE_FILE_ENV), os.environ.get(PAUSE_AT_ENV, "")
    name, _, nth = at.partition("#")
    if not path or name != stage:
        return
    _REACHED[stage] = _REACHED.get(stage, 0) + 1
    if nth and _REACHED[stage] != int(nth):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return  # paused once already
    with os.fdopen(fd, "w") as f:
        f.write(f"paused {os.getpid()}\n")
    while _held(Path(path)):
        time.sleep(0.05)


def _held(path: Path) -> bool:
    try:
        return path.read_text().strip() != RELEASE
    except FileNotFoundError:
        return False


class Progress:
    def __init__(self, label: str, out_dir: Path):
        self.label = label
        self.out_dir = Path(out_dir)  # where the cell writes
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def line(self, stage: str, detail: str = "") -> None:
        elapsed = time.perf_counter() - self.start
        line = f"[{self.label}] {stage:<8} {elapsed:7.1f}s {detail}".rstrip()
        print(redact_text(line), file=sys.stderr, flush=True)  # a credential in an override never reaches a log

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        tic = time.perf_counter()
        yield
        took = time.perf_counter() - tic
        self.seconds[name] = self.seconds.get(name, 0.0) + took  # a target-mix cell repeats stages
        self.line(name, f"({took:.1f}s)")
        pause_point(name)

    def block_done(self, i: int) -> None:
        """Block i is pruned (and checkpointed, when the cell keeps checkpoints)."""
        pause_point(f"block:{i}")
