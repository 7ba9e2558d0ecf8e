"""Benchmark: what a fresh process adds to a cell, the way every unpacked SLURM job runs one.

Why: a cell's useful work is load + calibrate + prune + evaluate (its row's stage times). A job that
runs one cell also pays Python's start, the imports (torch, transformers, Hydra, lm-eval), composing
the config and validating it, before the first useful tensor operation; a packed job
(`hydra.launcher.cells_per_job`) pays them once for K cells. The issue's target: a fresh process adds
at most 3 s to a testbed cell.

This script runs one testbed cell (Wanda 50%, English calibration, perplexity suite, 2 torch threads)
as a user does, `python -m mlsweep pruner=wanda ...`, in a fresh process, three times, and reports
the median of: the process's wall time, the row's stage times, and the difference (the fresh-process
overhead). A second child measures where the overhead goes: importing torch, transformers'
AutoConfig (what validation reads first) and the cell app, composing the config, and transformers'
first model load beyond a second load of the same weights (imports of the model's code).

    .venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 3.0
CELL = ["pruner=wanda", "calib=en", "sparsity.target=0.5", "runtime.threads=2"]
WORK = ("load", "calib", "prune", "place", "eval")

BREAKDOWN = """
import time, json
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from transformers import AutoConfig
from mlsweep import PACKAGE_DIR
AutoConfig.from_pretrained(str(PACKAGE_DIR / "testbed" / "model"))
t2 = time.perf_counter()
import mlsweep.cell.app
t3 = time.perf_counter()
from hydra import compose, initialize_config_dir
from mlsweep import CONF_DIR
from mlsweep.config.spec import CellSpec
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    CellSpec.from_config(compose("config", overrides=%r))
t4 = time.perf_counter()
from transformers import AutoModelForCausalLM
path = str(PACKAGE_DIR / "testbed" / "model")
AutoModelForCausalLM.from_pretrained(path)
t5 = time.perf_counter()
AutoModelForCausalLM.from_pretrained(path)
t6 = time.perf_counter()
print(json.dumps({"import torch": t1 - t0, "import transformers + AutoConfig": t2 - t1,
                  "import the cell app (Hydra, mlsweep)": t3 - t2, "compose + CellSpec": t4 - t3,
                  "first model load beyond a second one": (t5 - t4) - (t6 - t5)}))
"""


def fresh_cell(folder: Path) -> tuple[float, float]:
    """(process wall seconds, the row's load + calibrate + prune + place + evaluate seconds)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    tic = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mlsweep", *CELL, f"hydra.run.dir={folder}"],
        check=True,
        env=env,
        capture_output=True,
    )
    wall = time.perf_counter() - tic
    row = json.loads((folder / "result.json").read_text())
    assert row["status"] == "done", row["error"]
    return wall, sum(row.get(f"time/{stage}_s", 0.0) for stage in WORK)


def main() -> int:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(3):
            runs.append(fresh_cell(Path(tmp) / f"cell{i}"))
    wall = statistics.median(w for w, _ in runs)
    work = statistics.median(w for _, w in runs)
    overhead = statistics.median(w - k for w, k in runs)
    out = subprocess.run([sys.executable, "-c", BREAKDOWN % CELL], check=True, capture_output=True, text=True)
    parts = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"fresh process, one testbed cell (median of 3): wall {wall:.2f} s, stages {work:.2f} s")
    verdict = "met" if overhead <= TARGET_S else "not met"
    print(f"fresh-process overhead: {overhead:.2f} s (target <= {TARGET_S:.0f} s: {verdict})")
    print("where it goes (one child process):")
    for what, seconds in parts.items():
        print(f"  {what:<40} {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
