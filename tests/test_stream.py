"""Streaming a checkpoint from disk block by block: same weights as in memory, memory near one block."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ARCHITECTURES, MOE_ARCHITECTURES, make_tiny_model
from transformers import AutoModelForCausalLM, LlamaConfig

from mlsweep.prune import prune_model
from mlsweep.prune.stream import prune_checkpoint

SCRIPT = Path(__file__).parent / "scripts" / "peak_memory.py"


def calib():
    return torch.randint(4, 200, (6, 16), generator=torch.Generator().manual_seed(0))


DENSE = [a for a in ARCHITECTURES if a not in MOE_ARCHITECTURES]
METHODS = ("sparsegpt", "wanda", "magnitude")
# every dense architecture, the methods in turn; OWL on two; bf16 weights on two
CASES = [(arch, METHODS[i % 3], "uniform", None) for i, arch in enumerate(DENSE)] + [
    ("bloom", "wanda", "owl", None),
    ("gpt2", "sparsegpt", "owl", None),
    ("llama", "sparsegpt", "uniform", "bfloat16"),
    ("gpt2", "wanda", "uniform", "bfloat16"),
]


@pytest.mark.parametrize("arch,method,allocation,dtype", CASES)
def test_streamed_checkpoint_equals_in_memory_pruning(tmp_path, arch, method, allocation, dtype):
    src = make_tiny_model(tmp_path / arch, arch=arch)
    report = prune_checkpoint(
        src, tmp_path / "out", calib(), method, 0.5, allocation=allocation, dtype=dtype, engine=dict(batch_size=4)
    )
    torch_dtype = getattr(torch, dtype) if dtype else None
    ref = AutoModelForCausalLM.from_pretrained(src, dtype=torch_dtype).eval()
    ref_report = prune_model(ref, calib(), method, 0.5, allocation=allocation, engine=dict(batch_size=4))
    out = AutoModelForCausalLM.from_pretrained(tmp_path / "out", dtype=torch_dtype).eval()
    assert next(out.parameters()).dtype == (torch_dtype or torch.float32)
    expected = ref.state_dict()
    for name, tensor in out.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert report.per_linear == ref_report.per_linear and report.allocated == ref_report.allocated
    assert (tmp_path / "out" / "tokenizer.json").exists()


@pytest.mark.parametrize("arch", MOE_ARCHITECTURES)
def test_moe_checkpoints_are_refused_naming_the_in_memory_alternative(tmp_path, arch):
    """Per-expert checkpoint tensors are fused by transformers at load; streaming does not fuse them."""
    src = make_tiny_model(tmp_path / arch, arch=arch)
    with pytest.raises(ValueError, match=r"engine\.stream_from_disk.*experts.*engine\.stream_from_disk=false"):
        prune_checkpoint(src, tmp_path / "out", calib(), "wanda", 0.5)
    assert not (tmp_path / "out").exists()


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
