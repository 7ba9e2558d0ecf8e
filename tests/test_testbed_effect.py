"""The testbed shows the calibration-language effect the papers study (METHODS.md section 15).

Wanda at 70% on the committed testbed model, two calibration seeds, through
the real cell entrypoint. Assertions are the robust ones: no exact
perplexities, only orderings and margins relative to the seed spread.
"""

import statistics

import pytest
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.testbed.languages import LANGUAGES

pytestmark = pytest.mark.integration
LANGS = list(LANGUAGES)
OTHER_SCRIPT = [lang for lang in LANGS if LANGUAGES[lang].script != LANGUAGES["en"].script]


def cell(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["eval.max_windows=50", *overrides])
    row = run_config(cfg, tmp_path / "_".join(overrides).replace("=", "-"))
    assert row["status"] == "done", row["error"]
    return {lang: row[f"ppl/{lang}"] for lang in LANGS}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("effect")
    out = {("dense", 0): cell(tmp, "pruner=dense")}
    for calib in LANGS + ["uniform"]:
        for seed in (0, 1):
            out[(calib, seed)] = cell(tmp, f"calib={calib}", f"calib.seed={seed}", "sparsity.target=0.7")
    out[("en@0.5", 0)] = cell(tmp, "calib=en", "sparsity.target=0.5")
    out[("magnitude", 0)] = cell(tmp, "pruner=magnitude", "sparsity.target=0.7")
    return out


def mean(grid, calib, lang):
    return (grid[(calib, 0)][lang] + grid[(calib, 1)][lang]) / 2


def test_own_language_calibration_is_best_for_most_languages_beyond_seed_spread(grid):
    margins, spreads, wins = [], [], 0
    for lang in LANGS:
        own = mean(grid, lang, lang)
        best_other = min(mean(grid, c, lang) for c in LANGS if c != lang)
        wins += own < best_other
        margins.append(best_other / own - 1)
        spreads.append(abs(grid[(lang, 0)][lang] - grid[(lang, 1)][lang]) / own)
    assert wins >= 5, f"own-language best in only {wins}/7"
    assert statistics.median(margins) >= 0.03
    assert statistics.median(margins) > 3 * statistics.median(spreads)


def test_a_multilingual_mix_beats_first_language_only_on_other_scripts(grid):
    for lang in OTHER_SCRIPT:
        assert mean(grid, "uniform", lang) < mean(grid, "en", lang), lang


def test_perplexity_rises_with_sparsity(grid):
    for lang in LANGS:
        assert grid[("dense", 0)][lang] < grid[("en@0.5", 0)][lang] < grid[("en", 0)][lang], lang


def test_wanda_with_own_language_calibration_beats_magnitude(grid):
    """The testbed has outlier features (model card), so activation-aware pruning wins as on real LLMs."""
    gains = [grid[("magnitude", 0)][lang] / mean(grid, lang, lang) - 1 for lang in LANGS]
    assert statistics.mean(gains) >= 0.10, [f"{lang} {g:+.1%}" for lang, g in zip(LANGS, gains)]
