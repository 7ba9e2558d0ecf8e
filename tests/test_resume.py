"""Per-block checkpoints: a pruning run stopped after some blocks resumes and ends with the same weights."""

import pytest
import torch
from helpers import tiny_config
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.api import prepare, run
from mlsweep.prune.checkpoint import BlockCheckpoint


def tiny(layers=4):
    torch.manual_seed(0)
    cfg = tiny_config("llama", 300)
    cfg.num_hidden_layers = layers
    return AutoModelForCausalLM.from_config(cfg).eval()


def calib():
    return torch.randint(4, 300, (8, 16), generator=torch.Generator().manual_seed(1))


class Preempted(Exception):
    pass


def stop_after(block):
    def on_block(i, _seconds, _sparsity):
        if i == block:
            raise Preempted(f"stopped after block {i}")

    return on_block


@pytest.mark.parametrize(
    "method,propagation", [("sparsegpt", "sequential"), ("sparsegpt", "dense"), ("wanda", "sequential")]
)
def test_a_run_stopped_after_block_1_resumes_to_the_uninterrupted_weights(tmp_path, method, propagation):
    reference = tiny()
    prune_model(reference, calib(), method, 0.5, engine=dict(propagation=propagation))

    interrupted = tiny()
    with pytest.raises(Preempted):
        prune_model(
            interrupted,
            calib(),
            method,
            0.5,
            engine=dict(propagation=propagation, checkpoint_dir=tmp_path),
            on_block=stop_after(1),
        )
    assert sorted(p.name for p in tmp_path.glob("block_*")) == ["block_0000.safetensors", "block_0001.safetensors"]

    resumed = tiny()  # a fresh process: dense weights from disk again
    job = prepare(calib(), method, 0.5, engine=dict(propagation=propagation, checkpoint_dir=tmp_path))
    run(resumed, job)
    assert job.opts.checkpoint.resumed == [0, 1]  # restored, not pruned again
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_checkpoint_of_another_computation_is_not_reused(tmp_path):
    with pytest.raises(Preempted):
        prune_model(tiny(), calib(), "sparsegpt", 0.5, engine=dict(checkpoint_dir=tmp_path), on_block=stop_after(1))
    job = prepare(calib(), "sparsegpt", 0.6, engine=dict(checkpoint_dir=tmp_path))  # another target: another key
    run(tiny(), job)
    assert job.opts.checkpoint.resumed == []


def test_checkpoint_writes_are_atomic_and_named_by_block(tmp_path):
    ckpt = BlockCheckpoint(tmp_path, "k")
    block = tiny().model.layers[0]
    ckpt.save(3, block)
    assert ckpt.has(3) and not ckpt.has(2)
    assert not list(tmp_path.glob(".block_*"))  # no temporary left behind
