"""Analyses: bit-packed masks and their overlap across calibration languages; language similarity."""

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from test_prune_api import calib, tiny

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR, PACKAGE_DIR
from mlsweep.analysis import jaccard, mask_overlap
from mlsweep.analysis.similarity import language_similarity, similarity
from mlsweep.cell.app import run_config
from mlsweep.prune import prune_model
from mlsweep.prune.maskfile import load_masks, save_masks


def test_masks_round_trip_bit_packed(tmp_path):
    model = tiny()
    prune_model(model, calib(), "wanda", 0.5)
    save_masks(model, tmp_path / "m.npz")
    masks = load_masks(tmp_path / "m.npz")
    q = model.model.layers[0].self_attn.q_proj.weight
    assert np.array_equal(masks["0.self_attn.q_proj"], (q == 0).numpy().reshape(-1))
    assert (tmp_path / "m.npz").stat().st_size < sum(p.numel() for p in model.parameters()) * 4 / 16


def test_jaccard():
    a, b = np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)
    assert jaccard(a, b) == pytest.approx(1 / 3) and jaccard(a, a) == 1.0


def test_mask_overlap_between_calibration_languages(tmp_path, tiny_overrides):
    for lang in ("aa", "bb", "cc"):
        cfg = None
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=tiny_overrides
                + [f"calib={'en'}", f"calib.name={lang}", f"calib.languages=[{lang}]", "runtime.save_masks=true"],
            )
        assert run_config(cfg, tmp_path / lang)["status"] == "done"
    table = mask_overlap([tmp_path])
    assert len(table) == 3 and set(table.columns) >= {"calib_a", "calib_b", "block0", "block1", "overall"}
    assert ((table["overall"] > 0.3) & (table["overall"] < 1.0)).all()


def test_language_similarity_on_the_testbed():
    """`en` is the testbed's only language with real (hand-listed) words; the other six invent theirs alike.

    MBS's block-0 statistic sees that: for every generated language, `en` is the least similar
    one (on the first and the retrained testbed model alike, at the command's defaults).
    """
    langs = ["en", "zh", "es", "ar", "ru", "de", "sw"]
    sim = similarity(str(PACKAGE_DIR / "testbed" / "model"), "testbed", "calib", langs, nsamples=32, seqlen=128, seed=1)
    assert sim.shape == (7, 7) and np.allclose(np.diag(sim.values), 1.0) and np.allclose(sim.values, sim.values.T)
    for lang in langs[1:]:
        others = sim[lang].drop(lang)
        assert others.idxmin() == "en", f"{lang}: {others.round(3).to_dict()}"


def test_cosine_of_identical_and_orthogonal():
    sim = language_similarity(
        {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 2.0]), "c": torch.tensor([3.0, 0.0])}
    )
    assert sim.loc["a", "c"] == pytest.approx(1.0) and sim.loc["a", "b"] == pytest.approx(0.0)
