"""The Hydra entrypoint: compose the cell's config, run it in its output folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mlsweep import CONF_DIR
from mlsweep.schema import register_configs

register_configs()


def _label(hc) -> str:
    if hc.mode == RunMode.MULTIRUN:
        total = os.environ.get("MLSWEEP_NCELLS", "?")
        return f"cell {hc.job.num + 1}/{total} {hc.job.override_dirname}"
    return "cell"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> str:
    from mlsweep.cell import run_cell

    hc = HydraConfig.get()
    row = run_cell(cfg, Path(hc.runtime.output_dir), _label(hc))
    if hc.mode != RunMode.MULTIRUN and row["status"] != "done":
        print(f"cell failed: {row['error']}", file=sys.stderr)
        sys.exit(1)
    return row["status"]
