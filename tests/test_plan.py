"""`mlsweep plan` without the weights: every model config is planned from its YAML shape, a model bigger than
one GPU gets the GPUs it needs, and invalid grid points are listed instead of stopping the plan."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from mlsweep import CONF_DIR

pytestmark = pytest.mark.integration
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem != "testbed")


def plan(tmp_path, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlsweep", "plan", f"hydra.sweep.dir={tmp_path / 'sweep'}", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    return proc, proc.stdout + proc.stderr


def test_every_model_config_states_its_shape_and_the_papers_settings():
    for name in MODELS:
        node = yaml.safe_load((CONF_DIR / "model" / f"{name}.yaml").read_text())
        assert node["name"] == name and node["seqlen"] == 2048 and node["family"], name
        assert node["params_b"] > 0 and {"layers", "hidden", "intermediate", "vocab"} <= set(node["dims"]), name
        assert node["dtype"] in ("float16", "bfloat16", "float32"), name
        if "experts" in node["dims"]:
            assert 0 < node["dims"]["active"] < node["dims"]["experts"], name


def test_every_model_config_is_planned_without_its_weights(tmp_path):
    proc, out = plan(tmp_path, f"model={','.join(MODELS)}", "pruner=wanda")
    assert proc.returncode == 0, out[-3000:]
    assert f"{len(MODELS)} cells: {len(MODELS)} todo" in out
    for name in MODELS:
        (line,) = [line for line in out.splitlines() if re.search(rf"model={name}(,|\s)", line)]
        assert re.search(r"\s\d+\.\d\s+\d+\s+\d+\s+\d+\.\d+ (min|h)(\s|$)", line), line  # GB, GPUs, tasks, time
    assert "note: not on this machine, so their context, text and request checks run in the cell: " in out


def test_the_70b_study_plans_two_80gb_gpus_per_cell_and_lists_invalid_cells(tmp_path):
    proc, out = plan(
        tmp_path,
        "+experiment=lang_calib",
        "model=llama3_70b_instruct",
        "hydra/launcher=slurm",
        "pruner=wanda",
        "calib=en,proportional",
        "calib.seed=0",
        "sparsity.target=0.5",
    )
    (cell,) = [line for line in out.splitlines() if line.startswith("todo ")]
    assert re.search(r"\s\d+\.\d\s+2\s+0\s", cell) and "gpus_per_node=2" in cell, cell
    assert "on 80 GB GPUs" in out
    (bad,) = [line for line in out.splitlines() if line.startswith("invalid ")]
    assert "calib=proportional" in bad and "model.family='llama3' are not published" in bad
    assert proc.returncode == 2 and "a launch would stop" in out
