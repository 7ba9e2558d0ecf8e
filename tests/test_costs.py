"""The cost estimate behind `mlsweep plan` and the per-cell resource rules."""

import json
import math

import pytest

from mlsweep.config.spec import ModelSpec
from mlsweep.prune.registry import get_pruner
from mlsweep.sweep import costs
from mlsweep.sweep.costs import Cost, Shape, estimate, model_shape, shape_from_config_json
from mlsweep.sweep.resources import check_rules, resources_for

LLAMA3_8B = Shape(8.03e9, 32, 4096, 14336, 128256, "test")


def test_memory_formula_by_hand():
    c = estimate(
        LLAMA3_8B,
        dtype="float16",
        pruner=get_pruner("wanda"),
        calibrated=True,
        nsamples=128,
        seqlen=2048,
        eval_languages=7,
        eval_windows=10,
        eval_batch=8,
    )
    weights = 8.03e9 * 2
    acts = 2 * 128 * 2048 * 4096 * 2
    solver = 2 * 4 * 4096 * 14336
    logits = 4 * 8 * 2048 * 128256
    assert c.gpu_mem_gb == pytest.approx(1.2 * (weights + max(acts + solver, logits)) / 2**30 + 1.0, abs=0.01)


MIXTRAL = {
    "model_type": "mixtral",
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 32,
    "intermediate_size": 14336,
    "num_local_experts": 8,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
}


def test_a_moe_models_experts_count_in_its_size_and_their_statistics_in_its_memory():
    shape = shape_from_config_json(MIXTRAL)
    assert shape.params == pytest.approx(46.7e9, rel=0.01)  # Mixtral-8x7B's published count
    assert (shape.experts, shape.expert_intermediate) == (8, 14336)
    kw = dict(dtype="float16", calibrated=True, nsamples=128, seqlen=2048, offload_blocks=True, activations_on_cpu=True)
    sparsegpt = estimate(shape, pruner=get_pruner("sparsegpt"), **kw)
    solver = 3 * 4 * 14336**2 + 4 * 4096 * 14336
    hessians = 8 * 4 * (4096**2 + 14336**2)  # every expert's two Hessians at once
    weights = shape.params / 32 * 2
    assert sparsegpt.gpu_mem_gb == pytest.approx(1.2 * (weights + solver + hessians) / 2**30 + 1.0, abs=0.01)
    dense = estimate(shape_from_config_json({**MIXTRAL, "num_local_experts": 0}), pruner=get_pruner("sparsegpt"), **kw)
    assert dense.gpu_mem_gb < sparsegpt.gpu_mem_gb
    qwen = {**MIXTRAL, "num_local_experts": None, "num_experts": 128, "moe_intermediate_size": 768}
    qwen = shape_from_config_json(qwen)
    assert (qwen.experts, qwen.expert_intermediate) == (128, 768)


def test_time_formula_by_hand():
    c = estimate(
        LLAMA3_8B,
        dtype="float16",
        pruner=get_pruner("wanda"),
        calibrated=True,
        nsamples=128,
        seqlen=2048,
        eval_languages=7,
        eval_windows=10,
    )
    flops = 2 * 2 * 8.03e9 * 128 * 2048 + 2 * 8.03e9 * 7 * 10 * 2048
    seconds = flops / costs.THROUGHPUT + 8.03e9 * 2 / costs.LOAD_RATE + costs.STARTUP
    assert c.gpu_hours == pytest.approx(seconds / 3600)


