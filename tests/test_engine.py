"""The pruning engine on every supported architecture, and its options, against hand computations."""

import math

import pytest
import torch
from helpers import ARCHITECTURES, MOE_ARCHITECTURES, dense_matrix_inputs, owl_mapping, tiny_config
from torch import nn
from transformers import AutoModelForCausalLM

from mlsweep.prune import prune_model
from mlsweep.prune.allocation import outlier_ratio, owl_sparsities
from mlsweep.prune.arch import block_layout, find_blocks, find_matrices
from mlsweep.prune.registry import all_pruners

ARCHS = list(ARCHITECTURES)


def tiny(arch="llama"):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(arch, 300)).eval()


def calib(n=6, seqlen=16, seed=1):
    return torch.randint(4, 300, (n, seqlen), generator=torch.Generator().manual_seed(seed))


def outside_blocks(model):
    in_blocks = {id(p) for p in find_blocks(model).parameters()}
    return {n: p.detach().clone() for n, p in model.named_parameters() if id(p) not in in_blocks}


PRUNING = [s for s in all_pruners() if s.prunes]  # every registered pruner inherits these tests


def tags_for(spec, n):
    """Row tags a pruner can work with: the tags it requires, else two languages."""
    tags = spec.required_tags(spec.check_params({})) or ("aa", "bb")
    return [tags[i % len(tags)] for i in range(n)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("spec", PRUNING, ids=lambda s: s.name)
def test_every_architecture_prunes_end_to_end(arch, spec):
    model = tiny(arch)
    before = outside_blocks(model)
    blocks = find_blocks(model)
    counted = sum(m.tensor().numel() for b in blocks for m in find_matrices(b).values())
    routers = {"mlp.gate.weight", "mlp.shared_expert_gate.weight"} if arch in MOE_ARCHITECTURES else set()
    every_2d = sum(
        p.numel() for n, p in blocks.named_parameters() if p.dim() >= 2 and n.split(".", 1)[1] not in routers
    )
    report = prune_model(model, calib(), spec.name, 0.5, engine=dict(batch_size=4), languages=tags_for(spec, 6))
    assert report.overall == pytest.approx(0.5, abs=0.02)
    assert counted == every_2d, "every block matrix but the routers is counted"
    zeros = sum(int((m.tensor() == 0).sum()) for b in blocks for m in find_matrices(b).values())
    assert report.overall == zeros / counted
    assert len(report.per_linear) >= 4 * len(report.per_block)
    for name, p in outside_blocks(model).items():
        assert torch.equal(before[name], p), f"{name} outside the blocks changed"
    with torch.no_grad():
        out = model(calib(2), labels=calib(2))
    assert math.isfinite(float(out.loss))


def test_unknown_architecture_names_the_supported_ones():
    class NotAnLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)

    with pytest.raises(ValueError, match="supported architectures: decoder blocks of nn.Linear.*Conv1D.*experts"):
        prune_model(NotAnLM(), calib(), "wanda", 0.5)


def block_inputs(model, linear_name, rows):
    """The inputs of one linear of block 0 on the dense model, collected by a plain hook."""
    lin = find_matrices(find_blocks(model)[0])[linear_name].owner
    seen = []
    h = lin.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach().reshape(-1, inp[0].shape[-1])))
    with torch.no_grad():
        for r in rows:
            model(r[None])
    h.remove()
    return torch.cat(seen)


def test_wanda_mask_equals_per_row_sort_of_hand_accumulated_statistics():
    model, rows = tiny(), calib(8)
    X = block_inputs(model, "mlp.down_proj", rows)  # (tokens, d_in), sample by sample
    W = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    score = W.abs() * torch.sqrt((X**2).sum(0) / len(rows))
    k = int(W.shape[1] * 0.6)
    expected = torch.zeros_like(W, dtype=torch.bool).scatter_(1, torch.sort(score, dim=1, stable=True)[1][:, :k], True)
    prune_model(model, rows, "wanda", 0.6, engine=dict(batch_size=3))
    assert torch.equal(model.model.layers[0].mlp.down_proj.weight == 0, expected)


@pytest.mark.parametrize("arch", ["llama", "gpt2", "mixtral"])
@pytest.mark.parametrize("spec", PRUNING, ids=lambda s: s.name)
@pytest.mark.parametrize("pattern,n,m", [("2:4", 2, 4), ("4:8", 4, 8)])
def test_nm_holds_in_every_group_of_every_matrix(spec, pattern, n, m, arch):
    model = tiny(arch)
    prune_model(model, calib(), spec.name, n / m, pattern, languages=tags_for(spec, 6))
    for block in find_blocks(model):
        for matrix in find_matrices(block).values():
            w = matrix.tensor()  # (d_out, d_in): groups run along the inputs, also for Conv1D and experts
            zeros = (w == 0).reshape(w.shape[0], -1, m).sum(-1)
            assert (zeros >= n).all()


