"""The model a process keeps between cells: restored bit for bit, or loaded again when it cannot be."""

import os

import pytest
import torch
from test_cell import compose_cfg

from mlsweep.cell import modelcache
from mlsweep.cell.app import run_config
from mlsweep.modeling import load_model
from mlsweep.prune import prune_model


def _keep(path, mode):
    def load():
        return load_model(str(path), "float32", torch.device("cpu"))

    return modelcache.model_for_cell(("key", str(path)), load, str(path), None, mode)


def _prune(model):
    calib = torch.randint(0, 200, (4, 16), generator=torch.Generator().manual_seed(0))
    prune_model(model, calib, "sparsegpt", 0.6)


@pytest.mark.parametrize("mode", ["copy", "files"])
def test_the_next_cell_gets_the_dense_weights_bit_for_bit(tiny_model, mode):
    modelcache.drop()
    model, _, how = _keep(tiny_model, mode)
    assert how == modelcache.LOADED
    fresh = {n: p.clone() for n, p in model.named_parameters()}
    _prune(model)
    assert any(not torch.equal(fresh[n], p) for n, p in model.named_parameters())
    again, _, how = _keep(tiny_model, mode)
    assert again is model and how == f"restored:{mode}"
    for name, p in again.named_parameters():
        assert torch.equal(p, fresh[name]), name


def test_a_rewritten_checkpoint_is_loaded_again(tmp_path, tiny_model):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    modelcache.drop()
    first, _, _ = _keep(folder, "copy")
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    second, _, how = _keep(folder, "copy")
    assert how == modelcache.LOADED and second is not first


def test_a_model_left_with_a_hook_is_loaded_again(tiny_model):
    modelcache.drop()
    first, _, _ = _keep(tiny_model, "copy")
    first.model.layers[0].register_forward_hook(lambda *a: None)  # as a prune that failed inside a hook would
    second, _, how = _keep(tiny_model, "copy")
    assert how == modelcache.LOADED and second is not first


def _fail_after_pruning(model):
    raise RuntimeError("the cell fails with its model pruned")


def test_cells_in_one_process_give_the_numbers_of_cells_each_loading_the_model(tmp_path, tiny_overrides, monkeypatch):
    """Whatever ran before in the process (a cell that failed after pruning included), a cell's row is the
    one it gets alone."""
    import mlsweep.cell.prune as cell_prune

    cells = [
        ["pruner=sparsegpt", "sparsity.target=0.6"],
        ["pruner=magnitude", "sparsity.target=0.7"],  # fails after pruning (below)
        ["pruner=wanda", "sparsity.target=0.5"],
        ["pruner=dense"],
    ]
    real_check = cell_prune.check_finite_weights

    def run(i, where):
        monkeypatch.setattr(cell_prune, "check_finite_weights", _fail_after_pruning if i == 1 else real_check)
        return run_config(compose_cfg(tiny_overrides + cells[i]), tmp_path / f"{where}{i}")

    alone, together = [], []
    for i in range(len(cells)):
        modelcache.drop()
        alone.append(run(i, "alone"))
    modelcache.drop()
    together = [run(i, "together") for i in range(len(cells))]
    assert [r["status"] for r in together] == ["done", "failed", "done", "done"]
    assert [alone[i]["model_source"] for i in (0, 2, 3)] == ["loaded"] * 3
    assert [together[i]["model_source"] for i in (0, 2, 3)] == ["loaded", "restored:copy", "restored:copy"]
    for a, b in zip(alone, together):
        assert a["status"] == b["status"]
        metrics = [k for k in a if k.startswith(("ppl/", "eval_windows/", "sparsity_"))]
        assert metrics or a["status"] == "failed"
        assert {k: a[k] for k in metrics} == {k: b[k] for k in metrics}
