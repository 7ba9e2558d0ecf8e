"""Whole cells in half precision on CPU, MoE cells, and the exclusions a model config lists."""

import math

import pytest
from helpers import make_tiny_model
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def tiny_mixtral(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("moe") / "mixtral", arch="mixtral")


def assert_done(row, target=0.5):
    assert row["status"] == "done", row["error"]
    assert row["sparsity_measured"] == pytest.approx(target, abs=0.01)
    assert all(math.isfinite(row[f"ppl/{lang}"]) for lang in ("aa", "bb", "cc"))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_half_precision_cell_loads_calibrates_prunes_and_evaluates(tmp_path, tiny_overrides, dtype):
    row = run_config(compose_cfg(tiny_overrides + ["pruner=sparsegpt", f"model.dtype={dtype}"]), tmp_path)
    assert_done(row)
    assert row["config"]["model"]["dtype"] == dtype


def test_a_bf16_cell_streamed_gives_the_in_memory_numbers(tmp_path, tiny_overrides):
    base = tiny_overrides + ["pruner=wanda", "model.dtype=bfloat16"]
    mem = run_config(compose_cfg(base), tmp_path / "mem")
    disk = run_config(compose_cfg(base + ["engine.stream_from_disk=true"]), tmp_path / "disk")
    assert_done(mem) and assert_done(disk)
    for key in ("sparsity_measured", "sparsity_per_block", "ppl/aa", "ppl/bb", "ppl/cc"):
        assert mem[key] == disk[key], key


@pytest.mark.parametrize("pruner", ["wanda", "sparsegpt"])
def test_a_bf16_moe_cell_prunes_experts_and_reports_routers_and_fallbacks(
    tmp_path, tiny_overrides, tiny_mixtral, pruner
):
    overrides = [o for o in tiny_overrides if not o.startswith("model.path=")]
    cfg = compose_cfg(overrides + [f"model.path={tiny_mixtral}", "model.dtype=bfloat16", f"pruner={pruner}"])
    row = run_config(cfg, tmp_path)
    assert_done(row)
    assert row["sparsity_excluded"] == {"mlp.gate.weight": "router"}
    assert isinstance(row["experts_fallback"], int) and row["experts_fallback"] >= 0


def test_a_streamed_moe_cell_fails_before_evaluation_naming_the_alternative(tmp_path, tiny_overrides, tiny_mixtral):
    overrides = [o for o in tiny_overrides if not o.startswith("model.path=")]
    row = run_config(compose_cfg(overrides + [f"model.path={tiny_mixtral}", "engine.stream_from_disk=true"]), tmp_path)
    assert row["status"] == "failed"
    assert "engine.stream_from_disk=false" in row["error"]
    assert "time/eval_s" not in row


def test_model_exclude_leaves_the_tensor_dense_and_the_row_lists_it(tmp_path, tiny_overrides):
    cfg = compose_cfg(tiny_overrides + ["pruner=wanda"])
    cfg.model.exclude = {"mlp.down_proj.weight": "kept dense for this study"}  # as a model YAML would list it
    row = run_config(cfg, tmp_path)
    assert_done(row)
    assert row["sparsity_excluded"] == {"mlp.down_proj.weight": "kept dense for this study"}
    plain = run_config(compose_cfg(tiny_overrides + ["pruner=wanda"]), tmp_path / "plain")
    assert plain["sparsity_excluded"] == {} and plain["cell_id"] != row["cell_id"]


def test_an_exclusion_without_a_reason_fails_before_the_model_loads(tmp_path, tiny_overrides):
    row = run_config(compose_cfg(tiny_overrides + ["++model.exclude={mixing:''}"]), tmp_path)
    assert row["status"] == "failed" and "model.exclude" in row["error"]
    assert "time/load_s" not in row
