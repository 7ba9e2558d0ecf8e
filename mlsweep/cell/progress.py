"""One printed line per cell stage: which cell, which stage, how long."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Progress:
    def __init__(self, label: str, out_dir: Path):
        self.label = label
        self.out_dir = Path(out_dir)  # where the cell writes
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def line(self, stage: str, detail: str = "") -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{self.label}] {stage:<8} {elapsed:7.1f}s {detail}".rstrip(), file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        tic = time.perf_counter()
        yield
        took = time.perf_counter() - tic
        self.seconds[name] = self.seconds.get(name, 0.0) + took  # a target-mix cell repeats stages
        self.line(name, f"({took:.1f}s)")
