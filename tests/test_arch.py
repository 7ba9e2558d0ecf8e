"""What the engine prunes in a block: Conv1D layers (transposed storage), and the 2-D tensors it must not prune."""

import pytest
import torch
from helpers import tiny_config
from torch import nn
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.masks import make_target
from mlsweep.prune.pruners import sparsegpt


def tiny(arch, **changes):
    config = tiny_config(arch, 300)
    for key, value in changes.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def calib(n=6, seqlen=16):
    return torch.randint(4, 300, (n, seqlen), generator=torch.Generator().manual_seed(1))


def inputs_of(model, module, rows, batch):
    seen = []
    h = module.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach()))
    with torch.no_grad():
        for s in range(0, len(rows), batch):
            model(rows[s : s + batch])
    h.remove()
    return seen  # one (sequences, seqlen, d_in) per batch


def test_conv1d_wanda_compares_per_output_feature():
    """GPT-2 stores c_fc as (in 32, out 128): the mask keeps half of each output feature's column."""
    model, rows = tiny("gpt2"), calib()
    c_fc = model.transformer.h[0].mlp.c_fc
    X = torch.cat([x.reshape(-1, x.shape[-1]) for x in inputs_of(model, c_fc, rows, 1)])  # (tokens, 32)
    W = c_fc.weight.detach().clone()  # (32, 128) = (d_in, d_out)
    score = W.t().abs() * torch.sqrt((X**2).sum(0) / len(rows))  # (d_out, d_in)
    k = W.shape[0] // 2
    lowest = torch.sort(score, dim=1, stable=True)[1][:, :k]
    expected = torch.zeros_like(score, dtype=torch.bool).scatter_(1, lowest, True)
    report = prune_model(model, rows, "wanda", 0.5, engine=dict(batch_size=3))
    assert torch.equal((c_fc.weight == 0).t(), expected)
    assert (c_fc.weight == 0).sum(0).tolist() == [k] * 128  # per output feature, i.e. per stored column
    assert report.per_linear["0.mlp.c_fc"] == 0.5


def test_conv1d_sparsegpt_solves_the_transpose():
    model, rows = tiny("gpt2"), calib()
    c_proj = model.transformer.h[0].mlp.c_proj  # (in 128, out 32)
    hess = sparsegpt.Hessian(128)
    for x in inputs_of(model, c_proj, rows, 4):
        hess.add(x.reshape(-1, 128).float(), x.shape[0])
    expected = sparsegpt.obs_prune(c_proj.weight.detach().t().contiguous(), hess.H, make_target(0.5, "2:4"))
    prune_model(model, rows, "sparsegpt", 0.5, "2:4", engine=dict(batch_size=4))
    assert torch.equal(c_proj.weight.t(), expected)


def test_an_unknown_2d_parameter_in_a_block_fails_before_any_weight_changes():
    model = tiny("llama")
    model.model.layers[1].self_attn.register_parameter("mixing", nn.Parameter(torch.randn(4, 8)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"block 1: .*'self_attn\.mixing' \(4, 8\).*model\.exclude"):
        prune_model(model, calib(), "wanda", 0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cohere_qk_norm_weights_need_an_exclusion_and_stay_dense_with_one():
    model = tiny("cohere", use_qk_norm=True)  # q_norm / k_norm weights are (heads, head_dim)
    with pytest.raises(ValueError, match=r"'self_attn\.q_norm\.weight' \(4, 8\)"):
        prune_model(model, calib(), "wanda", 0.5)
    norms = {n: p.clone() for n, p in model.named_parameters() if "_norm" in n}
    reason = "2-D LayerNorm weights of use_qk_norm"
    report = prune_model(model, calib(), "wanda", 0.5, exclude={"self_attn.*_norm.weight": reason})
    assert report.excluded == {"self_attn.q_norm.weight": reason, "self_attn.k_norm.weight": reason}
    assert report.overall == 0.5 and len(report.per_linear) == 14  # the linears, not the norms
    assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in norms.items())


def test_an_excluded_linear_stays_dense_and_out_of_the_measured_sparsity():
    model = tiny("llama")
    down = [layer.mlp.down_proj.weight.clone() for layer in model.model.layers]
    report = prune_model(model, calib(), "wanda", 0.5, exclude={"mlp.down_proj.weight": "kept dense"})
    assert [torch.equal(a, layer.mlp.down_proj.weight) for a, layer in zip(down, model.model.layers)] == [True, True]
    assert report.overall == 0.5 and "0.mlp.down_proj" not in report.per_linear
    assert report.excluded == {"mlp.down_proj.weight": "kept dense"}


@pytest.mark.parametrize("exclude,needle", [({"mlp.*": ""}, "give the reason"), ({"*": "all"}, "no prunable matrix")])
def test_bad_exclusions_fail_naming_model_exclude(exclude, needle):
    with pytest.raises(ValueError, match=f"model.exclude.*{needle}|{needle}.*model.exclude"):
        prune_model(tiny("llama"), calib(), "wanda", 0.5, exclude=exclude)