def test_costs_grow_with_model_method_and_data():
    def est(shape=LLAMA3_8B, pruner="wanda", n=128, **kw):
        return estimate(
            shape,
            dtype="float16",
            pruner=get_pruner(pruner),
            calibrated=pruner != "dense",
            nsamples=n,
            seqlen=2048,
            eval_languages=7,
            **kw,
        )

    small = Shape(0.56e9, 24, 1024, 4096, 250880, "test")
    assert est(small).gpu_hours < est().gpu_hours and est(small).gpu_mem_gb < est().gpu_mem_gb
    assert est(pruner="sparsegpt").gpu_hours > est().gpu_hours > est(pruner="dense").gpu_hours
    # the solver's Hessians count once evaluation logits (batch 8 x 2048 x 128k) no longer dominate
    assert est(pruner="sparsegpt", eval_batch=1).gpu_mem_gb > est(eval_batch=1).gpu_mem_gb
    assert est(n=256).gpu_hours > est().gpu_hours
    assert est(offload_blocks=True).gpu_mem_gb < est().gpu_mem_gb
    assert est(tasks=10).gpu_hours > est().gpu_hours
    assert est(passes=7).gpu_hours > 6 * (est().gpu_hours - est(pruner="dense").gpu_hours)


def test_model_shape_from_config_json_yaml_dims_or_params_alone(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 4096,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "num_hidden_layers": 32,
                "intermediate_size": 14336,
                "vocab_size": 128256,
                "tie_word_embeddings": False,
            }
        )
    )
    s = model_shape(ModelSpec("m", str(tmp_path)))
    assert s.source == "config.json" and s.params == pytest.approx(8.03e9, rel=0.01)  # Llama-3 8B's count
    bloom = shape_from_config_json({"model_type": "bloom", "n_embd": 1024, "n_layer": 24, "vocab_size": 250880})
    assert bloom.params == pytest.approx(0.56e9, rel=0.03) and bloom.intermediate == 4096
    yaml = model_shape(
        ModelSpec(
            "m", "org/none", params_b=8.03, dims={"layers": 32, "hidden": 4096, "intermediate": 14336, "vocab": 256000}
        )
    )
    assert yaml.source == "model config" and yaml.vocab == 256000
    guess = model_shape(ModelSpec("m", "org/none", params_b=8.0))
    assert 3500 < guess.hidden < 5000 and 24 <= guess.layers <= 40
    with pytest.raises(ValueError, match="model.params_b"):
        model_shape(ModelSpec("m", "org/not-cached"))


RULES = [
    {"max_params_b": 1.5, "mem_gb": 32, "timeout_min": 60},
    {"max_params_b": 15, "mem_gb": 64, "timeout_min": 240},
    {"max_params_b": 100, "mem_gb": 256, "gpus_per_node": 4, "timeout_min": 1440},
]
ALLOWED = ["mem_gb", "timeout_min", "gpus_per_node", "cpus_per_task", "partition"]


def test_rules_pick_resources_by_model_size():
    assert resources_for(Cost(10, 0.1, 0.56), RULES, 2.0) == {"mem_gb": 32, "timeout_min": 60}
    assert resources_for(Cost(30, 0.5, 8.03), RULES, 2.0) == {"mem_gb": 64, "timeout_min": 240}
    assert resources_for(Cost(200, 3, 70), RULES, 2.0)["gpus_per_node"] == 4


def test_timeout_is_raised_to_cover_the_estimate():
    assert resources_for(Cost(30, 3.0, 8.0), RULES, 2.0)["timeout_min"] == 360  # 2 x 3 h > the rule's 240
    assert resources_for(Cost(30, 3.0, 8.0), RULES, 0.0)["timeout_min"] == 240  # factor 0: the rule as written


def test_bad_rules_fail_naming_the_rule_and_the_allowed_keys():
    with pytest.raises(ValueError, match=r"resources\[1\]: needs max_params_b"):
        check_rules([RULES[0], {"mem_gb": 1}], ALLOWED)
    with pytest.raises(ValueError, match=r"resources\[1\]\.max_params_b=1.0: rules must be in increasing"):
        check_rules([RULES[0], {"max_params_b": 1}], ALLOWED)
    with pytest.raises(ValueError, match=r"resources\[0\]\.gpus: not a launcher parameter; allowed: .*gpus_per_node"):
        check_rules([{"max_params_b": 1, "gpus": 2}], ALLOWED)
    with pytest.raises(ValueError, match="no rule covers a 70.00B-parameter model"):
        resources_for(Cost(1, 1, 70.0), RULES[:2], 2.0)


