"""One registry per extension axis: its names are the config's names, and entries are found by structure."""

import pytest
import yaml

from mlsweep import CONF_DIR
from mlsweep.data.formats import FORMATS
from mlsweep.data.mixes import MIXES
from mlsweep.data.sources import SOURCES
from mlsweep.evaluate.scorers import SCORERS, project_task
from mlsweep.prune.allocation import ALLOCATIONS
from mlsweep.prune.registry import PRUNERS
from mlsweep.registry import Registry, UnknownName
from mlsweep.tracking import TRACKERS


def options(group: str) -> set[str]:
    return {p.stem for p in (CONF_DIR / group).glob("*.yaml")}


def yaml_values(group: str, *path: str) -> set[str]:
    """The values the YAMLs of a config group give a field (absent ones skipped)."""
    out = set()
    for p in (CONF_DIR / group).glob("*.yaml"):
        node = yaml.safe_load(p.read_text()) or {}
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            out.add(str(node))
    return out


@pytest.mark.parametrize("group,registry", [("pruner", PRUNERS), ("logger", TRACKERS)])
def test_config_group_options_and_registry_names_are_the_same_set(group, registry):
    assert options(group) == set(registry.names())


@pytest.mark.parametrize(
    "group,path,registry",
    [
        ("sparsity", ("allocation",), ALLOCATIONS),
        ("calib", ("mix",), MIXES),
        ("calib", ("format",), FORMATS),
        ("calib", ("source", "name"), SOURCES),
        ("eval", ("source", "name"), SOURCES),
    ],
)
def test_every_value_a_yaml_names_is_a_registered_entry(group, path, registry):
    values = yaml_values(group, *path)
    assert values, f"no {group} YAML sets {'.'.join(path)}"
    assert values <= set(registry.names())


def test_the_registry_error_names_the_field_suggests_and_lists():
    reg: Registry[int] = Registry("sparsity.allocation")
    reg.register("owl", 1)
    reg.register("uniform", 2)
    with pytest.raises(
        UnknownName,
        match=r"sparsity.allocation='owll' is unknown. Did you mean 'owl'\? "
        r"Available: owl, uniform",
    ):
        reg.get("owll")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("owl", 3)


def test_a_package_registry_finds_its_entries_by_importing_its_modules():
    assert {"dense", "magnitude", "wanda", "sparsegpt", "mwanda", "wanda_ratio"} <= set(PRUNERS.names())
    assert {"uniform", "owl", "cwl"} <= set(ALLOCATIONS.names())


def test_project_tasks_are_named_scorer_underscore_language():
    scorer, lang = project_task("kim_xnli_sw")
    assert scorer is SCORERS.get("kim_xnli") and lang == "sw"
    assert project_task("xnli_sw") is None  # an lm-eval task


def test_the_one_language_calibration_options_are_what_their_generator_writes():
    from mlsweep.config.make_calib import LANGUAGES, render

    for lang in LANGUAGES:
        assert (CONF_DIR / "calib" / f"{lang}.yaml").read_text() == render(lang), lang