def test_owl_sparsities_average_the_target_within_lambda():
    symmetric = [1.0, 2.0, 3.0, 4.0, 5.0]
    s = owl_sparsities(symmetric, 0.7, 0.08)
    assert sum(s) / len(s) == pytest.approx(0.7)
    assert min(s) == pytest.approx(0.62) and max(s) == pytest.approx(0.78)
    assert s[symmetric.index(max(symmetric))] == pytest.approx(0.62)  # most outliers, lowest sparsity
    assert owl_sparsities([2.0, 2.0], 0.5, 0.08) == [0.5, 0.5]


def test_owl_follows_the_reference_mapping_for_skewed_ratios():
    """The reference centres the min-max scaled ratios on their mean, so the spread is exactly
    2 * lambda but a skewed distribution shifts it off +-lambda (bounded by +-2 * lambda)."""
    ratios = [3.0, 7.5, 1.2, 4.4, 9.9, 2.0]
    s = owl_sparsities(ratios, 0.7, 0.08)
    assert sum(s) / len(s) == pytest.approx(0.7)
    assert max(s) - min(s) == pytest.approx(0.16)
    d = [(r - 1.2) / (9.9 - 1.2) * 0.16 for r in ratios]
    assert s == pytest.approx([0.7 - (x - sum(d) / 6) for x in d])


def test_outlier_ratio_counts_scores_above_m_times_the_mean_of_all_matrices():
    """D = 100 * #{S > M * mean(S)} / numel(S), over the block's matrices together."""
    a = torch.ones(4, 25)  # 100 scores of 1 ...
    a[0, :3] = 100.0  # ... 3 of them outliers
    b = torch.full((10, 10), 2.0)  # a second matrix: 100 scores of 2
    b[5, 5] = 40.0
    # mean = (97 + 300 + 99 * 2 + 40) / 200 = 3.175; M = 5: above 15.875 are the 3 hundreds and the 40
    assert outlier_ratio([a, b], 5.0) == pytest.approx(100 * 4 / 200)
    # M = 20: above 63.5 only the hundreds; the matrices are pooled, not averaged per matrix
    assert outlier_ratio([a, b], 20.0) == pytest.approx(100 * 3 / 200)
    assert outlier_ratio([torch.ones(3, 3)], 1.0) == 0.0  # S > M * mean is strict


def tiny4():
    torch.manual_seed(0)
    cfg = tiny_config("llama", 300)
    cfg.num_hidden_layers = 4  # beyond min and max, the two middle blocks show the mapping
    return AutoModelForCausalLM.from_config(cfg).eval()


def test_owl_through_the_engine_gives_this_models_outlier_ratios_and_targets():
    """The outlier ratio of every block from Wanda scores computed here on the dense model, then the mapping."""
    rows, m, lam = calib(), 5.0, 0.1
    model = tiny4()
    inputs = dense_matrix_inputs(model, rows)
    ratios = []
    for i, block in enumerate(find_blocks(model)):
        scores = [
            matrix.tensor().abs() * torch.sqrt((torch.cat(inputs[(i, name)]) ** 2).sum(0) / len(rows))
            for name, matrix in find_matrices(block).items()
        ]
        flat = torch.cat([s.flatten() for s in scores])
        ratios.append(100.0 * float((flat > m * flat.mean()).sum()) / flat.numel())
    assert len(set(ratios)) == 4, ratios  # the blocks differ: the targets below are this model's

    report = prune_model(model, rows, "wanda", 0.5, allocation="owl", allocation_params=dict(owl_lambda=lam, owl_m=m))
    assert report.allocated == pytest.approx(owl_mapping(ratios, 0.5, lam), abs=1e-6)
    assert report.allocated.index(min(report.allocated)) == ratios.index(max(ratios))  # most outliers: densest
    for got, want in zip(report.per_block, report.allocated):
        assert got == pytest.approx(want, abs=1 / 32)  # per-row granularity of a 32-wide linear


def test_magnitude_prunes_below_one_threshold_per_matrix():
    """Per matrix (METHODS.md section 2): sort(|W|.flatten())[int(numel * s)] is the threshold, rows vary."""
    model = tiny()
    before = {
        (i, name): matrix.tensor().detach().clone()
        for i, block in enumerate(find_blocks(model))
        for name, matrix in find_matrices(block).items()
    }
    prune_model(model, None, "magnitude", 0.5)
    for i, block in enumerate(find_blocks(model)):
        for name, matrix in find_matrices(block).items():
            w = before[(i, name)].abs()
            threshold = torch.sort(w.flatten())[0][int(w.numel() * 0.5)]
            pruned = matrix.tensor() == 0
            assert torch.equal(pruned, w <= threshold), (i, name)
            per_row = pruned.sum(1)
            assert per_row.min() < per_row.max(), (i, name)  # one threshold per matrix, not per row