LLAMA3_70B = Shape(70.55e9, 80, 8192, 28672, 128256, "test")
PAPER = dict(dtype="float16", pruner=get_pruner("wanda"), calibrated=True, nsamples=128, seqlen=2048, eval_languages=7)


def test_a_70b_model_spread_over_80gb_gpus_needs_two_and_holds_them_as_long_as_one():
    one = estimate(LLAMA3_70B, **PAPER)
    spread = estimate(LLAMA3_70B, spread=True, **PAPER)
    assert one.gpus == 1 and not one.fits and one.gpu_mem_gb > 80
    need = (70.55e9 * 2 + 1.2 * 4 * 8 * 2048 * 128256) / 2**30  # fp16 weights + the logits' working set
    assert spread.gpus == 2 and spread.fits
    assert spread.gpu_mem_gb == pytest.approx(need / 2 + 1.0, abs=0.01)
    assert spread.hours == pytest.approx(one.hours) and spread.gpu_hours == pytest.approx(2 * one.gpu_hours)
    assert estimate(LLAMA3_70B, spread=True, gpu_mem_gb=40, **PAPER).gpus == math.ceil(need / 39)
    assert estimate(LLAMA3_8B, spread=True, **PAPER).gpus == 1


def test_rules_ask_for_the_gpus_the_plan_needs():
    big = Cost(71.4, 6.0, 70.55, gpus=2)
    assert resources_for(big, RULES, 2.0)["gpus_per_node"] == 4  # the rule asks for more
    plain = RULES[:2] + [{"max_params_b": 100, "mem_gb": 256, "timeout_min": 60}]
    res = resources_for(big, plain, 2.0)
    assert res["gpus_per_node"] == 2 and res["timeout_min"] == 360  # 2 x 3 wall hours, not 6 GPU-hours
    assert "gpus_per_node" not in resources_for(Cost(30, 0.5, 8.03), plain, 2.0)
    assert resources_for(big, [], 0.0) == {"gpus_per_node": 2}  # no rules: the GPUs still


def test_a_mixture_of_experts_computes_with_its_active_parameters():
    moe = Shape(30.53e9, 48, 2048, 6144, 151936, "test", experts=128, expert_intermediate=768, active=8)
    assert moe.active_params == pytest.approx(3.3e9, rel=0.02)  # Qwen3-30B-A3B's model card: 3.3B activated
    dense = Shape(30.53e9, 48, 2048, 6144, 151936, "test")
    kw = dict(PAPER, pruner=get_pruner("dense"), calibrated=False)
    assert estimate(moe, **kw).gpu_hours < estimate(dense, **kw).gpu_hours
    assert estimate(moe, **kw).gpu_mem_gb == estimate(dense, **kw).gpu_mem_gb  # every expert is resident
    unknown = Shape(30.53e9, 48, 2048, 6144, 151936, "test", experts=128, expert_intermediate=768)
    assert unknown.active_params == unknown.params  # experts per token not known: no reduction


def test_shapes_of_current_families_from_their_config_json():
    qwen3_moe = {
        "model_type": "qwen3_moe",
        "hidden_size": 2048,
        "num_hidden_layers": 48,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
    }
    s = shape_from_config_json(qwen3_moe)
    assert s.params == pytest.approx(30.5e9, rel=0.01) and (s.experts, s.expert_intermediate, s.active) == (128, 768, 8)
    gemma3 = {  # multimodal config.json: the text model's shape under text_config
        "model_type": "gemma3",
        "text_config": {
            "model_type": "gemma3_text",
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "num_hidden_layers": 34,
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "head_dim": 256,
            "vocab_size": 262208,
        },
    }
    g = shape_from_config_json(gemma3)
    assert g.layers == 34 and g.hidden == 2560 and g.params == pytest.approx(3.88e9, rel=0.02)  # 4.3B - 0.42B vision
