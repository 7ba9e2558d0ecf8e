"""Hydra plugin shell of the mlsweep sweeper (logic: mlsweep/sweeper.py).

Selected by `override hydra/sweeper: mlsweep` in conf/config.yaml.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf

from mlsweep.sweeper import NCELLS_ENV, pending_cells, plan_cells, print_plan, report_failures


class MlsweepSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict] = None,
                 plan_only: bool = False) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.plan_only = plan_only  # `mlsweep plan`: list the cells with status and cost, run nothing

    def grid(self, arguments: List[str]) -> list[list[str]]:
        """The cartesian product of sweeper params and command-line overrides."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return self.split_arguments(parser.parse_overrides(self._parse_config() + list(arguments)), None)[0]

    def compose(self, overrides: Sequence[str]) -> Any:
        return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))

    def sweep(self, arguments: List[str]) -> Any:
        cells = plan_cells(self.grid(arguments), self.compose)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        if self.plan_only:
            print_plan(cells, sweep_dir, self.config.hydra.launcher)
            return []
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        todo = pending_cells(cells, sweep_dir)
        if not todo:
            return []
        os.environ[NCELLS_ENV] = str(len(todo))
        returns: list[Sequence[JobReturn]] = []
        idx = 0
        for batch in self.split_overrides_to_chunks([o for o, _ in todo], self.max_batch_size):
            returns.append(self.launcher.launch(batch, initial_job_idx=idx))
            idx += len(batch)
        report_failures([r for rs in returns for r in rs], sweep_dir)
        return returns


ConfigStore.instance().store(group="hydra/sweeper", name="mlsweep",
                             node={"_target_": f"{__name__}.MlsweepSweeper", "max_batch_size": None, "params": {},
                                   "plan_only": False})