def groups_of(model):
    from mlsweep.prune.capture import CalibBatch, capture_inputs
    from mlsweep.prune.passes import matrix_groups

    blocks = find_blocks(model)
    data = capture_inputs(model, blocks, [CalibBatch(calib(2))], torch.device("cpu"))
    return matrix_groups(blocks[0], block_layout(blocks[0]), data[0], torch.device("cpu"))


def test_true_sequential_groups_follow_the_forward_order_and_change_the_result():
    groups = groups_of(tiny())
    assert [sorted(g) for g in groups] == [
        ["self_attn.k_proj", "self_attn.q_proj", "self_attn.v_proj"],
        ["self_attn.o_proj"],
        ["mlp.gate_proj", "mlp.up_proj"],
        ["mlp.down_proj"],
    ]
    a, b = tiny(), tiny()
    prune_model(a, calib(), "sparsegpt", 0.5)
    prune_model(b, calib(), "sparsegpt", 0.5, engine=dict(true_sequential=True))
    qa, qb = a.model.layers[0].self_attn.q_proj.weight, b.model.layers[0].self_attn.q_proj.weight
    da, db = a.model.layers[0].mlp.down_proj.weight, b.model.layers[0].mlp.down_proj.weight
    assert torch.equal(qa, qb), "the first group sees the same inputs either way"
    assert not torch.equal(da, db), "later groups see already-pruned upstream linears"


def test_true_sequential_prunes_the_experts_stage_by_stage():
    model = tiny("qwen2_moe")
    stages = (("gate_proj", "up_proj"), ("down_proj",))
    experts = [[f"mlp.experts.{e}.{p}" for e in range(4) for p in ps] for ps in stages]
    groups = groups_of(model)
    assert [sorted(g) for g in groups] == [
        ["self_attn.k_proj", "self_attn.q_proj", "self_attn.v_proj"],
        ["self_attn.o_proj"],
        ["mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj"],
        ["mlp.shared_expert.down_proj"],
        sorted(experts[0]),
        sorted(experts[1]),
    ]
    a, b = tiny("qwen2_moe"), tiny("qwen2_moe")
    report = prune_model(a, calib(), "sparsegpt", 0.5, engine=dict(true_sequential=True))
    prune_model(b, calib(), "sparsegpt", 0.5)
    assert report.overall == pytest.approx(0.5, abs=0.01)
    da, db = a.model.layers[0].mlp.experts.down_proj, b.model.layers[0].mlp.experts.down_proj
    assert not torch.equal(da, db), "the experts' downs see their already-pruned gate/up"


def test_dense_propagation_feeds_block_two_with_dense_inputs():
    rows = calib(4)
    dense_model = tiny()
    X = []
    lin = dense_model.model.layers[1].mlp.down_proj
    h = lin.register_forward_hook(lambda _m, inp, _o: X.append(inp[0].detach().reshape(-1, inp[0].shape[-1])))
    with torch.no_grad():
        dense_model(rows)
    h.remove()
    X = torch.cat(X)
    W = lin.weight.detach().clone()
    score = W.abs() * torch.sqrt((X**2).sum(0))
    expected = torch.zeros_like(W, dtype=torch.bool).scatter_(1, torch.sort(score, dim=1, stable=True)[1][:, :32], True)
    model = tiny()
    prune_model(model, rows, "wanda", 0.5, engine=dict(propagation="dense", activations_on_cpu=True))
    assert torch.equal(model.model.layers[1].mlp.down_proj.weight == 0, expected)
    seq = tiny()
    prune_model(seq, rows, "wanda", 0.5)
    assert not torch.equal(seq.model.layers[1].mlp.down_proj.weight == 0, expected)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(sparsity=0.5, pattern="2:4", allocation="owl"), "'unstructured' only"),
        (dict(sparsity=0.7, allocation="owl", allocation_params=dict(owl_lambda=0.4)), "sparsity.owl_lambda"),
        (dict(sparsity=0.5, allocation="layerwise"), "sparsity.allocation"),
        (dict(sparsity=0.5, method="sparsegpt", params=dict(blocksize=0)), "pruner.blocksize"),
        (dict(sparsity=0.5, engine=dict(propagation="sideways")), "engine.propagation"),
        (dict(sparsity=0.5, calibration=torch.ones(4, 1, dtype=torch.long)), "too short"),
    ],
)
def test_engine_options_are_checked_before_any_weight_changes(kwargs, needle):
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = dict(calibration=calib(), method="wanda") | kwargs
    with pytest.raises(ValueError, match=needle):
        prune_model(model, **args)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
