"""A real local multirun through Hydra's basic launcher and the mlsweep sweeper."""

import json
import shutil
import subprocess
import sys

import pytest

from mlsweep.report import load_rows, matrix

pytestmark = pytest.mark.integration


def test_sweep_folds_dense_records_a_failed_cell_and_goes_on(tmp_path, tiny_model, text_folder):
    text = tmp_path / "text"
    shutil.copytree(text_folder, text)
    # language bb's test split is its calibration split: cells calibrated on bb must fail at eval
    shutil.copy(text / "bb" / "calib.jsonl", text / "bb" / "test.jsonl")
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "tiny.yaml").write_text(f"""# @package _global_
name: tiny
model: {{name: tiny, path: {tiny_model}, seqlen: 32, device: cpu}}
calib: {{source: {{name: local, path: {text}}}, nsamples: 4}}
eval: {{source: {{name: local, path: {text}}}, languages: [aa, bb, cc], max_windows: 4}}
hydra:
  sweeper:
    params:
      pruner: dense,wanda
      calib.languages: "[aa],[bb]"
      sparsity.target: 0.5,0.7
""")
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlsweep",
            f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
            "+experiment=tiny",
            f"hydra.sweep.dir={sweep_dir}",
            "-m",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "8 grid points -> 5 cells (3 folded" in proc.stdout + proc.stderr
    assert "2 of 5 cells failed" in proc.stderr
    rows = [json.loads(p.read_text()) for p in sweep_dir.rglob("result.json")]
    status = sorted((r["pruner"], r["calib_languages"], r["sparsity_target"], r["status"]) for r in rows)
    assert status == [
        ("dense", "-", 0.0, "done"),
        ("wanda", "aa", 0.5, "done"),
        ("wanda", "aa", 0.7, "done"),
        ("wanda", "bb", 0.5, "failed"),
        ("wanda", "bb", 0.7, "failed"),
    ]
    failed = [r for r in rows if r["status"] == "failed"]
    assert all("calibration text" in r["error"] for r in failed)
    assert (sweep_dir / "pruner=dense" / "result.json").exists()
    # progress: one line per stage per cell, naming the cell
    assert "[cell 2/5 " in proc.stderr and " prune " in proc.stderr

    tables = matrix(load_rows([sweep_dir]))
    t = tables[("tiny", "wanda", 0.5)]
    assert list(t.columns) == ["aa", "bb", "cc"]
    assert t.index[0] == "dense"
    assert list(t.index) == ["dense", "en [aa]", "en [bb]"]  # calib=en twice: its languages tell the rows apart
    assert (t.loc["en [bb]"] == "failed").all()
    assert all(isinstance(v, float) for v in t.loc["en [aa]"])

    report = subprocess.run(
        [sys.executable, "-m", "mlsweep.report", str(sweep_dir)], capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stderr
    assert "5 cells: 3 done, 2 failed" in report.stdout
    assert (sweep_dir / "report" / "results.csv").exists()
    assert (sweep_dir / "report" / "ppl_tiny_wanda_s0.5.md").exists()


def test_delta_vs_dense_in_percent():
    import pandas as pd

    from mlsweep.report import delta_vs_dense

    table = pd.DataFrame(
        {"en": [10.0, 12.0, "failed"], "de": [20.0, 19.0, "failed"]}, index=["dense", "calib=en", "calib=de"]
    )
    delta = delta_vs_dense(table)
    assert delta.loc["calib=en", "en"] == pytest.approx(20.0) and delta.loc["calib=en", "de"] == pytest.approx(-5.0)
    assert delta.loc["calib=de"].isna().all()


def test_a_bad_value_anywhere_in_the_grid_stops_the_sweep_before_anything_loads(tmp_path, tiny_overrides):
    """Valid grid points come before the bad one: every cell is validated before the first one runs."""
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlsweep",
            *tiny_overrides,
            "name=badgrid",
            f"hydra.sweep.dir={sweep_dir}",
            "pruner=wanda,magnitude",
            "sparsity.target=0.5,1.5",
            "-m",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "config error in cell" in out and "sparsity.target=1.5" in out and "nothing was run" in out
    loaded = [p for p in sweep_dir.rglob("result.json") if "time/load_s" in json.loads(p.read_text())]
    assert loaded == [] and not list(sweep_dir.rglob("running.json"))
    assert "] load " not in out  # no cell printed a load stage
