"""Data that cannot give what the config asks is refused in validation, before any weight loads.

Each case runs a cell on the tiny model and asserts a failed row whose error
names the file or the field, and no `time/load_s` (the model never loaded):
calib.nsamples far beyond the calibration text, prompts beyond the sentences,
an empty or blank split file, a JSONL record without `text`, a truncated
safetensors file.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace

import pytest
from hydra import compose, initialize_config_dir

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.config.spec import CellSpec, ConfigError
from mlsweep.config.validate import MAX_WINDOW_REUSE, check_calib_windows
from mlsweep.modeling import check_weight_files


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def rejected_before_load(tmp_path, overrides) -> str:
    """The error of a cell that must fail in validation (its row written, its model never loaded)."""
    row = run_config(compose_cfg(overrides), tmp_path / "cell")
    assert row["status"] == "failed", "the cell should have been refused"
    assert "time/load_s" not in row, "the model must not be loaded for a data error"
    return row["error"]


def with_text(tiny_overrides, folder) -> list[str]:
    """tiny_overrides reading calibration and evaluation text from `folder`."""
    keep = [o for o in tiny_overrides if ".source.path=" not in o]
    return keep + [f"calib.source.path={folder}", f"eval.source.path={folder}"]


@pytest.fixture
def text_copy(tmp_path, text_folder):
    root = tmp_path / "text"
    shutil.copytree(text_folder, root)
    return root


def test_nsamples_far_beyond_the_calibration_text_is_refused_naming_language_source_and_windows(
    tmp_path, tiny_overrides
):
    error = rejected_before_load(tmp_path, tiny_overrides + ["calib.nsamples=100000"])
    assert "calib.nsamples=100000" in error and "calib.seqlen=32" in error, error
    assert re.search(r"aa gets 100000, but split 'calib' of source 'local' gives \d+ \(\d+ tokens\)", error), error


def test_the_window_bound_is_reuse_times_the_windows_of_text(tiny_overrides):
    calib = CellSpec.from_config(compose_cfg(tiny_overrides)).calib
    model = next(o.split("=", 1)[1] for o in tiny_overrides if o.startswith("model.path="))
    with pytest.raises(ConfigError) as err:
        check_calib_windows(replace(calib, nsamples=10**6), model, False, None)
    windows = int(re.search(r"gives (\d+) \(", str(err.value)).group(1))
    assert windows > 0
    check_calib_windows(replace(calib, nsamples=MAX_WINDOW_REUSE * windows), model, False, None)
    with pytest.raises(ConfigError, match=f"calib.nsamples={MAX_WINDOW_REUSE * windows + 1}"):
        check_calib_windows(replace(calib, nsamples=MAX_WINDOW_REUSE * windows + 1), model, False, None)


def test_more_prompts_than_the_sentences_give_is_refused(tmp_path, tiny_overrides, text_folder):
    overrides = tiny_overrides + [
        "calib=monolingual",
        "calib.source.name=local",
        f"calib.source.path={text_folder}",
        "calib.split=calib",
        "calib.languages=[aa]",
        "calib.nsamples=8",
    ]
    error = rejected_before_load(tmp_path, overrides)
    assert "calib.nsamples=8: aa gets 8 prompts of calib.shots=4" in error, error
    assert "has 30 sentences, enough for 7" in error, error


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
def test_an_empty_or_blank_calibration_file_is_refused_naming_it(tmp_path, tiny_overrides, text_copy, content):
    (text_copy / "aa" / "calib.jsonl").write_text(content)
    error = rejected_before_load(tmp_path, with_text(tiny_overrides, text_copy))
    assert "calib.split='calib'" in error and str(text_copy / "aa" / "calib.jsonl") in error, error
    assert "holds no text" in error


def test_a_blank_evaluation_file_is_refused_naming_it(tmp_path, tiny_overrides, text_copy):
    (text_copy / "bb" / "test.jsonl").unlink()
    (text_copy / "bb" / "test.txt").write_text("   \n\n")
    error = rejected_before_load(tmp_path, with_text(tiny_overrides, text_copy))
    assert "eval.split='test'" in error and str(text_copy / "bb" / "test.txt") in error, error


@pytest.mark.parametrize(
    "second,found",
    [('{"txt": "abc"}', "found ['txt']"), ("[1, 2]", "found list"), ('{"text": 3}', "found ['text']")],
)
def test_a_jsonl_record_without_text_is_refused_naming_file_and_line(
    tmp_path, tiny_overrides, text_copy, second, found
):
    path = text_copy / "cc" / "test.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], second, *lines[1:]]) + "\n")
    error = rejected_before_load(tmp_path, with_text(tiny_overrides, text_copy))
    assert f'{path} line 2: no "text" string ({found})' in error, error
    assert "eval.split='test'" in error


def test_a_truncated_safetensors_file_is_refused_naming_it(tmp_path, tiny_overrides, tiny_model):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    keep = [o for o in tiny_overrides if not o.startswith("model.path=")]
    error = rejected_before_load(tmp_path, keep + [f"model.path={model}"])
    assert f"model.path={model}: weight file {weights} is truncated" in error, error


@pytest.mark.parametrize("cut", [4, 20])
def test_a_weight_file_cut_inside_its_header_is_named(tmp_path, tiny_model, cut):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:cut])
    with pytest.raises(ValueError, match="model.safetensors is truncated"):
        check_weight_files(str(model))


def test_whole_weight_files_pass(tiny_model):
    check_weight_files(str(tiny_model))
