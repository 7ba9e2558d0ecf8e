"""Language mixes: counts sum to nsamples, respect the minimum, follow the shares."""

import pytest
import torch

from mlsweep.data.mixes import largest_remainder, sample_counts
from mlsweep.testbed.languages import SHARES

LANGS = list(SHARES)


def test_uniform_splits_evenly_remainder_to_first_listed():
    assert sample_counts("uniform", 64, LANGS) == {"en": 10, "zh": 9, "es": 9, "ar": 9, "ru": 9, "de": 9, "sw": 9}


def test_proportional_follows_testbed_shares_with_minimum_one():
    counts = sample_counts("proportional", 64, LANGS, "testbed")
    assert counts == {"en": 23, "zh": 16, "es": 10, "ar": 6, "ru": 5, "de": 3, "sw": 1}  # 64 x shares, rounded
    for lang, n in counts.items():
        assert abs(n - 64 * SHARES[lang]) < 1


def test_bloom_twenty_language_mix_of_256_reproduces_the_mbs_counts():
    from mlsweep.data.shares import SHARES as FAMILIES

    langs = list(FAMILIES["bloom"])
    counts = sample_counts("proportional", 256, langs, "bloom")
    assert sum(counts.values()) == 256 and min(counts.values()) == 1 and len(counts) == 20
    assert [counts[lang] for lang in ("en", "zh", "fr", "es", "pt", "ar", "vi", "hi", "id", "bn")] == [
        87,
        47,
        37,
        31,
        14,
        13,
        7,
        4,
        3,
        3,
    ]
    small = sample_counts("proportional", 40, langs, "bloom")  # a tight budget: many at the minimum
    assert sum(small.values()) == 40 and min(small.values()) == 1 and small["en"] > small["zh"] > small["fr"]


def test_published_shares_are_fractions_of_the_training_data():
    from mlsweep.data.shares import _XGLM_RATIOS
    from mlsweep.data.shares import SHARES as FAMILIES

    for family in ("testbed", "bloom"):
        assert sum(FAMILIES[family].values()) == pytest.approx(1.0)
    corpus = [ratio for ratio, _ in _XGLM_RATIOS.values()]
    assert len(_XGLM_RATIOS) == 30 and sum(corpus) == pytest.approx(1.0, abs=1e-5)
    # the upsampled column is printed to 4 decimals: 0.9999 in the model card
    assert sum(FAMILIES["xglm"].values()) == pytest.approx(1.0, abs=5e-4)
    assert all(0 < share < 1 for shares in FAMILIES.values() for share in shares.values())


def test_conf_model_families_have_shares_or_say_they_are_unpublished():
    from omegaconf import OmegaConf

    from mlsweep import CONF_DIR
    from mlsweep.data.shares import SHARES as FAMILIES
    from mlsweep.data.shares import UNPUBLISHED

    assert not set(FAMILIES) & set(UNPUBLISHED)
    for path in (CONF_DIR / "model").glob("*.yaml"):
        family = OmegaConf.load(path).family
        assert family in FAMILIES or family in UNPUBLISHED, f"{path.name}: model.family={family!r}"


def test_proportional_over_xglm_languages_respects_minimum_and_total():
    from mlsweep.data.shares import SHARES as FAMILIES

    langs = list(FAMILIES["xglm"])
    counts = sample_counts("proportional", 128, langs, "xglm")
    assert sum(counts.values()) == 128 and min(counts.values()) == 1 and list(counts) == langs
    assert counts["qu"] == 1 and counts["en"] == max(counts.values())
    # the seven-language default of calib=proportional: XGLM's shares renormalised over them
    seven = sample_counts("proportional", 64, LANGS, "xglm")
    assert sum(seven.values()) == 64 and min(seven.values()) >= 1
    assert seven["en"] > seven["ru"] > seven["zh"] > seven["de"] > seven["sw"]


@pytest.mark.parametrize("family", ["llama3", "aya23", "mgpt"])
def test_proportional_for_a_family_without_published_shares_says_so(family):
    with pytest.raises(ValueError) as err:
        sample_counts("proportional", 64, LANGS, family)
    message = str(err.value)
    for needle in (
        "calib.mix=proportional",
        f"model.family={family!r}",
        "not published",
        "bloom, testbed, xglm",
        "calib=uniform",
        "calib.mix=weights",
        "calib.weights={",
    ):
        assert needle in message, message
    assert sample_counts("uniform", 64, LANGS, family)  # the alternatives still work
    assert sample_counts("weights", 10, ["en", "sw"], family, {"en": 0.6, "sw": 0.4}) == {"en": 6, "sw": 4}


def test_unpublished_family_fails_validation_before_the_model_loads(tiny_overrides):
    from hydra import compose, initialize_config_dir

    import mlsweep.cell.app  # noqa: F401  (registers the schemas)
    from mlsweep import CONF_DIR
    from mlsweep.config import CellSpec, ConfigError

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["calib=proportional", *tiny_overrides, "model.family=llama3"])
    with pytest.raises(ConfigError, match=r"model\.family='llama3' are not published"):
        CellSpec.from_config(cfg)


def test_explicit_weights():
    assert sample_counts("weights", 10, ["en", "sw"], weights={"en": 0.7, "sw": 0.3}) == {"en": 7, "sw": 3}
    with pytest.raises(ValueError, match="calib.weights"):
        sample_counts("weights", 10, ["en", "sw"], weights={"en": -1.0, "sw": 0.0})
    with pytest.raises(ValueError, match="calib.weights"):
        sample_counts("weights", 10, ["en", "sw"], weights={"en": 1.0})


def test_largest_remainder_is_exact_and_order_stable():
    assert largest_remainder(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder(3, {"a": 0.0, "b": 1.0}, minimum=1) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    "args,needle",
    [
        (("uniform", 0, LANGS), "calib.nsamples"),
        (("proportional", 5, LANGS, "testbed"), "calib.nsamples"),
        (("proportional", 64, LANGS, "nofamily"), "model.family"),
        (("weighted", 64, LANGS), "calib.mix"),
    ],
)
def test_bad_mix_input_names_the_field(args, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        sample_counts(*args)


def test_calibration_windows_are_cached_per_language(tmp_path, monkeypatch, tiny_model):
    from helpers import toy_documents
    from transformers import AutoTokenizer

    from mlsweep.data.calibration import build_calibration, cache_dir

    monkeypatch.setenv("MLSWEEP_CACHE", str(tmp_path))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    docs = {"aa": toy_documents("aa", 20, 0), "bb": toy_documents("bb", 20, 0)}
    first = build_calibration(tok, docs, {"aa": 3, "bb": 2}, 16, 0, source_key="toy")
    assert len(list(cache_dir().glob("*.pt"))) == 2
    again = build_calibration(tok, docs, {"aa": 3, "bb": 2}, 16, 0, source_key="toy")
    assert torch.equal(first.input_ids, again.input_ids) and first.doc_hashes == again.doc_hashes
    build_calibration(tok, docs, {"aa": 3, "bb": 2}, 16, 1, source_key="toy")  # another seed: new entries
    assert len(list(cache_dir().glob("*.pt"))) == 4


def test_proportional_accepts_iso3_and_flores_codes():
    """The shares are keyed by ISO 639-1; other spellings of the same language find them."""
    same = sample_counts("proportional", 32, ["en", "de", "sw"], "testbed")
    assert sample_counts("proportional", 32, ["eng", "deu_Latn", "swa"], "testbed") == {
        "eng": same["en"],
        "deu_Latn": same["de"],
        "swa": same["sw"],
    }
