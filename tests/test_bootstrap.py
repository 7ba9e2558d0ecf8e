"""Paired bootstrap intervals against closed-form cases, and their marks in the tables."""

import json
import math

import numpy as np
import pytest

from mlsweep.report import build_report
from mlsweep.results.bootstrap import paired_interval, resample
from mlsweep.results.cellfolder import atomic_write_json
from mlsweep.results.items import ITEMS_FILE, choice_items, load_items, save_items, window_items
from mlsweep.results.store import load_rows


def windows(nll, tokens=127):
    return window_items(list(nll), [tokens] * len(nll))


def test_identical_items_give_a_zero_width_interval():
    rng = np.random.default_rng(1)
    cell = {
        "ppl/en": windows(rng.uniform(200, 300, 50)),
        "acc/t_en": choice_items(list(range(80)), rng.integers(0, 2, 80)),
    }
    for parts in ([["ppl/en"]], [["acc/t_en"]]):
        got = paired_interval(parts, [cell], [cell])
        assert got.low == got.high == got.estimate == 0.0 and got.covers_zero


def test_a_constant_shift_per_token_gives_a_constant_ratio_that_excludes_zero():
    rng = np.random.default_rng(2)
    nll = rng.uniform(200, 300, 60)
    ref, row = {"ppl/en": windows(nll)}, {"ppl/en": windows(nll + 0.05 * 127)}  # +0.05 nats on every token
    got = paired_interval([["ppl/en"]], [row], [ref])
    want = 100 * (math.exp(0.05) - 1)  # ppl ratio exp(0.05) on every resample
    assert got.low == pytest.approx(want) and got.high == pytest.approx(want) and not got.covers_zero


def test_accuracy_interval_matches_the_normal_approximation():
    n, rng = 4000, np.random.default_rng(3)
    correct = (rng.uniform(size=n) < 0.7).astype(int)
    row = {"acc/t_en": choice_items(list(range(n)), correct)}
    ref = {"acc/t_en": choice_items(list(range(n)), [1] * n)}  # accuracy 1 on every resample
    got = paired_interval([["acc/t_en"]], [row], [ref])
    p = correct.mean()
    half = 1.96 * 100 * math.sqrt(p * (1 - p) / n)  # percent change = 100 (p - 1)
    assert got.estimate == pytest.approx(100 * (p - 1))
    assert (got.high - got.low) / 2 == pytest.approx(half, rel=0.1)
    assert got.low < 100 * (p - 1) < got.high and not got.covers_zero


def test_seeded_deterministic_and_paired_over_the_same_draws():
    a = resample("ppl/en", 30, 200, seed=0)
    assert np.array_equal(a, resample("ppl/en", 30, 200, seed=0))
    assert not np.array_equal(a, resample("ppl/en", 30, 200, seed=1))
    assert not np.array_equal(a, resample("ppl/de", 30, 200, seed=0))  # one stream per stratum
    rng = np.random.default_rng(4)
    ref = {"ppl/en": windows(rng.uniform(200, 300, 40))}
    row = {"ppl/en": windows(ref["ppl/en"]["nll"] * rng.uniform(0.99, 1.03, 40))}
    assert paired_interval([["ppl/en"]], [row], [ref]) == paired_interval([["ppl/en"]], [row], [ref])


def test_strata_and_seeds_are_averaged_like_the_tables():
    rng = np.random.default_rng(5)
    ids = list(range(50))

    def cell(shift):
        return {f"acc/t{i}_en": choice_items(ids, rng.uniform(size=50) < 0.5 + shift) for i in (1, 2)}

    rows, ref = [cell(0.2), cell(0.2)], [cell(0.0)]
    got = paired_interval([["acc/t1_en", "acc/t2_en"]], rows, ref)
    mean = lambda cells: np.mean([np.mean([c[k]["correct"].mean() for k in c]) for c in cells])
    assert got.estimate == pytest.approx(100 * (mean(rows) / mean(ref) - 1))


