"""The sweeper's grid composition (one full Hydra composition per set of group choices) against Hydra's own.

For the grid points of every experiment file, the config the sweeper derives must equal the one
`load_sweep_config` composes (as plain values, Hydra's node included) and give the same cell id and
folder: a cell planned with one id and run with another would be recomputed on every relaunch. The
default tier checks, per experiment, the first and the last point of three sets of group choices
(shared compositions reached with different value overrides); the slow tier checks every point.
"""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

import mlsweep.cell.app  # noqa: F401  (registers the schemas and resolvers)
from hydra_plugins.mlsweep_sweeper.grid_compose import GridComposer
from mlsweep import CONF_DIR
from mlsweep.config.spec import CellSpec, ConfigError

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
# Extra command-line overrides a user types beside an experiment, crossed with its grid.
EXTRA = ["sparsity.tolerance=0.02", "++calib.seed=3", "eval.max_windows=2,3"]


def _setup(experiment: str, extra: list[str]):
    loader = GlobalHydra.instance().config_loader()
    cli = [f"+experiment={experiment}", *extra]
    master = loader.load_configuration("config", cli, run_mode=RunMode.MULTIRUN)
    parser = OverridesParser.create(config_loader=loader)
    params = [f"{k}={v}" for k, v in master.hydra.sweeper.params.items()]
    grid = BasicSweeper.split_arguments(parser.parse_overrides(params + cli), None)[0]
    return loader, master, grid


def _cell(cfg):
    try:
        return CellSpec.from_config(cfg).cell_id, str(cfg.hydra.sweep.subdir)
    except ConfigError as e:
        return f"invalid: {e}", None


def _plain(cfg):
    out = OmegaConf.to_container(cfg, resolve=False)
    out["hydra"]["runtime"].pop("output_dir", None)
    return out


def _sample(composer: GridComposer, grid: list[list[str]], sets: int = 3) -> list[list[str]]:
    """The first and the last grid point of the first, middle and last set of group choices."""
    by_groups: dict[tuple, list] = {}
    for point in grid:
        parsed = composer.parser.parse_overrides(list(point))
        by_groups.setdefault(tuple(o.input_line for o in parsed if composer._shapes_defaults(o)), []).append(point)
    groups = list(by_groups.values())
    chosen = [groups[i] for i in sorted({0, len(groups) // 2, len(groups) - 1})][:sets]
    return [p for points in chosen for p in ([points[0], points[-1]] if len(points) > 1 else points)]


def _check(experiment: str, extra: list[str], every_point: bool) -> None:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader, master, grid = _setup(experiment, extra)
        composer = GridComposer(loader, master)
        points = grid if every_point else _sample(composer, grid)
        assert len(points) > 1
        for point in points:
            try:
                full = loader.load_sweep_config(master, list(point))
            except ConfigCompositionException as e:  # e.g. another pruner's option: the sweeper drops it first
                with pytest.raises(ConfigCompositionException, match=str(e).splitlines()[0][:40]):
                    with composer.composed(point):
                        pass
                continue
            with composer.composed(point) as fast:
                assert _plain(fast) == _plain(full), point
                assert _cell(fast) == _cell(full), point
            assert _cell(composer.compose(point)) == _cell(full)
        # the shared compositions are left as they were composed
        for groups, base in composer.bases.items():
            assert _plain(base) == _plain(loader.load_sweep_config(master, list(groups))), groups


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_grid_points_compose_as_hydra_composes_them(experiment):
    _check(experiment, EXTRA, every_point=False)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], EXTRA], ids=["experiment", "with-overrides"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_grid_point_composes_as_hydra_composes_it(experiment, extra):
    _check(experiment, extra, every_point=True)
