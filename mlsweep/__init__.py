"""mlsweep: prune multilingual LLMs as Hydra sweeps.

A grid cell is (model, pruner, calibration mix, sparsity, eval suite); every
cell runs the same prune-then-evaluate entrypoint (`mlsweep.cell`) and writes
one flat result row. `mlsweep.prune.prune_model` is the Hydra-free API.
"""

from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent
# The config tree is package data: found relative to the package, installed or not.
CONF_DIR = PACKAGE_DIR / "conf"
