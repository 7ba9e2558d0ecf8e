"""M-Wanda's readings as options: FFN-neuron firing (LAPE), aggregates over languages, CWL's direction."""

import itertools

import pytest
import torch
from helpers import tiny_config
from hydra import compose, initialize_config_dir
from transformers import AutoModelForCausalLM

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.config.spec import CellSpec
from mlsweep.prune import prune_model
from mlsweep.prune.arch import block_layout, find_blocks
from mlsweep.prune.capture import CalibBatch, capture_inputs
from mlsweep.prune.ffn import FfnTap
from mlsweep.prune.passes import collect
from mlsweep.prune.pruners import mwanda
from mlsweep.prune.stats import LanguageStats, NeuronLanguageStats, Workspace
from mlsweep.sweep.sweeper import Cell, plan_cells

LANGS = ["de"] * 3 + ["sw"] * 5


def tiny(arch="llama"):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config(arch, 300)).eval()


def calib(n=8, seed=1):
    return torch.randint(4, 300, (n, 16), generator=torch.Generator().manual_seed(seed))


def masks(model):
    return {n: p == 0 for n, p in model.named_parameters() if p.dim() == 2 and "layers" in n}


def pruned(params, langs=LANGS, method="mwanda", **kw):
    model = tiny()
    report = prune_model(model, calib(), method, 0.6, languages=langs, params=params, **kw)
    return masks(model), report


# the activation and the linear reading its neurons, by architecture (module names of the transformers code)
READERS = {
    "llama": {"mlp.act_fn": "mlp.down_proj"},
    "qwen2": {"mlp.act_fn": "mlp.down_proj"},
    "gemma": {"mlp.act_fn": "mlp.down_proj"},
    "bloom": {"mlp.gelu_impl": "mlp.dense_4h_to_h"},
    "gpt_neox": {"mlp.act": "mlp.dense_4h_to_h"},
    "opt": {"activation_fn": "fc2"},
    "xglm": {"activation_fn": "fc2"},
}


@pytest.mark.parametrize("arch", sorted(READERS))
def test_the_mlp_activation_and_its_reader_are_found_by_structure(arch):
    model = tiny(arch)
    block = find_blocks(model)[0]
    tap = FfnTap(block, lambda name, h: None)
    with tap.hooked(), torch.no_grad():
        model(calib(2)[:, :8])
    assert tap.readers == READERS[arch]


def test_neuron_firing_rates_against_the_activation_computed_by_hand():
    model = tiny()
    block = find_blocks(model)[0]
    ids, cpu = calib(4), torch.device("cpu")
    batches = [CalibBatch(ids[:2], "de"), CalibBatch(ids[2:], "sw")]  # one language per batch
    data = capture_inputs(model, find_blocks(model), batches, cpu)
    mlp_inputs = []
    handle = block.mlp.register_forward_hook(lambda m, inp, out: mlp_inputs.append(inp[0].detach()))
    try:
        layout = block_layout(block)
        stats = collect(block, layout, list(layout.matrices), NeuronLanguageStats, data, cpu, Workspace())[0].finish()
    finally:
        handle.remove()
    mlp = block.mlp
    with torch.no_grad():
        fired = [(mlp.act_fn(mlp.gate_proj(x)) > 0).float().reshape(-1, 64).mean(0) for x in mlp_inputs]
    assert torch.allclose(stats["mlp.down_proj"].neuron_p(), torch.stack(fired))
    assert stats["mlp.up_proj"].neuron_p() is None and stats["self_attn.q_proj"].neuron_p() is None
    assert isinstance(stats["mlp.up_proj"], LanguageStats)


def test_every_reading_is_wandas_mask_with_one_language_and_no_language_terms():
    wanda, _ = pruned({}, langs=["de"] * 8, method="wanda")
    for source, agg in itertools.product(mwanda.PROB_SOURCES, mwanda.AGGREGATES):
        got, _ = pruned(dict(lambda_var=0.0, gamma=0.0, prob_source=source, aggregate=agg), langs=["de"] * 8)
        assert all(torch.equal(got[n], wanda[n]) for n in wanda), (source, agg)


