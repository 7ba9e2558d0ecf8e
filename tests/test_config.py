"""Config tree: every option of every group composes; bad input is rejected early, naming the field."""

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.prune.registry import all_pruners

GROUPS = ["model", "pruner", "calib", "sparsity", "eval", "logger"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_of_every_group_composes(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    OmegaConf.to_container(cfg[group], resolve=True, throw_on_missing=True)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_with_its_sweep_params(experiment):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    assert cfg.name == experiment
    assert cfg.hydra.sweeper.params, "an experiment file states its grid in hydra.sweeper.params"
    for key, values in cfg.hydra.sweeper.params.items():
        for value in str(values).split(","):
            if key in GROUPS:
                assert value in options(key), f"{experiment}: {key}={value} is not an option"


def test_registry_and_pruner_configs_are_the_same_set():
    assert {s.name for s in all_pruners()} == set(options("pruner"))


def test_unknown_pruner_on_the_cli_says_did_you_mean():
    proc = subprocess.run([sys.executable, "-m", "mlsweep", "pruner=wandaa"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Did you mean 'wanda'" in proc.stderr
    assert f"Available: {', '.join(options('pruner'))}" in proc.stderr


def test_a_task_in_a_missing_include_folder_is_reported_as_the_folder(tmp_path, tiny_overrides):
    row = run_config(
        compose_cfg(tiny_overrides + ["eval.include_paths=[/nonexistent/tasks]", "eval.tasks=[my_task]"]), tmp_path
    )
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "eval.include_paths[0]='/nonexistent/tasks': folder does not exist" in row["error"]


def test_eval_text_shorter_than_one_window_fails_before_loading_naming_language_and_seqlen(
    tmp_path, tiny_overrides, text_folder
):
    import shutil

    text = tmp_path / "text"
    shutil.copytree(text_folder, text)
    (text / "bb" / "test.jsonl").write_text('{"text": "abc def."}\n')
    overrides = [o for o in tiny_overrides if not o.startswith("eval.source.path")] + [f"eval.source.path={text}"]
    row = run_config(compose_cfg(overrides), tmp_path / "cell")
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "eval.languages: bb has" in row["error"] and "eval.seqlen=32" in row["error"], row["error"]
