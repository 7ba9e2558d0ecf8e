"""Streaming a checkpoint from disk block by block: same weights as in memory, memory near one block."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_tiny_model
from transformers import AutoModelForCausalLM, LlamaConfig

from mlsweep.prune import prune_model
from mlsweep.prune.stream import prune_checkpoint

SCRIPT = Path(__file__).parent / "scripts" / "peak_memory.py"


def calib():
    return torch.randint(4, 200, (6, 16), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "arch,method,allocation",
    [
        ("llama", "sparsegpt", "uniform"),
        ("bloom", "wanda", "owl"),
        ("gpt_neox", "wanda", "uniform"),
        ("xglm", "magnitude", "uniform"),
    ],
)
def test_streamed_checkpoint_equals_in_memory_pruning(tmp_path, arch, method, allocation):
    src = make_tiny_model(tmp_path / arch, arch=arch)
    report = prune_checkpoint(
        src, tmp_path / "out", calib(), method, 0.5, allocation=allocation, engine=dict(batch_size=4)
    )
    ref = AutoModelForCausalLM.from_pretrained(src).eval()
    ref_report = prune_model(ref, calib(), method, 0.5, allocation=allocation, engine=dict(batch_size=4))
    out = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    expected = ref.state_dict()
    for name, tensor in out.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert report.per_linear == ref_report.per_linear and report.allocated == ref_report.allocated
    assert (tmp_path / "out" / "tokenizer.json").exists()


@pytest.mark.integration
def test_a_model_over_the_memory_budget_is_pruned_within_it(tmp_path):
    """24 blocks of 7.4 MB (178 MB): streaming must stay under a 40% budget; in memory cannot.

    Streaming holds one block, its statistics, and transient copies while a block is read
    from and written to safetensors: a few blocks' worth, whatever the number of blocks.
    """
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=384,
        intermediate_size=1152,
        num_hidden_layers=24,
        num_attention_heads=6,
        num_key_value_heads=6,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    weights_mb = sum(p.numel() for p in model.parameters()) * 4 / 2**20
    model.save_pretrained(tmp_path / "big")
    del model
    block_mb = weights_mb / 24
    budget_mb = 0.40 * weights_mb
    runs = {}
    for mode in ("stream", "memory"):
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), mode, str(tmp_path / "big"), str(tmp_path / "out"), "sparsegpt"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_growth_mb"]
    print(
        f"\nweights {weights_mb:.1f} MB ({block_mb:.1f} MB a block), budget {budget_mb:.1f} MB, peak growth: "
        f"streamed {runs['stream']} MB ({runs['stream'] / block_mb:.1f} blocks), in memory {runs['memory']} MB"
    )
    assert runs["stream"] < budget_mb
    assert runs["memory"] > weights_mb  # the budget is real: loading the model alone exceeds it
