"""Hydra plugin shell of the mlsweep sweeper (logic: mlsweep/sweep/sweeper.py).

Selected by `override hydra/sweeper: mlsweep` in conf/config.yaml. It turns
Hydra's objects into plain values for the logic: each grid point's composed
config into a Cell (its CellSpec and folder), the launcher node into a dict,
the jobs' returns into Outcomes.

Uses Hydra internals (BasicSweeper, `_parse_config`, `JobReturn._return_value`),
which is safe because pyproject.toml pins hydra-core==1.3.8.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.mlsweep_sweeper.grid_compose import GridComposer
from mlsweep.config.spec import CellSpec
from mlsweep.sweep.plan import print_plan
from mlsweep.sweep.resources import check_launcher
from mlsweep.sweep.sweeper import NCELLS_ENV, Cell, Invalid, Outcome, pending_cells, plan_cells, report_failures, stop


def outcome(r: JobReturn) -> Outcome:
    """A job's return as plain values: done, submitted, held (by another live launch) or failed with its error."""
    overrides = tuple(r.overrides or [])
    if r.status == JobStatus.FAILED:
        value = r._return_value
        first = str(value).splitlines()[0] if str(value) else ""
        return Outcome(overrides, "failed", f"{type(value).__name__}: {first}")
    if r.return_value in ("done", "submitted", "held"):
        return Outcome(overrides, r.return_value)
    return Outcome(overrides, "failed", "see result.json")


class MlsweepSweeper(BasicSweeper):
    def __init__(
        self, max_batch_size: Optional[int] = None, params: Optional[dict] = None, plan_only: bool = False
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.plan_only = plan_only  # `mlsweep plan`: list the cells with status and cost, run nothing
        self.composer: Optional[GridComposer] = None

    def grid(self, arguments: List[str]) -> list[list[str]]:
        """The cartesian product of sweeper params and command-line overrides."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return self.split_arguments(parser.parse_overrides(self._parse_config() + list(arguments)), None)[0]

    def compose(self, overrides: Sequence[str]) -> Cell:
        if self.composer is None:  # one full composition per set of group choices (grid_compose.py)
            self.composer = GridComposer(self.hydra_context.config_loader, self.config)
        with self.composer.composed(overrides) as cfg:
            return Cell(tuple(overrides), CellSpec.from_config(cfg), str(cfg.hydra.sweep.subdir))

    def sweep(self, arguments: List[str]) -> Any:
        invalid: Optional[list[Invalid]] = [] if self.plan_only else None
        launcher = OmegaConf.to_container(self.config.hydra.launcher, resolve=True)
        try:
            check_launcher(launcher)  # before composing the grid: a bad rule stops plan and launch alike
        except ValueError as e:
            stop(f"{e}\nnothing was run.", 2)
        cells = plan_cells(self.grid(arguments), self.compose, invalid)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        if self.plan_only:
            print_plan(cells, sweep_dir, launcher, invalid)
            if invalid:
                stop(f"{len(invalid)} grid points are not valid cells (listed above): a launch would stop", 2)
            return []
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        todo = pending_cells(cells, sweep_dir)
        if not todo:
            return []
        os.environ[NCELLS_ENV] = str(len(todo))
        returns: list[Sequence[JobReturn]] = []
        idx = 0
        for batch in self.split_overrides_to_chunks([list(c.overrides) for c in todo], self.max_batch_size):
            returns.append(self.launcher.launch(batch, initial_job_idx=idx))
            idx += len(batch)
        report_failures([outcome(r) for rs in returns for r in rs], sweep_dir)
        return returns


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="mlsweep",
    node={"_target_": f"{__name__}.MlsweepSweeper", "max_batch_size": None, "params": {}, "plan_only": False},
)
