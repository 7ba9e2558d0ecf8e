"""One canonical code per language in every key, pass and table, whatever spelling the config typed.

`hin_Deva`, `hin` and `hi` are one language (`hi`); `swh` is `sw`. The
config keeps the typed spelling; the `local` and `testbed` sources serve any
spelling of the languages their folders hold; codes the table does not know
(the tests' `aa`, `bb`) stay as typed.
"""

from __future__ import annotations

import shutil

import pytest
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.config.spec import CellSpec, ConfigError
from mlsweep.config.validate import check_calibration, check_suite
from mlsweep.data.languages import canonical
from mlsweep.data.sources import SourceSpec, check_languages, make_source


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def spec_of(*overrides) -> CellSpec:
    return CellSpec.from_config(compose_cfg(list(overrides)))


@pytest.mark.parametrize(
    "typed,code", [("hin_Deva", "hi"), ("hin", "hi"), ("hi", "hi"), ("swh", "sw"), ("deu_Latn", "de"), ("aa", "aa")]
)
def test_canonical_code_of_each_spelling(typed, code):
    assert canonical(typed) == code


def test_the_spec_holds_canonical_codes_and_the_config_the_typed_ones():
    spec = spec_of(
        "eval.source.name=flores", "eval.languages=[hin_Deva,swh,en]", "calib.source.name=flores",
        "calib.split=dev", "calib.languages=[deu,swh]", "calib.nsamples=4",
    )  # fmt: skip
    assert spec.suite.languages == ("hi", "sw", "en")
    assert spec.calib.languages == ("de", "sw")
    assert spec.axes["calib_languages"] == "de,sw"
    assert list(spec.config["eval"]["languages"]) == ["hin_Deva", "swh", "en"]
    assert list(spec.config["calib"]["languages"]) == ["deu", "swh"]


def test_every_spelling_of_a_language_is_one_cell():
    ids = {
        spec_of("calib.languages=[" + typed + "]", "eval.languages=[" + ev + "]").cell_id
        for typed, ev in (("de", "sw"), ("deu", "swh"), ("deu_Latn", "swh_Latn"))
    }
    assert len(ids) == 1


def test_a_target_mix_labels_its_passes_canonically():
    spec = spec_of("calib=target", "eval.languages=[deu_Latn,swh]")
    assert [p.label for p in spec.passes] == ["de", "sw"]
    assert [p.calib.languages for p in spec.passes] == [("de",), ("sw",)]


@pytest.mark.parametrize(
    "override,field",
    [
        ("eval.languages=[de,deu_Latn]", "eval.languages: 'de' and 'deu_Latn' name the same language"),
        ("calib.languages=[sw,swh]", "calib.languages: 'sw' and 'swh' name the same language"),
    ],
)
def test_two_spellings_of_one_language_in_one_list_are_refused(override, field):
    with pytest.raises(ConfigError, match=field):
        spec_of(override)


def test_weights_follow_the_languages_canonical_codes():
    weights = "++calib.weights={eng: 1, swh: 3}"
    spec = spec_of("calib=uniform", "calib.mix=weights", "calib.languages=[eng,swh]", weights)
    assert spec.calib.counts() == {"en": 16, "sw": 48}


@pytest.mark.parametrize("typed", ["deu", "deu_Latn", "DE"])
def test_testbed_sources_accept_every_spelling(typed):
    for name, split in (("testbed", "calib"), ("testbed_parallel", "dev")):
        source = make_source(SourceSpec(name=name))
        check_languages("calib.languages", [typed], source)
        assert source.documents(typed, split) == source.documents("de", split)


@pytest.fixture
def iso3_folder(tmp_path, text_folder):
    """A local folder whose language folders are named in FLORES spelling: aa -> deu_Latn, bb -> swh_Latn."""
    root = tmp_path / "flores_named"
    shutil.copytree(text_folder / "aa", root / "deu_Latn")
    shutil.copytree(text_folder / "bb", root / "swh_Latn")
    shutil.copytree(text_folder / "cc", root / "cc")
    return root


@pytest.fixture
def iso1_folder(tmp_path, text_folder):
    root = tmp_path / "iso1_named"
    shutil.copytree(text_folder / "aa", root / "de")
    shutil.copytree(text_folder / "bb", root / "sw")
    return root


def test_a_local_folder_named_de_serves_deu_and_deu_latn(iso1_folder):
    source = make_source(SourceSpec(name="local", path=str(iso1_folder)))
    for typed in ("deu", "deu_Latn", "de"):
        check_languages("eval.languages", [typed], source)
        assert source.documents(typed, "test") == source.documents("de", "test")
    with pytest.raises(ValueError, match="'fra' is unknown to source 'local'"):
        check_languages("eval.languages", ["fra"], source)


def test_a_local_folder_named_deu_latn_serves_de(iso3_folder):
    spec = spec_of(
        "calib.source.name=local", f"calib.source.path={iso3_folder}", "calib.languages=[de]",
        "eval.source.name=local", f"eval.source.path={iso3_folder}", "eval.languages=[de,sw,cc]",
    )  # fmt: skip
    check_suite(spec.suite)
    check_calibration(spec.calib, "calib.languages")
    source = make_source(spec.suite.corpora[0].source)
    assert source.documents("de", "test") == source.documents("deu_Latn", "test")


def test_two_folders_of_one_language_are_refused_by_name(iso1_folder):
    shutil.copytree(iso1_folder / "de", iso1_folder / "deu")
    source = make_source(SourceSpec(name="local", path=str(iso1_folder)))
    check_languages("eval.languages", ["de"], source)  # its own folder
    with pytest.raises(ValueError, match=r"'deu_Latn' is spelt 2 ways in source 'local' \(de, deu\)"):
        check_languages("eval.languages", ["deu_Latn"], source)


def test_a_cell_typed_in_iso3_and_flores_writes_canonical_keys(tmp_path, tiny_overrides, iso3_folder):
    keep = [o for o in tiny_overrides if ".source.path=" not in o and "languages=" not in o]
    cfg = compose_cfg(
        keep + [
            f"calib.source.path={iso3_folder}", f"eval.source.path={iso3_folder}",
            "calib.languages=[deu,swh_Latn]", "eval.languages=[deu_Latn,swh,cc]", "pruner=wanda",
        ]
    )  # fmt: skip
    row = run_config(cfg, tmp_path)
    assert row["status"] == "done", row["error"]
    for lang in ("de", "sw", "cc"):
        assert f"ppl/{lang}" in row and f"bpb/{lang}" in row and f"eval_tokens/{lang}" in row
    assert not any(k.endswith(("/deu_Latn", "/swh", "/deu", "/swh_Latn")) for k in row), sorted(row)
    assert row["calib_languages"] == "de,sw" and row["calib_count/de"] == 2 and row["calib_count/sw"] == 2
    assert list(row["config"]["eval"]["languages"]) == ["deu_Latn", "swh", "cc"]
