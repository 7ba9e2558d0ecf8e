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


def test_a_wrong_type_fails_at_compose_time():
    with pytest.raises(Exception, match="sparsity.target"):
        compose_cfg(["sparsity.target=half"])


@pytest.mark.parametrize(
    "override,allowed",
    [
        ("model.dtype=float8", "float32, float16, bfloat16"),
        ("sparsity.allocation=owll", "cwl, owl, uniform"),
        ("calib.mix=propotional", "proportional"),
        ("calib.format=translate", "translation"),
        ("engine.propagation=sideways", "sequential, dense"),
        ("calib.source.name=mc5", "mc4"),
    ],
)
def test_an_option_outside_its_registry_fails_at_compose_time_listing_the_allowed(override, allowed):
    with pytest.raises(Exception) as err:
        compose_cfg([override])
    text = f"{err.value} {err.value.__cause__}"
    assert override.split("=")[1] in text and allowed in text


def test_unknown_pruner_on_the_cli_says_did_you_mean():
    proc = subprocess.run([sys.executable, "-m", "mlsweep", "pruner=wandaa"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Did you mean 'wanda'" in proc.stderr
    assert f"Available: {', '.join(options('pruner'))}" in proc.stderr


@pytest.mark.parametrize(
    "override,field",
    [
        ("sparsity.target=1.0", "sparsity.target"),
        ("sparsity.target=-0.2", "sparsity.target"),
        ("calib.languages=[xx]", "calib.languages"),
        ("eval.languages=[aa,zz]", "eval.languages"),
        ("calib.nsamples=0", "calib.nsamples"),
        ("calib.shots=0", "calib.shots=0: must be a positive number"),
        ("calib.shots=-1", "calib.shots=-1: must be a positive number"),
        ("calib.languages=[aa,bb,cc] calib.nsamples=2", "calib.nsamples=2: fewer windows than calib.languages (3"),
        ("model.seqlen=4096", "model.seqlen"),
        ("model.path=/nonexistent/model", "model.path"),
        ("calib.split=test", "calib.split"),
        ("eval.max_windows=0", "eval.max_windows=0"),
        ("eval.max_windows=-2", "eval.max_windows=-2"),
        ("eval.limit=-1", "eval.limit=-1"),
        ("eval.limit=0", "eval.limit=0"),
        (
            "eval.include_paths=[/nonexistent/tasks]",
            "eval.include_paths[0]='/nonexistent/tasks': folder does not exist",
        ),
        ("eval.max_length=100", "eval.max_length=100"),
        ("eval.apply_chat_template=true", "eval.apply_chat_template=true: the tokenizer of"),
    ],
)
def test_bad_input_is_rejected_before_weights_are_loaded(tmp_path, tiny_overrides, override, field):
    cfg = compose_cfg(tiny_overrides + override.split())
    row = run_config(cfg, tmp_path)
    assert row["status"] == "failed"
    assert field in row["error"], row["error"]
    assert "time/load_s" not in row, "the model must not be loaded for a config error"
    assert (tmp_path / "result.json").exists()


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
