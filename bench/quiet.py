"""How busy the machine is: benchmarks on 2 shared cores report it beside their timings and wait for quiet.

A neighbour on one of the 2 cores stalls every parallel region of a run with 2 torch threads, so a timing
is only read beside the share of the cores other processes used meanwhile (from /proc/stat), and each
measurement first waits, for a capped time, until that share is low.
"""

from __future__ import annotations

import os
import resource
import sys
import time


def machine_busy_s() -> float:
    """CPU seconds spent non-idle by every process on the machine, all cores."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """User + system seconds of this process's children it has waited for."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class OthersLoad:
    """Fraction of the machine's cores used by other processes between start() and stop(): neither this
    process nor the children it waited for meanwhile."""

    def start(self) -> None:
        self.t, self.busy, self.own = time.perf_counter(), machine_busy_s(), self._own_s()
        self.wall_s = 0.0

    def stop(self) -> float:
        self.wall_s = time.perf_counter() - self.t
        others = machine_busy_s() - self.busy - (self._own_s() - self.own)
        return max(0.0, others / (self.wall_s * os.cpu_count()))

    @staticmethod
    def _own_s() -> float:
        return time.process_time() + children_cpu_s()


def wait_for_quiet(max_wait_s: float, threshold: float, probe_s: float = 0.5) -> None:
    """Sleep (up to max_wait_s) until other processes use under `threshold` of the cores."""
    deadline, probe = time.monotonic() + max_wait_s, OthersLoad()
    while time.monotonic() < deadline:
        probe.start()
        time.sleep(probe_s)
        if probe.stop() < threshold:
            return


def finish(busy: list[str], threshold: float, consequence: str, failures: list[str]) -> int:
    """A benchmark's last lines: which measurements ran beside a busy machine, then its FAILs; the exit code."""
    if busy:
        print(f"WARNING: other processes used >= {threshold:.0%} of the cores during {'; '.join(busy)}: {consequence}")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    return 1 if failures else 0
