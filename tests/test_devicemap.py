"""A model evaluated spread over devices (model.device_map) gives the single-device cell's numbers.

There is no GPU here, so the split is forced with a CPU budget (`model.max_memory={cpu: ...}`): the
rest of the model goes to disk, which runs accelerate's whole hook and offload path (RESEARCH C1).
"""

import pytest
from helpers import copa_items, write_copa_tasks
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config

pytestmark = pytest.mark.integration


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def copa_aa(tmp_path_factory):
    return write_copa_tasks(tmp_path_factory.mktemp("copa"), {"toy_copa_aa": copa_items(10)})


def budget(tiny_model) -> str:
    """A CPU budget of 80% of the tiny model's weights: the rest must go to disk (accelerate also keeps room
    for the largest layer, so a budget of half puts everything on disk)."""
    size = (tiny_model / "model.safetensors").stat().st_size
    return f"{size * 8 // 10 // 1000}KB"


@pytest.mark.parametrize("engine", ["in_memory", "streamed"])
def test_spread_cell_gives_the_single_device_numbers(tmp_path, tiny_overrides, tiny_model, copa_aa, engine):
    base = tiny_overrides + [
        "pruner=sparsegpt",
        f"eval.include_paths=[{copa_aa}]",
        "eval.tasks=[toy_copa_aa]",
        "eval.batch_size=4",
    ]
    if engine == "streamed":
        base.append("engine.stream_from_disk=true")
    one = run_config(compose_cfg(base), tmp_path / "one")
    spread = run_config(
        compose_cfg(base + ["model.device_map=auto", f"model.max_memory={{cpu:{budget(tiny_model)}}}"]),
        tmp_path / "spread",
    )
    assert one["status"] == spread["status"] == "done", (one["error"], spread["error"])
    assert one["eval_devices"] == "cpu" and spread["eval_devices"] == "cpu,disk"  # it was split
    assert spread["cell_id"] == one["cell_id"], "where a cell evaluates is not part of its identity"
    assert spread["sparsity_measured"] == one["sparsity_measured"]
    for lang in ("aa", "bb", "cc"):
        assert spread[f"ppl/{lang}"] == one[f"ppl/{lang}"]
    assert spread["acc/toy_copa_aa"] == one["acc/toy_copa_aa"]
    assert not list((tmp_path / "spread").glob("offload-*")), "the offload folder is removed after evaluation"


def test_a_bad_device_map_or_budget_fails_at_composition_or_validation(tmp_path, tiny_overrides):
    with pytest.raises(Exception) as err:
        compose_cfg(tiny_overrides + ["model.device_map=everywhere"])
    assert "balanced_low_0" in f"{err.value} {err.value.__cause__}"
    row = run_config(compose_cfg(tiny_overrides + ["model.device_map=auto", "model.max_memory={cuda0:1GB}"]), tmp_path)
    assert row["status"] == "failed" and "model.max_memory.cuda0: not a device" in row["error"]
    row = run_config(compose_cfg(tiny_overrides + ["model.device_map=auto", "model.max_memory={cpu:lots}"]), tmp_path)
    assert row["status"] == "failed" and "model.max_memory.cpu='lots'" in row["error"]


def test_the_input_embeddings_never_go_to_disk(tiny_model):
    """lm-eval and the perplexity loop send inputs to the embeddings' device: a map that would put them
    on disk keeps them on the main device, or fails naming model.max_memory when a coarser entry holds them."""
    import torch

    from mlsweep.devicemap import _embeddings_resident
    from mlsweep.modeling import load_model

    model, _ = load_model(str(tiny_model), "float32", torch.device("cpu"))
    moved = _embeddings_resident(model, {"model.embed_tokens": "disk", "model.layers": "cpu", "lm_head": "disk"})
    assert moved == {"model.embed_tokens": "cpu", "model.layers": "cpu", "lm_head": "disk"}
    assert _embeddings_resident(model, {"model": 0, "lm_head": "disk"}) == {"model": 0, "lm_head": "disk"}
    with pytest.raises(ValueError, match="model.max_memory: the input embeddings"):
        _embeddings_resident(model, {"": "disk"})
