"""The Hydra entrypoint: compose the cell's config, turn it into a CellSpec, run it in its output folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mlsweep import CONF_DIR
from mlsweep.cell.run import run_cell, run_invalid
from mlsweep.config.plain import plain
from mlsweep.config.schema import register_configs
from mlsweep.config.spec import CellSpec, ConfigError

register_configs()


def _label(hc) -> str:
    if hc.mode == RunMode.MULTIRUN:
        total = os.environ.get("MLSWEEP_NCELLS", "?")
        return f"cell {hc.job.num + 1}/{total} {hc.job.override_dirname}"
    return "cell"


def run_config(cfg: DictConfig, out_dir: Path, label: str = "cell") -> dict[str, Any]:
    """Run the cell a composed config describes; a config that is not a valid cell gets a failed row."""
    try:
        spec = CellSpec.from_config(cfg)
    except ConfigError as error:
        try:
            config = plain(cfg, resolve=False)
        except ValueError:
            config = {}
        return run_invalid(error, config, out_dir, label)
    return run_cell(spec, out_dir, label)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> str:
    hc = HydraConfig.get()
    row = run_config(cfg, Path(hc.runtime.output_dir), _label(hc))
    if hc.mode != RunMode.MULTIRUN and row["status"] != "done":
        print(f"cell failed: {row['error']}", file=sys.stderr)
        sys.exit(1)
    return row["status"]
