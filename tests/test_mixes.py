"""Language mixes: counts sum to nsamples, respect the minimum, follow the shares."""
import pytest

from mlsweep.data.mixes import largest_remainder, sample_counts
from mlsweep.testbed.languages import SHARES

LANGS = list(SHARES)


def test_uniform_splits_evenly_remainder_to_first_listed():
    assert sample_counts("uniform", 64, LANGS) == {"en": 10, "zh": 9, "es": 9, "ar": 9, "ru": 9, "de": 9, "sw": 9}


def test_proportional_follows_testbed_shares_with_minimum_one():
    counts = sample_counts("proportional", 64, LANGS, "testbed")
    assert sum(counts.values()) == 64 and min(counts.values()) >= 1
    assert counts["en"] > counts["zh"] > counts["es"] > counts["ar"] >= counts["ru"] > counts["de"] >= counts["sw"]
    # one window reserved per language, the remaining 57 split by share, largest remainder
    free = 64 - 7
    for lang, n in counts.items():
        assert abs(n - 1 - free * SHARES[lang]) < 1


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
