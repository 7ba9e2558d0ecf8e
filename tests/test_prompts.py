"""Kim et al.'s translation prompts: well-formed, padded, and padding out of the statistics."""

import pytest
import torch
from hydra import compose, initialize_config_dir
from test_prune_api import tiny

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.data.prompts import monolingual_texts, translation_texts
from mlsweep.prune import prune_model


def test_translation_prompts_are_k_shot_pairs_with_one_index_skipped():
    src, tgt = [f"s{i}" for i in range(12)], [f"t{i}" for i in range(12)]
    texts = translation_texts(src, tgt, "Swahili", "English", "</s>", shots=2, n=3)
    assert texts == [
        "Swahili: s0</s>English: t0</s>Swahili: s1</s>English: t1</s>",
        "Swahili: s3</s>English: t3</s>Swahili: s4</s>English: t4</s>",
        "Swahili: s6</s>English: t6</s>Swahili: s7</s>English: t7</s>",
    ]
    with pytest.raises(ValueError, match="calib.nsamples"):
        translation_texts(src, tgt, "a", "b", "</s>", shots=4, n=5)
    mono = monolingual_texts(src, "Swahili", "</s>", shots=2, n=2, seed=0)
    assert all(t.count("Swahili: ") == 2 for t in mono) and mono == monolingual_texts(src, "Swahili", "</s>", 2, 2, 0)


def test_padding_never_enters_the_statistics_unless_asked():
    ids = torch.randint(4, 300, (4, 16), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[:, 10:] = 0
    ids[:, 10:] = 3  # padding
    a, b, c = tiny(), tiny(), tiny()
    prune_model(a, ids, "wanda", 0.5, attention_mask=mask)  # padding masked out
    prune_model(b, ids[:, :10], "wanda", 0.5)  # the same prompts without padding
    prune_model(c, ids, "wanda", 0.5, attention_mask=mask, mask_pad_in_stats=False)
    q = lambda m: m.model.layers[1].mlp.down_proj.weight == 0
    assert torch.equal(q(a), q(b)), "masked padding = no padding (right padding, causal attention)"
    assert not torch.equal(q(a), q(c)), "with mask_pad_in_stats=False the padding counts"


def test_translation_calibration_cell_on_the_testbed(tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["calib=translation", "calib.nsamples=8", "eval.max_windows=5"])
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["calib"] == "translation" and row["calib_count/sw"] == 8


def test_wanda_ratio_scores_mt_over_code_with_fixed_roles():
    from mlsweep.prune.pruners import wanda_ratio
    from mlsweep.prune.stats import LanguageStats

    st = LanguageStats(3)
    st.add(torch.tensor([[2.0, 1.0, 0.0]]), 1, "code")  # tag order: code first, so roles cannot follow it
    st.add(torch.tensor([[1.0, 3.0, 2.0]]), 1, "mt")
    W = torch.ones(1, 3)
    s = wanda_ratio.score(W, st, wanda_ratio.Params())
    assert s[0, 0] == pytest.approx(1 / 2) and s[0, 1] == pytest.approx(9 / 1)
    with pytest.raises(ValueError, match="pruner.sub"):
        wanda_ratio.score(W, st, wanda_ratio.Params(sub="python"))


def test_translation_code_cell_on_the_testbed(tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "pruner=wanda_ratio",
                "calib=translation_code",
                "calib.nsamples=6",
                "calib.code_nsamples=4",
                "eval.max_windows=5",
            ],
        )
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    assert row["calib_count/mt"] == 6 and row["calib_count/code"] == 4
