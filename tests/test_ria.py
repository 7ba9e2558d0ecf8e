"""RIA (Zhang et al., ICLR 2024) against its formula written out here, element by element."""

import pytest
import torch
from helpers import tiny_config
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.arch import find_blocks, find_matrices
from mlsweep.prune.pruners import ria


def by_hand(W, x_norm, a):
    """S_ij = (|W_ij| / sum_k |W_kj| + |W_ij| / sum_k |W_ik|) * ||X_j|| ** a, with plain loops."""
    d_out, d_in = W.shape
    S = torch.zeros(d_out, d_in, dtype=torch.float64)
    for i in range(d_out):
        for j in range(d_in):
            col = sum(abs(float(W[k, j])) for k in range(d_out))
            row = sum(abs(float(W[i, k])) for k in range(d_in))
            S[i, j] = (abs(float(W[i, j])) / col + abs(float(W[i, j])) / row) * float(x_norm[j]) ** a
    return S


def test_score_is_the_papers_formula():
    g = torch.Generator().manual_seed(0)
    W, scaler = torch.randn(5, 7, generator=g), torch.rand(7, generator=g) + 0.1
    got = ria.score(W, scaler, ria.Params())
    assert torch.allclose(got.double(), by_hand(W, scaler.sqrt(), 0.5), rtol=1e-5)
    got2 = ria.score(W, scaler, ria.Params(a=1.0))
    assert torch.allclose(got2.double(), by_hand(W, scaler.sqrt(), 1.0), rtol=1e-5)


def test_a_dead_input_scores_zero_not_nan():
    W = torch.tensor([[0.0, 1.0], [0.0, -2.0]])
    s = ria.score(W, torch.ones(2), ria.Params())
    assert torch.isfinite(s).all() and (s[:, 0] == 0).all()


def tiny():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config("llama", 300)).eval()


def calib(n=8):
    return torch.randint(4, 300, (n, 16), generator=torch.Generator().manual_seed(1))


def down_proj_inputs(model, rows):
    lin = find_matrices(find_blocks(model)[0])["mlp.down_proj"].owner
    seen = []
    h = lin.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach().reshape(-1, inp[0].shape[-1])))
    with torch.no_grad():
        for r in rows:
            model(r[None])
    h.remove()
    return torch.cat(seen)


@pytest.mark.parametrize("group", ["matrix", "row"])
def test_masks_through_the_engine_follow_the_formula_and_the_comparison_group(group):
    model, rows = tiny(), calib()
    X = down_proj_inputs(model, rows)
    W = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    S = by_hand(W, torch.sqrt((X.double() ** 2).sum(0) / len(rows)), 0.5)
    if group == "matrix":  # one threshold for the whole linear, ties pruned (the authors' default)
        expected = S <= torch.sort(S.flatten())[0][int(S.numel() * 0.6)]
    else:  # their --per_outneuron: Wanda's per-row comparison
        k = int(W.shape[1] * 0.6)
        expected = torch.zeros_like(S, dtype=torch.bool).scatter_(1, torch.sort(S, dim=1, stable=True)[1][:, :k], True)
    prune_model(model, rows, "ria", 0.6, params=dict(group=group))
    got = model.model.layers[0].mlp.down_proj.weight == 0
    assert torch.equal(got, expected)
    if group == "row":
        assert (got.sum(1) == int(W.shape[1] * 0.6)).all()


@pytest.mark.parametrize("params,needle", [(dict(a=-1.0), "pruner.a"), (dict(group="column"), "pruner.group")])
def test_bad_ria_input_names_the_field(params, needle):
    with pytest.raises(ValueError, match=needle):
        prune_model(tiny(), calib(), "ria", 0.5, params=params)
