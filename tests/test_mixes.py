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
    assert [counts[l] for l in ("en", "zh", "fr", "es", "pt", "ar", "vi", "hi", "id", "bn")] == \
        [87, 47, 37, 31, 14, 13, 7, 4, 3, 3]
    small = sample_counts("proportional", 40, langs, "bloom")  # a tight budget: many at the minimum
    assert sum(small.values()) == 40 and min(small.values()) == 1 and small["en"] > small["zh"] > small["fr"]


def test_explicit_weights():
    assert sample_counts("weights", 10, ["en", "sw"], weights={"en": 0.7, "sw": 0.3}) == {"en": 7, "sw": 3}
    with pytest.raises(ValueError, match="calib.weights"):
        sample_counts("weights", 10, ["en", "sw"], weights={"en": -1.0, "sw": 0.0})
    with pytest.raises(ValueError, match="calib.weights"):
        sample_counts("weights", 10, ["en", "sw"], weights={"en": 1.0})


def test_largest_remainder_is_exact_and_order_stable():
    assert largest_remainder(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert largest_remainder(3, {"a": 0.0, "b": 1.0}, minimum=1) == {"a": 1, "b": 2}


@pytest.mark.parametrize("args,needle", [
    (("uniform", 0, LANGS), "calib.nsamples"),
    (("proportional", 5, LANGS, "testbed"), "calib.nsamples"),
    (("proportional", 64, LANGS, "nofamily"), "model.family"),
    (("weighted", 64, LANGS), "calib.mix"),
])
def test_bad_mix_input_names_the_field(args, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        sample_counts(*args)


def test_calibration_windows_are_cached_per_language(tmp_path, monkeypatch, tiny_model):
    from transformers import AutoTokenizer

    from mlsweep.data.calibration import build_calibration, cache_dir
    from helpers import toy_documents

    monkeypatch.setenv("MLSWEEP_CACHE", str(tmp_path))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    docs = {"aa": toy_documents("aa", 20, 0), "bb": toy_documents("bb", 20, 0)}
    first = build_calibration(tok, docs, {"aa": 3, "bb": 2}, 16, 0, source_key="toy")
    assert len(list(cache_dir().glob("*.pt"))) == 2
    again = build_calibration(tok, docs, {"aa": 3, "bb": 2}, 16, 0, source_key="toy")
    assert torch.equal(first.input_ids, again.input_ids) and first.doc_hashes == again.doc_hashes
    build_calibration(tok, docs, {"aa": 3, "bb": 2}, 16, 1, source_key="toy")  # another seed: new entries
    assert len(list(cache_dir().glob("*.pt"))) == 4
