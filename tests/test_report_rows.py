"""The report reads every row it can and never pools cells that are not seeds of each other.

Rows are written here by hand: unreadable ones (not a JSON object, truncated)
are skipped by path, cells of one model name from two model paths get a
table each, and a metric computed as NaN is shown failed instead of dropped.
"""

from __future__ import annotations

import json
import math

import pytest

from mlsweep.report import main
from mlsweep.results.cellfolder import atomic_write_json
from mlsweep.results.store import load_rows
from mlsweep.results.tables import build_tables, parse_spec

SPEC = parse_spec({"rows": "calib", "metric": ["ppl"], "tables_by": ["model", "pruner"], "baselines": ["dense"]})


def write_row(folder, seed=0, path="/models/llama", ppl=5.0, status="done", pruner="wanda", eval_seqlen=32):
    """One cell's result.json: wanda (or dense) on `en`, model name `llama` read from `path`."""
    dense = pruner == "dense"
    config = {
        "name": "study",
        "seed": seed,
        "model": {"name": "llama", "path": path},
        "pruner": {"name": pruner},
        "calib": {"name": "en", "seed": seed},
        "eval": {"name": "ppl", "seqlen": eval_seqlen},
    }
    row = {
        "cell_id": f"{pruner}-{seed}-{path}-{eval_seqlen}",
        "status": status,
        "error": "RuntimeError: boom" if status == "failed" else None,
        "experiment": "study",
        "model": "llama",
        "pruner": pruner,
        "calib": "-" if dense else "en",
        "calib_seed": -1 if dense else seed,
        "sparsity_target": 0.0 if dense else 0.5,
        "seed": seed,
        "config": config,
    }
    if status == "done":
        row.update({"ppl/en": ppl, "ppl/de": ppl + 1})
    atomic_write_json(folder / "result.json", row)
    return folder


def wanda_table(df):
    return next(t for t in build_tables(df, SPEC) if t.key["pruner"] == "wanda")


@pytest.mark.parametrize("content", ["[1, 2]", "42", '{"cell_id": "x", "status": "do', '"text"'])
def test_a_row_that_is_not_an_object_is_reported_by_path_and_not_done(tmp_path, capsys, content):
    write_row(tmp_path / "good")
    bad = tmp_path / "bad" / "result.json"
    bad.parent.mkdir()
    bad.write_text(content)
    df = load_rows([tmp_path])
    err = capsys.readouterr().err
    assert str(bad) in err and "treated as not done" in err
    assert list(df["path"]) == [str(tmp_path / "good")]


def test_the_report_cli_survives_unreadable_rows(tmp_path, capsys):
    write_row(tmp_path / "sweep" / "good")
    for name, content in (("list", "[1, 2]"), ("number", "42"), ("cut", '{"status": "done", "ppl/en": 4')):
        (tmp_path / "sweep" / name).mkdir()
        (tmp_path / "sweep" / name / "result.json").write_text(content)
    main([str(tmp_path / "sweep"), "--no-heatmap", "--out", str(tmp_path / "report")])
    captured = capsys.readouterr()
    for name in ("list", "number", "cut"):
        assert str(tmp_path / "sweep" / name / "result.json") in captured.err
    assert "1 cells: 1 done" in captured.out


def test_cells_of_one_model_name_from_two_paths_are_not_pooled_as_seeds(tmp_path, capsys):
    write_row(tmp_path / "a0", seed=0, path="/models/llama", ppl=5.0)
    write_row(tmp_path / "a1", seed=1, path="/models/llama", ppl=7.0)
    write_row(tmp_path / "b0", seed=0, path="/edits/llama-nan-norms", ppl=500.0)
    tables = [t for t in build_tables(load_rows([tmp_path]), SPEC) if t.key["pruner"] == "wanda"]
    by_path = {t.key["model_path"]: t for t in tables}
    assert set(by_path) == {"llama", "llama-nan-norms"}, "the path's last part tells the tables apart"
    assert by_path["llama"].mean.at["en", "en"] == pytest.approx(6.0)  # the mean of its two seeds only
    assert by_path["llama"].n["en"] == 2
    assert by_path["llama-nan-norms"].mean.at["en", "en"] == pytest.approx(500.0)
    assert "llama-nan-norms" in by_path["llama-nan-norms"].title
    assert "one table per path" in capsys.readouterr().err


def test_two_paths_with_the_same_last_part_are_shown_whole(tmp_path):
    write_row(tmp_path / "a", path="/models/v1/llama", ppl=5.0)
    write_row(tmp_path / "b", path="/models/v2/llama", ppl=9.0)
    tables = [t for t in build_tables(load_rows([tmp_path]), SPEC) if t.key["pruner"] == "wanda"]
    assert {t.key["model_path"] for t in tables} == {"/models/v1/llama", "/models/v2/llama"}


def test_a_config_difference_no_axis_shows_goes_into_the_row_label(tmp_path):
    write_row(tmp_path / "a", eval_seqlen=32, ppl=5.0)
    write_row(tmp_path / "b", eval_seqlen=64, ppl=9.0)
    table = wanda_table(load_rows([tmp_path]))
    assert len(table.body) == 2 and all("config " in label for label in table.body), table.body
    assert sorted(table.mean.loc[table.body, "en"]) == [5.0, 9.0]


def test_seeds_of_one_cell_are_still_averaged(tmp_path):
    write_row(tmp_path / "a", seed=0, ppl=5.0)
    write_row(tmp_path / "b", seed=1, ppl=7.0)
    table = wanda_table(load_rows([tmp_path]))
    assert table.body == ["en"] and table.n["en"] == 2
    assert table.mean.at["en", "en"] == pytest.approx(6.0)


def test_a_metric_computed_as_nan_is_shown_failed_not_dropped(tmp_path):
    write_row(tmp_path / "dense", pruner="dense", ppl=4.0)
    write_row(tmp_path / "a", ppl=math.nan)
    assert "NaN" in (tmp_path / "a" / "result.json").read_text()
    table = wanda_table(load_rows([tmp_path]))
    assert list(table.status.loc["en"]) == ["failed", "failed"]
    assert list(table.status.loc["dense"]) == ["done", "done"]
    text = json.dumps(table.notes)
    assert "no done value" not in text  # dense has values


def test_a_metric_no_cell_holds_is_said_on_stderr_and_in_the_notes(tmp_path, capsys):
    write_row(tmp_path / "a", ppl=math.nan)
    write_row(tmp_path / "b", seed=1, status="failed")
    tables = build_tables(load_rows([tmp_path]), SPEC)
    assert len(tables) == 1, "the ppl table is built from the NaN the cell computed"
    assert any("no done value in en, de" in n for n in tables[0].notes), tables[0].notes
    write_row(tmp_path / "a", status="failed")
    assert build_tables(load_rows([tmp_path]), SPEC) == []
    assert "ppl: no cell holds a value (2 failed); no table" in capsys.readouterr().err