def test_each_option_changes_the_mask_and_they_compose():
    base, _ = pruned(dict(lambda_var=1.0, gamma=0.5, prob_source="input", aggregate="pooled_sd"))
    down = "model.layers.0.mlp.down_proj.weight"
    q = "model.layers.0.self_attn.q_proj.weight"
    ffn, _ = pruned(dict(lambda_var=1.0, gamma=0.5, prob_source="ffn_neuron", aggregate="pooled_sd"))
    assert not torch.equal(ffn[down], base[down])  # the neuron firing rates replace x > 0 on down_proj
    assert not torch.equal(ffn[q], base[q])  # and the term is 1 on q_proj
    for agg in ("mean", "max"):
        other, _ = pruned(dict(lambda_var=1.0, gamma=0.5, prob_source="input", aggregate=agg))
        assert not torch.equal(other[q], base[q]), agg
    both, _ = pruned(dict(lambda_var=1.0, gamma=0.5, prob_source="ffn_neuron", aggregate="max"))
    alone, _ = pruned(dict(lambda_var=1.0, gamma=0.5, prob_source="input", aggregate="max"))
    assert not torch.equal(both[down], ffn[down]) and not torch.equal(both[down], alone[down])
    assert ((both[down]).sum(1) == int(64 * 0.6)).all()  # still per output row


def test_cwl_direction_mirrors_the_block_allocation():
    _, specific = pruned({}, allocation="cwl", allocation_params=dict(cwl_lambda=0.05))
    _, shared = pruned(
        dict(prob_source="ffn_neuron", aggregate="max"),
        allocation="cwl",
        allocation_params=dict(cwl_lambda=0.05, cwl_direction="keep_shared"),
    )
    assert specific.allocated == pytest.approx(list(reversed(shared.allocated)))
    assert sorted(specific.allocated) == pytest.approx([0.55, 0.65])


def test_ffn_neuron_needs_an_activation_it_can_find():
    model = tiny()
    for layer in model.model.layers:
        layer.mlp.act_fn = torch.nn.Identity()  # the MLP becomes linear: no activation to measure at
    with pytest.raises(ValueError, match="MLP activation"):
        prune_model(model, calib(), "mwanda", 0.5, languages=LANGS, params=dict(prob_source="ffn_neuron"))


def _cell(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return Cell(tuple(overrides), CellSpec.from_config(cfg), "")


def test_a_grid_crossing_wanda_with_the_readings_folds_and_records_them():
    axes = [
        ["pruner=wanda", "pruner=mwanda"],
        ["pruner.prob_source=input", "pruner.prob_source=ffn_neuron"],
        ["sparsity=unstructured", "sparsity=cwl"],
        ["sparsity.cwl_direction=keep_specific", "sparsity.cwl_direction=keep_shared"],
    ]
    grid = [["calib=uniform", *point] for point in itertools.product(*axes)]
    cells = plan_cells(grid, _cell)
    readings = sorted((c.spec.pruner.name, c.spec.axes["reading"]) for c in cells)
    assert readings == [
        ("mwanda", "prob=ffn_neuron, agg=pooled_sd"),
        ("mwanda", "prob=ffn_neuron, agg=pooled_sd, cwl=keep_shared"),
        ("mwanda", "prob=ffn_neuron, agg=pooled_sd, cwl=keep_specific"),
        ("mwanda", "prob=input, agg=pooled_sd"),
        ("mwanda", "prob=input, agg=pooled_sd, cwl=keep_shared"),
        ("mwanda", "prob=input, agg=pooled_sd, cwl=keep_specific"),
        ("wanda", "-"),
        ("wanda", "cwl=keep_shared"),
        ("wanda", "cwl=keep_specific"),
    ]
    assert all("pruner.prob_source" not in " ".join(c.overrides) for c in cells if c.spec.pruner.name == "wanda")
