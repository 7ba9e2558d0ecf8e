"""One full cell on a tiny random model: the documented row, atomically written."""

import json
import math

import pytest
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.results.row import ROW_SCHEMA


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def schema_matches(key: str) -> bool:
    for pattern in ROW_SCHEMA:
        if pattern == key or ("<" in pattern and key.startswith(pattern.split("<")[0])):
            return True
    return False


def test_a_wanda_cell_produces_the_documented_row(tmp_path, tiny_overrides):
    cfg = compose_cfg(tiny_overrides + ["pruner=wanda", "calib.languages=[aa,bb]", "sparsity.target=0.5"])
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["cell_id"] == row["cell_id"] and on_disk["status"] == "done"
    assert not list(tmp_path.glob(".result.json.*")), "no temp file left behind"
    for key in row:
        assert schema_matches(key), f"undocumented row key {key}"
    for key in [k for k in ROW_SCHEMA if "<" not in k and k != "peak_gpu_mb"]:
        assert key in row, f"documented key {key} missing"
    assert row["sparsity_measured"] == pytest.approx(0.5)
    assert row["calib_count/aa"] == 2 and row["calib_count/bb"] == 2
    for lang in ("aa", "bb", "cc"):
        assert math.isfinite(row[f"ppl/{lang}"]) and row[f"ppl/{lang}"] > 1
        assert row[f"eval_windows/{lang}"] <= 8
    assert row["version/torch"] and row["git_sha"]
    assert row["config"]["pruner"]["name"] == "wanda"


def test_dense_cell_records_no_calibration_axes(tmp_path, tiny_overrides):
    row = run_config(compose_cfg(tiny_overrides + ["pruner=dense"]), tmp_path)
    assert row["status"] == "done"
    assert row["calib"] == "-" and row["sparsity_target"] == 0.0 and row["sparsity_measured"] == 0.0
    assert "time/calib_s" not in row


def test_calibration_is_seeded(tmp_path, tiny_overrides):
    a = run_config(compose_cfg(tiny_overrides + ["calib.seed=3"]), tmp_path / "a")
    b = run_config(compose_cfg(tiny_overrides + ["calib.seed=3"]), tmp_path / "b")
    c = run_config(compose_cfg(tiny_overrides + ["calib.seed=4"]), tmp_path / "c")
    assert a["ppl/aa"] == b["ppl/aa"]
    assert a["cell_id"] == b["cell_id"] != c["cell_id"]
    assert a["ppl/aa"] != c["ppl/aa"]


def test_results_version_is_part_of_the_cell_id(monkeypatch, tiny_overrides):
    """Bumping RESULTS_VERSION (a code change that alters results) gives every cell a new id, so it runs again."""
    from mlsweep.config import identity
    from mlsweep.config.spec import CellSpec

    cfg = compose_cfg(tiny_overrides + ["pruner=wanda"])
    before = CellSpec.from_config(cfg).cell_id
    assert CellSpec.from_config(cfg).cell_id == before  # the id is a function of the config
    monkeypatch.setattr(identity, "RESULTS_VERSION", identity.RESULTS_VERSION + 1)
    assert CellSpec.from_config(cfg).cell_id != before


def test_readme_documents_exactly_the_row_schema():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- schema:")[1].split("<!-- /schema -->")[0]
    documented = {line.split("`")[1] for line in block.splitlines() if line.startswith("| `")}
    assert documented == set(ROW_SCHEMA)


def test_streamed_cell_gives_the_in_memory_numbers(tmp_path, tiny_overrides):
    base = tiny_overrides + ["pruner=sparsegpt", "sparsity=owl", "sparsity.owl_lambda=0.1"]
    mem = run_config(compose_cfg(base), tmp_path / "mem")
    disk = run_config(compose_cfg(base + ["engine.stream_from_disk=true"]), tmp_path / "disk")
    assert mem["status"] == disk["status"] == "done", (mem["error"], disk["error"])
    assert (tmp_path / "disk" / "pruned_model" / "model.safetensors.index.json").exists()
    assert mem["cell_id"] == disk["cell_id"], "where it is computed is not part of the identity"
    assert disk["sparsity_allocated"] == mem["sparsity_allocated"] and len(set(mem["sparsity_allocated"])) == 2
    for lang in ("aa", "bb", "cc"):
        assert disk[f"ppl/{lang}"] == pytest.approx(mem[f"ppl/{lang}"], rel=1e-6)


def test_magnitude_with_owl_uses_calibration(tmp_path, tiny_overrides):
    row = run_config(compose_cfg(tiny_overrides + ["pruner=magnitude", "sparsity=owl"]), tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["calib"] != "-" and "calib_count/aa" in row


def test_target_mix_calibrates_in_each_evaluation_language(tmp_path, tiny_overrides):
    target = run_config(compose_cfg(tiny_overrides + ["calib=target", "eval.languages=[aa,cc]"]), tmp_path / "t")
    assert target["status"] == "done", target["error"]
    assert target["calib"] == "target" and target["calib_count/aa"] == 4 and target["calib_count/cc"] == 4
    single = run_config(compose_cfg(tiny_overrides + ["calib.languages=[cc]", "eval.languages=[cc]"]), tmp_path / "c")
    assert target["ppl/cc"] == pytest.approx(single["ppl/cc"])


def test_weighted_mix(tmp_path, tiny_overrides):
    row = run_config(
        compose_cfg(
            tiny_overrides + ["calib=en_sw", "calib.languages=[aa,bb]", "++calib.weights={aa: 0.75, bb: 0.25}"]
        ),
        tmp_path,
    )
    assert row["status"] == "done", row["error"]
    assert row["calib_count/aa"] == 3 and row["calib_count/bb"] == 1


def _nan_norm_model(tiny_model, folder):
    """A copy of the tiny model whose RMSNorm weights are NaN (a broken checkpoint)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_model, folder)
    weights = load_file(folder / "model.safetensors")
    norms = [k for k in weights if k.endswith("norm.weight")]
    assert norms, "the tiny model has RMSNorm weights"
    for k in norms:
        weights[k] = torch.full_like(weights[k], float("nan"))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def test_a_model_with_nan_weights_fails_before_evaluation_naming_the_weights(tmp_path, tiny_model, tiny_overrides):
    """NaN norm weights: the row is `failed` naming them, before evaluation, whatever the suite measures.

    Perplexity alone would show NaN, but an lm-eval accuracy of a NaN model is finite, so the
    weights themselves are checked after pruning (no eval stage ran).
    """
    broken = _nan_norm_model(tiny_model, tmp_path / "nan_model")
    overrides = [o for o in tiny_overrides if not o.startswith("model.path=")] + [f"model.path={broken}"]
    row = run_config(compose_cfg(overrides + ["pruner=magnitude", "calib=en"]), tmp_path / "cell")
    assert row["status"] == "failed", row
    assert "weights not finite" in row["error"] and "norm.weight" in row["error"], row["error"]
    assert "time/eval_s" not in row and "time/prune_s" in row
    assert json.loads((tmp_path / "cell" / "result.json").read_text())["status"] == "failed"


def test_a_metric_that_is_not_finite_fails_the_row_naming_it():
    from mlsweep.cell.run import _check_finite

    _check_finite({"ppl/aa": 3.2, "acc/x": 0.5, "acc_stderr/x": float("nan")})  # standard errors may be NaN
    with pytest.raises(FloatingPointError, match=r"ppl/bb=nan.*acc/x=inf"):
        _check_finite({"ppl/aa": 3.2, "ppl/bb": float("nan"), "acc/x": float("inf")})
