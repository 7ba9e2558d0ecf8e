"""mlsweep.prune.prune_model on tiny random models: the Hydra-free API."""

import copy

import pytest
import torch
from helpers import tiny_config
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model


def tiny(arch="llama", dtype=torch.float32):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(arch, 300)).to(dtype).eval()


def calib(n=6, seqlen=16):
    return torch.randint(4, 300, (n, seqlen), generator=torch.Generator().manual_seed(1))


def test_wanda_prunes_every_block_linear_per_row_and_leaves_the_rest_dense():
    model = tiny()
    emb, head = model.get_input_embeddings().weight.clone(), model.lm_head.weight.clone()
    report = prune_model(model, calib(), "wanda", 0.5)
    assert report.overall == pytest.approx(0.5)
    assert len(report.per_block) == 2 and len(report.per_linear) == 14  # 7 linears x 2 blocks
    assert all(v == pytest.approx(0.5) for v in report.per_linear.values())
    q = model.model.layers[0].self_attn.q_proj.weight
    assert ((q == 0).sum(dim=1) == q.shape[1] // 2).all()
    assert torch.equal(model.get_input_embeddings().weight, emb)
    assert torch.equal(model.lm_head.weight, head)
    assert len(report.seconds_per_block) == 2


def test_calibration_as_list_of_rows_equals_tensor_and_is_deterministic():
    rows = calib()
    a, b = tiny(), tiny()
    prune_model(a, rows, "wanda", 0.6)
    prune_model(b, [list(r) for r in rows.tolist()], "wanda", 0.6)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_magnitude_needs_no_calibration_and_dense_changes_nothing():
    model = tiny()
    before = copy.deepcopy(model.state_dict())
    report = prune_model(model, None, "dense", 0.0)
    assert report.overall == 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    report = prune_model(model, None, "magnitude", 0.5)
    assert report.overall == pytest.approx(0.5, abs=1e-3)


def test_fp16_weights_are_written_back_in_their_dtype():
    model = tiny(dtype=torch.float16)
    prune_model(model, calib(), "wanda", 0.5)
    assert model.model.layers[1].mlp.down_proj.weight.dtype == torch.float16
    assert torch.isfinite(model(calib(2)).logits.float()).all()


def test_language_tags_must_match_rows():
    with pytest.raises(ValueError, match="languages"):
        prune_model(tiny(), calib(4), "wanda", 0.5, languages=["en"] * 3)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(method="wandaa"), "Did you mean 'wanda'"),
        (dict(method="wanda", sparsity=1.2), "sparsity.target"),
        (dict(method="wanda", calibration=torch.empty(0, 16, dtype=torch.long)), "calibration"),
        (dict(method="wanda", params=dict(bogus=1)), "pruner.bogus"),
    ],
)
def test_bad_input_fails_before_any_weight_changes(kwargs, needle):
    model = tiny()
    before = copy.deepcopy(model.state_dict())
    args = dict(calibration=calib(), method="wanda", sparsity=0.5) | kwargs
    with pytest.raises(ValueError, match=needle):
        prune_model(model, **args)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
