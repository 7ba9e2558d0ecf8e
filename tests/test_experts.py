"""Mixture-of-experts pruning against an independent per-expert reference written out here.

The reference takes the hidden states entering the MoE layer of the dense
model, routes every token itself (router logits -> softmax -> top-k), and
accumulates each expert's statistics over its tokens with the reference
running-mean rule, one calibration sequence at a time (a sequence that routes
nothing to an expert still counts). Gate and up read the routed rows x_e; down
reads act(gate) * up of the same rows.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_config
from torch import nn
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.arch import find_blocks, find_matrices
from mlsweep.prune.masks import make_target, mask_for
from mlsweep.prune.pruners import magnitude, sparsegpt

BATCH = 4


def tiny_moe(arch, layers=1, **changes):
    config = tiny_config(arch, 300)
    config.num_hidden_layers = layers
    for key, value in changes.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def calib(n=6, seqlen=16, seed=1):
    return torch.randint(4, 300, (n, seqlen), generator=torch.Generator().manual_seed(seed))


def linear(weight):
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    lin.weight.data.copy_(weight)
    return lin


class Expert(nn.Module):
    def __init__(self, gate, up, down):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = (linear(w) for w in (gate, up, down))

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class PerExpertMoE(nn.Module):
    """Mixtral's MoE layer with a ModuleList of nn.Linear experts and an nn.Linear router (same weights)."""

    def __init__(self, fused):
        super().__init__()
        ex = fused.experts
        n, i = ex.gate_up_proj.shape[0], ex.gate_up_proj.shape[1] // 2
        self.top_k = fused.gate.top_k
        self.gate = nn.Linear(ex.gate_up_proj.shape[2], n, bias=False)
        self.gate.weight.data.copy_(fused.gate.weight)
        gu, down = ex.gate_up_proj.data, ex.down_proj.data
        self.experts = nn.ModuleList(Expert(gu[e, :i], gu[e, i:], down[e]) for e in range(n))

    def forward(self, hidden_states):
        b, t, d = hidden_states.shape
        h = hidden_states.reshape(-1, d)
        w, idx = torch.topk(F.softmax(self.gate(h).float(), dim=-1), self.top_k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            tok, pos = torch.where(idx == e)
            if tok.numel():
                out.index_add_(0, tok, (expert(h[tok]) * w[tok, pos, None]).to(out.dtype))
        return out.reshape(b, t, d)


def unfuse(model):
    for layer in model.model.layers:
        layer.mlp = PerExpertMoE(layer.mlp)
    return model


def expert_weights(moe, e):
    """(gate, up, down) of expert e as (d_out, d_in) matrices, from either structure."""
    if isinstance(moe.experts, nn.ModuleList):
        ex = moe.experts[e]
        return ex.gate_proj.weight.data, ex.up_proj.weight.data, ex.down_proj.weight.data
    i = moe.experts.gate_up_proj.shape[1] // 2
    gu = moe.experts.gate_up_proj.data[e]
    return gu[:i], gu[i:], moe.experts.down_proj.data[e]


def down_input(moe, e, x):
    if isinstance(moe.experts, nn.ModuleList):
        ex = moe.experts[e]
        return F.silu(ex.gate_proj(x)) * ex.up_proj(x)
    gate, up = F.linear(x, moe.experts.gate_up_proj[e]).chunk(2, dim=-1)
    return moe.experts.act_fn(gate) * up


class Wanda:
    def __init__(self, d):
        self.s, self.n = torch.zeros(d), 0

    def add(self, x):
        self.s *= self.n / (self.n + 1)
        self.n += 1
        self.s += torch.norm(x.t(), p=2, dim=1) ** 2 / self.n


class Hess:
    def __init__(self, d):
        self.h, self.n = torch.zeros(d, d), 0

    def add(self, x):
        self.h *= self.n / (self.n + 1)
        self.n += 1
        x = math.sqrt(2 / self.n) * x
        self.h += x.t() @ x


@torch.no_grad()
def reference(model, rows, method, pattern):
    """Block 0's experts pruned from their routed tokens: ({(expert, 'gate'|'up'|'down'): new weight},
    number of (expert, sequence) pairs without a token). An expert no token reaches: magnitude."""
    moe = model.model.layers[0].mlp
    seen = []
    hook = moe.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    for s in range(0, len(rows), BATCH):  # the engine's batches, so the hidden states are bit-identical
        model(rows[s : s + BATCH])
    hook.remove()
    n_experts = moe.gate.weight.shape[0]
    k = model.config.num_experts_per_tok
    make = Wanda if method == "wanda" else Hess
    stats = {e: (make(moe.gate.weight.shape[1]), make(expert_weights(moe, e)[2].shape[1])) for e in range(n_experts)}
    tokens, empty = [0] * n_experts, 0
    for hidden in seen:  # (sequences, seqlen, H)
        n_seq, seqlen, d = hidden.shape
        flat = hidden.reshape(-1, d)
        top = torch.topk(F.softmax(F.linear(flat, moe.gate.weight).float(), dim=-1), k, dim=-1).indices
        for e in range(n_experts):
            tok = (top == e).any(-1).nonzero().squeeze(-1)  # ascending
            x = flat[tok]
            a = down_input(moe, e, x)
            tokens[e] += len(tok)
            for s in range(n_seq):
                in_seq = (tok // seqlen) == s
                empty += int(not in_seq.any())
                stats[e][0].add(x[in_seq].float())
                stats[e][1].add(a[in_seq].float())
    target = make_target(0.5, pattern)
    out = {}
    for e in range(n_experts):
        for part, w, st in zip(("gate", "up", "down"), expert_weights(moe, e), (stats[e][0], stats[e][0], stats[e][1])):
            w = w.float().clone()
            if not tokens[e]:
                out[e, part] = magnitude.prune(w, None, target, None)
            elif method == "wanda":
                out[e, part] = w.masked_fill(mask_for(w.abs() * torch.sqrt(st.s)[None, :], target, "row"), 0.0)
            else:
                out[e, part] = sparsegpt.obs_prune(w, st.h, target)
    return out, empty


MODELS = {
    "mixtral": lambda: tiny_moe("mixtral"),
    # 8 experts, top-1, 4-token sequences: most experts miss some sequences, some may miss all
    "mixtral_top1": lambda: tiny_moe("mixtral", num_local_experts=8, num_experts_per_tok=1),
    "qwen2_moe": lambda: tiny_moe("qwen2_moe"),
    "olmoe": lambda: tiny_moe("olmoe"),
    "per_expert_linear": lambda: unfuse(tiny_moe("mixtral")),
}


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_experts_are_pruned_from_their_routed_tokens(kind, method, pattern):
    model, rows = MODELS[kind](), calib(8, 4) if kind == "mixtral_top1" else calib()
    expected, empty = reference(model, rows, method, pattern)
    assert empty > 0 if kind == "mixtral_top1" else True
    report = prune_model(model, rows, method, 0.5, pattern, engine=dict(batch_size=BATCH))
    moe = model.model.layers[0].mlp
    for (e, part), want in expected.items():
        got = expert_weights(moe, e)[("gate", "up", "down").index(part)]
        assert torch.equal(got == 0, want == 0), f"expert {e} {part}: mask differs"
        if method == "sparsegpt":
            assert torch.equal(got, want), f"expert {e} {part}: weights differ"
    assert kind == "mixtral_top1" or report.fallback_experts == []


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe"])
def test_every_expert_matrix_is_at_the_target_and_the_routers_stay_dense(arch):
    model = tiny_moe(arch, layers=2)
    before = {n: p.clone() for n, p in model.named_parameters() if "gate.weight" in n or "shared_expert_gate" in n}
    report = prune_model(model, calib(), "wanda", 0.5)
    for i, block in enumerate(find_blocks(model)):
        experts = block.mlp.experts
        for e in range(experts.gate_up_proj.shape[0]):
            i_dim = experts.gate_up_proj.shape[1] // 2
            for w in (experts.gate_up_proj[e, :i_dim], experts.gate_up_proj[e, i_dim:], experts.down_proj[e]):
                assert (w == 0).sum(1).tolist() == [w.shape[1] // 2] * w.shape[0]  # Wanda: half of every row
            assert f"{i}.mlp.experts.{e}.down_proj" in report.per_linear
    assert before and all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in before.items())
    routers = {"mlp.gate.weight": "router"} | (
        {"mlp.shared_expert_gate.weight": "router"} if arch == "qwen2_moe" else {}
    )
    assert report.excluded == routers
    assert report.overall == pytest.approx(0.5)


def test_fused_and_per_expert_linear_experts_get_the_same_wanda_masks():
    fused, rows = tiny_moe("mixtral", layers=2), calib()
    per_expert = unfuse(tiny_moe("mixtral", layers=2))
    prune_model(fused, rows, "wanda", 0.5)
    prune_model(per_expert, rows, "wanda", 0.5)
    for a, b in zip(find_blocks(fused), find_blocks(per_expert)):
        for e in range(4):
            for wa, wb in zip(expert_weights(a.mlp, e), expert_weights(b.mlp, e)):
                assert torch.equal(wa == 0, wb == 0)


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("structure", ["fused", "per_expert_linear"])
def test_an_expert_no_token_reaches_is_pruned_by_magnitude_and_counted(structure, method):
    model = tiny_moe("mixtral", num_local_experts=8, num_experts_per_tok=1)
    model = unfuse(model) if structure == "per_expert_linear" else model
    rows = calib(n=1, seqlen=3)  # 3 tokens, top-1: at most 3 of the 8 experts are reached
    moe = model.model.layers[0].mlp
    seen = []
    hook = moe.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    with torch.no_grad():
        model(rows)
    hook.remove()
    hit = set(F.linear(seen[0].reshape(-1, seen[0].shape[-1]), moe.gate.weight).argmax(-1).tolist())
    dense = {e: [w.clone() for w in expert_weights(moe, e)] for e in range(8)}
    report = prune_model(model, rows, method, 0.5)
    assert report.fallback_experts == [f"0.mlp.experts.{e}" for e in range(8) if e not in hit]
    assert len(report.fallback_experts) >= 5
    target = make_target(0.5)
    for e in range(8):
        for before, after in zip(dense[e], expert_weights(moe, e)):
            if e not in hit:
                assert torch.equal(after, magnitude.prune(before.float(), None, target, None))
            assert (after == 0).float().mean() == pytest.approx(0.5, abs=0.05)


def test_experts_follow_the_padding_mask():
    """Padded positions are routed too, but stay out of every expert's statistics."""
    rows = calib(4)
    mask = torch.ones_like(rows)
    mask[:, :5] = 0  # left padding
    a, b = tiny_moe("mixtral"), tiny_moe("mixtral")
    prune_model(a, rows, "wanda", 0.5, attention_mask=mask)
    prune_model(b, rows, "wanda", 0.5, attention_mask=mask, mask_pad_in_stats=False)
    changed = [
        not torch.equal(wa == 0, wb == 0)
        for e in range(4)
        for wa, wb in zip(expert_weights(a.model.layers[0].mlp, e), expert_weights(b.model.layers[0].mlp, e))
    ]
    assert any(changed)


def test_bf16_experts_are_written_back_in_bf16():
    model = tiny_moe("mixtral", layers=2).to(torch.bfloat16)
    report = prune_model(model, calib(), "sparsegpt", 0.5)
    experts = model.model.layers[1].mlp.experts
    assert experts.gate_up_proj.dtype == experts.down_proj.dtype == torch.bfloat16
    assert report.overall == pytest.approx(0.5, abs=0.01)
    assert all(m.tensor().dtype == torch.bfloat16 for m in find_matrices(model.model.layers[0]).values())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_routed_rows_are_matched_to_their_tokens_duplicates_one_to_one(dtype):
    from mlsweep.prune.rows import row_keys, token_indices

    h = torch.randn(12, 8).to(dtype)
    h[7] = h[2]  # two tokens with equal hidden states (e.g. the first token of two sequences)
    h[9] = h[2]
    tok = torch.tensor([9, 2, 5, 7, 11])
    found = token_indices(h, row_keys(h), h[tok])
    assert torch.equal(h[found], h[tok]) and sorted(found.tolist()) == [2, 5, 7, 9, 11]
    with pytest.raises(ValueError, match="not rows of its MoE layer's input"):
        token_indices(h, row_keys(h), h[tok] * 2)
    with pytest.raises(ValueError, match="not rows"):
        token_indices(h, row_keys(h), h[[2, 2, 2, 2]])  # more copies than h holds


def test_transposed_interleaved_experts_with_biases_gpt_oss_layout():
    """GPT-OSS stores gate_up_proj (E, H, 2I) transposed with gate/up interleaved, plus expert biases."""
    import transformers

    config = transformers.GptOssConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=64,
        sliding_window=16,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    kept = {n: p.clone() for n, p in model.named_parameters() if "router" in n or n.endswith("_bias")}
    report = prune_model(model, calib(), "wanda", 0.5)
    assert report.excluded == {"mlp.router.weight": "router"} and report.overall == 0.5
    experts = model.model.layers[0].mlp.experts
    gate = experts.gate_up_proj[1][:, 0::2].t()  # (I, H): expert 1's gate, as the model computes it
    assert (gate == 0).sum(1).tolist() == [16] * 48  # half of every output row of the transposed view
    assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in kept.items())
    for block in find_blocks(model):
        for name, m in find_matrices(block).items():
            assert (m.tensor() == 0).float().mean() == 0.5, name