def test_no_interval_without_items_that_line_up():
    a = {"acc/t_en": choice_items([0, 1, 2], [1, 0, 1])}
    b = {"acc/t_en": choice_items([0, 1, 3], [1, 1, 1])}
    assert paired_interval([["acc/t_en"]], [a], [b]) is None
    assert paired_interval([["acc/t_en"]], [a], [{}]) is None


def test_items_file_round_trips(tmp_path):
    items = {"ppl/en": windows([1.5, 2.5]), "acc/t_en": choice_items([2, 0, 1], [1, 0, 1])}
    save_items(tmp_path / ITEMS_FILE, items)
    back = load_items(tmp_path)
    assert back["acc/t_en"]["doc_id"].tolist() == [0, 1, 2] and back["acc/t_en"]["correct"].tolist() == [0, 1, 1]
    assert back["ppl/en"]["nll"].tolist() == [1.5, 2.5] and load_items(tmp_path / "none") is None


def write(root, name, pruner, calib, seed, nll, status="done"):
    folder = root / "sig" / name
    tokens = 127
    row = {
        "cell_id": name,
        "status": status,
        "experiment": "sig",
        "model": "testbed",
        "pruner": pruner,
        "pruner_params": "{}",
        "calib": calib,
        "calib_languages": calib,
        "calib_source": "testbed",
        "nsamples": 0 if pruner == "dense" else 64,
        "calib_seed": seed,
        "sparsity_target": 0.0 if pruner == "dense" else 0.5,
        "sparsity_pattern": "unstructured",
        "sparsity_allocation": "uniform",
        "eval_suite": "ppl",
        "seed": 0,
        "ppl/en": math.exp(sum(nll) / (tokens * len(nll))),
    }
    atomic_write_json(folder / "result.json", row)
    save_items(folder / ITEMS_FILE, {"ppl/en": windows(nll, tokens)})


def test_tables_mark_differences_whose_interval_covers_zero(tmp_path, capsys):
    rng = np.random.default_rng(6)
    base = rng.uniform(250, 350, 80)
    write(tmp_path, "dense", "dense", "-", -1, base)
    for seed in (0, 1):  # en: every window 3% worse; de: noise around dense
        write(tmp_path, f"en{seed}", "wanda", "en", seed, base * 1.03)
        write(tmp_path, f"de{seed}", "wanda", "de", seed, base * rng.normal(1.0, 0.05, 80))
    spec = {"rows": "calib", "metric": "ppl", "tables_by": ["pruner"], "baselines": ["dense"], "delta": ["dense"]}
    df = load_rows([tmp_path / "sig"])
    [table] = build_report(df, tmp_path / "out", spec, heatmaps=False, significance=True)
    md = (tmp_path / "out" / f"{table.stem}.md").read_text()
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "†" not in lines["en"] and "†" in lines["de"]  # en's +3% excludes 0; de's noise does not
    assert "[+" in md and "paired-bootstrap" in md
    assert r"$^\dagger$" in (tmp_path / "out" / f"{table.stem}.tex").read_text()
    low = (tmp_path / "out" / f"{table.stem}_delta_dense_low.csv").read_text()
    assert "en" in low
    capsys.readouterr()


def test_cells_keep_per_window_items_that_reproduce_their_perplexity(tmp_path, tiny_overrides):
    from test_cell import compose_cfg

    from mlsweep.cell.app import run_config
    from mlsweep.results.bootstrap import full_sample

    row = run_config(compose_cfg(tiny_overrides + ["pruner=wanda", "sparsity.target=0.5"]), tmp_path)
    assert row["status"] == "done", row["error"]
    items = load_items(tmp_path)
    for lang in ("aa", "bb", "cc"):
        assert len(items[f"ppl/{lang}"]["nll"]) == row[f"eval_windows/{lang}"]
        assert full_sample([[f"ppl/{lang}"]], [items]) == pytest.approx(row[f"ppl/{lang}"], rel=1e-9)
    assert (tmp_path / ITEMS_FILE).stat().st_size < 20_000
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "done"
