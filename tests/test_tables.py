"""The results store and the four papers' tables, from small result.json files written here.

Each study's table spec is the `report:` block of its conf/experiment file, so
these tests hold the committed specs to the layouts of the papers. The rows
are made up (perplexity = a per-language base, +10% when the calibration
language differs from the evaluation language, +0.02 per seed), with a
failed cell, two seeds and a cell that never ran among them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

import pandas as pd
import pytest

from mlsweep.report import build_report, main, matrix
from mlsweep.results.cellfolder import atomic_write_json
from mlsweep.results.store import from_wandb, load_rows, write_store
from mlsweep.results.tables import build_tables, parse_spec, spec_for
from mlsweep.results.tables.render import to_latex, to_markdown

LANGS = ("en", "de", "sw")
BASE = {"en": 6.0, "de": 5.0, "sw": 3.0}
ACC = {"en": 0.9, "de": 0.7, "sw": 0.6}


def ppl(calib: str, lang: str, seed: int) -> float:
    return BASE[lang] * (1.0 if calib in (lang, "-") else 1.1) + 0.02 * max(seed, 0)


def acc(calib: str, lang: str, seed: int) -> float:
    return ACC[lang] - (0.0 if calib in (lang, "-") else 0.05) - 0.002 * max(seed, 0)


def write_cell(
    root,
    experiment,
    pruner="wanda",
    calib="en",
    sparsity=0.5,
    seed=0,
    status="done",
    allocation="uniform",
    languages=None,
    metrics=("ppl",),
    offset=0.0,
):
    dense = pruner == "dense"
    axes = {
        "experiment": experiment,
        "model": "testbed",
        "pruner": pruner,
        "pruner_params": "{}",
        "calib": "-" if dense else calib,
        "calib_languages": "-" if dense else (languages or calib),
        "calib_source": "-" if dense else "testbed",
        "nsamples": 0 if dense else 64,
        "calib_seed": -1 if dense else seed,
        "sparsity_target": 0.0 if dense else sparsity,
        "sparsity_pattern": "-" if dense else "unstructured",
        "sparsity_allocation": "-" if dense else allocation,
        "eval_suite": "ppl",
        "seed": 0,
    }
    row = {
        "cell_id": hashlib.sha1(json.dumps(axes, sort_keys=True).encode()).hexdigest()[:12],
        "status": status,
        "error": "RuntimeError: boom" if status == "failed" else None,
        **axes,
    }
    key = "monolingual" if calib in ("monolingual", "translation") else calib
    if status == "done":
        lang_of = (languages or calib) if key == "monolingual" else ("-" if dense else calib)
        if "ppl" in metrics:
            row.update({f"ppl/{lang}": ppl(lang_of, lang, seed) + offset for lang in LANGS})
        if "acc_lang" in metrics:
            row.update({f"acc_lang/{lang}": acc(lang_of, lang, seed) for lang in LANGS})
    row.update(
        {
            "sparsity_per_block": [sparsity] * 2,
            "git_sha": "abc123",
            "git_dirty": False,
            "version/torch": "2.13.0",
            "finished_at": "2026-01-01T00:00:00+00:00",
            "config": {"name": experiment, "report": {}},
        }
    )
    folder = root / experiment / "_".join(map(str, [pruner, calib, languages, sparsity, allocation, seed]))
    atomic_write_json(folder / "result.json", row)
    return row


@pytest.fixture
def sweeps(tmp_path):
    """Four sweep folders, one per study."""
    root = tmp_path / "outputs"
    both = ("ppl", "acc_lang")
    write_cell(root, "lang_calib", "dense", metrics=both)
    for seed in (0, 1):
        for calib in ("en", "de", "sw", "uniform"):
            failed = calib == "sw" and seed == 1
            write_cell(root, "lang_calib", calib=calib, seed=seed, status="failed" if failed else "done", metrics=both)
    for calib in ("en", "uniform"):  # 70%: de and sw never ran
        write_cell(root, "lang_calib", calib=calib, sparsity=0.7, metrics=both)
    write_cell(root, "mbs", "dense")
    for pruner in ("sparsegpt", "wanda"):
        for calib in ("en", "proportional", "uniform"):
            for seed in (0, 1):
                if (pruner, calib, seed) != ("sparsegpt", "uniform", 1):  # this one never ran
                    write_cell(root, "mbs", pruner, calib, seed=seed)
    write_cell(root, "translation_calib", "dense", metrics=both)
    for calib in ("monolingual", "translation"):
        for lang in ("sw", "de"):
            write_cell(
                root,
                "translation_calib",
                calib=calib,
                languages=lang,
                metrics=both,
                offset=0.05 if calib == "translation" else 0.0,
            )
    write_cell(root, "mwanda", "dense")
    for pruner in ("wanda", "mwanda"):
        for allocation in ("uniform", "cwl"):
            for sparsity in (0.5, 0.7):
                for seed in (0, 1):
                    offset = (0.1 if pruner == "mwanda" else 0) + (0.2 if allocation == "cwl" else 0)
                    write_cell(root, "mwanda", pruner, "uniform", sparsity, seed, allocation=allocation, offset=offset)
    return root


def tables_of(root, experiment):
    df = load_rows([root / experiment])
    return {(t.metric, *t.key.values()): t for t in build_tables(df, spec_for(experiment))}


def test_store_one_row_per_cell_with_provenance_parquet_and_csv(sweeps, tmp_path):
    df = load_rows([sweeps / "lang_calib", sweeps / "mbs"])
    assert len(df) == 1 + 8 + 2 + 1 + 11 and df["cell_id"].is_unique
    assert "config" not in df.columns
    for col in ("cell_id", "git_sha", "version/torch", "path", "model", "pruner", "calib", "ppl/en"):
        assert col in df.columns
    assert df["sparsity_per_block"].str.startswith("[").all()  # lists kept as JSON text
    parquet, csv = write_store(df, tmp_path / "store")
    back = pd.read_parquet(parquet)
    assert back.shape == df.shape and list(back.columns) == list(df.columns)
    assert pd.read_csv(csv).shape == df.shape
    # the same cell found in two folders counts once
    twice = load_rows([sweeps / "mbs", sweeps / "mbs"])
    assert len(twice) == 12


def test_kurz_matrix_per_model_pruner_sparsity(sweeps):
    tables = tables_of(sweeps, "lang_calib")
    assert set(tables) == {(m, "testbed", "wanda", s) for m in ("ppl", "acc_lang") for s in (0.5, 0.7)}
    t = tables[("ppl", "testbed", "wanda", 0.5)]
    assert list(t.mean.index) == ["dense", "en", "de", "sw", "uniform"]  # languages in column order, then mixes
    assert list(t.mean.columns) == list(LANGS)
    assert t.mean.at["en", "de"] == pytest.approx(5.5 + 0.01)  # mean of seeds 0 and 1
    assert t.sd.at["en", "de"] == pytest.approx(math.sqrt(0.02**2 / 2))
    assert t.n["en"] == 2 and t.n["dense"] == 1
    assert (t.status.loc["sw"] == "failed").all()  # seed 1 failed: the row is failed, not seed 0 alone
    assert t.best().at["de", "de"] and t.best().at["en", "en"] and not t.best().loc["dense"].any()
    assert t.delta("dense").at["en", "de"] == pytest.approx((5.51 / 5.0 - 1) * 100)
    assert t.delta("calib=en").at["de", "de"] == pytest.approx((5.01 / 5.51 - 1) * 100)
    assert t.delta("calib=en").loc["en"].tolist() == pytest.approx([0, 0, 0])
    assert math.isnan(t.delta("calib=en").at["sw", "en"])
    t7 = tables[("ppl", "testbed", "wanda", 0.7)]
    assert list(t7.mean.index) == ["dense", "en", "de", "sw", "uniform"]
    assert (t7.status.loc[["de", "sw"]] == "missing").all().all()  # never ran: shown, not dropped
    a = tables[("acc_lang", "testbed", "wanda", 0.5)]
    assert a.higher_is_better and a.best().at["en", "en"] and a.mean.at["en", "en"] == pytest.approx(0.899)
    md = to_markdown(t, deltas=["dense"])
    assert "| en | **6.01 ± 0.01** |" in md and "| sw | failed | failed | failed |" in md
    # the compatibility view of the default spec
    cells = matrix(load_rows([sweeps / "lang_calib"]))[("testbed", "wanda", 0.7)]
    assert cells.at["de", "en"] == "missing" and isinstance(cells.at["en", "en"], float)


def test_mbs_rows_method_by_calibration_with_average(sweeps):
    tables = tables_of(sweeps, "mbs")
    assert list(tables) == [("ppl", "testbed", 0.5)]
    t = tables[("ppl", "testbed", 0.5)]
    assert list(t.mean.index) == ["dense"] + [
        f"{p}, {c}" for p in ("Wanda", "SparseGPT") for c in ("English-only", "proportional (MBS)", "uniform")
    ]
    assert list(t.mean.columns) == [*LANGS, "avg"]
    en_row = [ppl("en", lang, 0) + 0.01 for lang in LANGS]
    assert t.mean.loc["Wanda, English-only"].tolist() == pytest.approx(en_row + [sum(en_row) / 3])
    assert t.mean.at["dense", "avg"] == pytest.approx(sum(BASE.values()) / 3)
    assert t.n["SparseGPT, uniform"] == 1 and t.notes == [
        "fewer seeds than the other rows: SparseGPT, uniform (1 of 2)"
    ]
    assert "*fewer seeds than the other rows: SparseGPT, uniform (1 of 2)*" in to_markdown(t)
    delta = t.delta("calib=en")  # vs the same pruner's English-only row
    assert delta.at["SparseGPT, uniform", "de"] == pytest.approx((5.5 / 5.51 - 1) * 100)  # seed 0 only
    assert delta.at["Wanda, English-only", "avg"] == pytest.approx(0)


def test_kim_rows_dense_monolingual_translation_non_english_average(sweeps):
    tables = tables_of(sweeps, "translation_calib")
    assert set(tables) == {(m, "testbed", "wanda", 0.5, lang) for m in ("acc_lang", "ppl") for lang in ("de", "sw")}
    t = tables[("acc_lang", "testbed", "wanda", 0.5, "sw")]
    assert list(t.mean.index) == ["dense", "monolingual", "translation"]
    assert list(t.mean.columns) == [*LANGS, "avg non-en"]
    assert t.mean.at["monolingual", "avg non-en"] == pytest.approx((acc("sw", "de", 0) + acc("sw", "sw", 0)) / 2)
    assert t.delta("dense").at["monolingual", "en"] == pytest.approx((0.85 / 0.9 - 1) * 100)
    assert t.sd.isna().all().all()  # one seed: no sd, and the text shows none
    assert "±" not in to_markdown(t)


def test_mwanda_one_table_per_sparsity_rows_method_and_allocation(sweeps):
    tables = tables_of(sweeps, "mwanda")
    assert set(tables) == {("ppl", "testbed", 0.5), ("ppl", "testbed", 0.7)}
    t = tables[("ppl", "testbed", 0.7)]
    assert list(t.mean.index) == ["dense", "Wanda, uniform", "Wanda, CWL", "M-Wanda, uniform", "M-Wanda, CWL"]
    assert list(t.mean.columns) == [*LANGS, "avg"]
    assert (t.n.iloc[1:] == 2).all()
    assert t.mean.at["M-Wanda, CWL", "avg"] == pytest.approx(sum(ppl("uniform", lang, 0) + 0.31 for lang in LANGS) / 3)
    assert t.best().loc["Wanda, uniform"].all() and t.best().sum().sum() == len(t.mean.columns)


def _latex_rows(tex: str) -> list[str]:
    body = tex.split(r"\toprule", 1)[1].split(r"\bottomrule", 1)[0]
    return [line for line in body.splitlines() if line.endswith(r"\\")]


def test_latex_is_booktabs_balanced_and_escaped(sweeps):
    for experiment in ("lang_calib", "mbs", "translation_calib", "mwanda"):
        for t in tables_of(sweeps, experiment).values():
            tex = to_latex(t)
            unescaped = re.sub(r"\\[{}]", "", tex)
            assert unescaped.count("{") == unescaped.count("}"), tex
            depth = 0
            for ch in unescaped:
                depth += {"{": 1, "}": -1}.get(ch, 0)
                assert depth >= 0
            for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{tabular}"):
                assert rule in tex
            rows = _latex_rows(tex)
            assert len(rows) == len(t.mean.index) + 1
            assert {len(re.findall(r"(?<!\\)&", r)) for r in rows} == {len(t.mean.columns)}
            assert not re.search(r"(?<!\\)[_%]", tex), tex  # sparsity_target, acc_lang, percent signs
            assert r"\textbf{" in tex
    t = tables_of(sweeps, "lang_calib")[("ppl", "testbed", "wanda", 0.5)]
    tex = to_latex(t)
    assert r"\textit{failed}" in tex and r"\textbf{6.01}{\scriptsize$\pm$0.01}" in tex


def test_report_writes_every_format_and_a_readable_heatmap_per_table(sweeps, tmp_path, capsys):
    from matplotlib.image import imread

    df = load_rows([sweeps])
    out = tmp_path / "report"
    tables = build_report(df, out)
    assert len(tables) == 4 + 1 + 4 + 2
    for t in tables:
        folder = out / t.title.split(",")[0]  # several experiments: one folder each
        for suffix in (".md", ".csv", "_sd.csv", ".tex", ".png"):
            assert (folder / f"{t.stem}{suffix}").is_file(), (folder, t.stem, suffix)
        image = imread(folder / f"{t.stem}.png")
        assert image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[0] > 100 and image.shape[1] > 200
    assert (out / "lang_calib" / "ppl_testbed_wanda_s0.5_delta_calib-en.csv").is_file()
    assert (out / "results.parquet").is_file() and (out / "tables.tex").is_file()
    printed = capsys.readouterr().out
    assert "### lang_calib, ppl: model=testbed pruner=wanda sparsity_target=0.5" in printed


def test_cli_on_one_folder(sweeps, capsys):
    main([str(sweeps / "mwanda"), "--no-heatmap"])
    printed = capsys.readouterr().out
    assert "17 cells: 17 done" in printed and "M-Wanda, CWL" in printed
    assert (sweeps / "mwanda" / "report" / "ppl_testbed_s0.7.md").is_file()
    assert not (sweeps / "mwanda" / "report" / "ppl_testbed_s0.7.png").exists()


class FakeRun:
    def __init__(self, row: dict, state: str = "finished"):
        row = dict(row)
        row.pop("config")
        axes = ("model", "pruner", "calib", "calib_languages", "calib_seed", "sparsity_target", "experiment")
        self.config = {k: {"value": row[k], "desc": None} for k in axes}  # the stored form, values wrapped
        self.summary_metrics = {k: v for k, v in row.items() if k not in ("calib_languages", "calib_seed")}
        self.summary_metrics.update(
            {"_step": 0, "_runtime": 3.2, "results_by_language": {"_type": "table-file", "path": "media/t.json"}}
        )
        self.state, self.id, self.url = state, row["cell_id"], f"https://wandb.example/runs/{row['cell_id']}"


class FakeApi:
    def __init__(self, runs):
        self._runs, self.calls = runs, []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return self._runs


def test_wandb_store_gives_the_same_tables(sweeps):
    """No W&B server is reachable here: a fake Api object, passed in, stands for wandb.Api()."""
    rows = [json.loads(p.read_text()) for p in sorted((sweeps / "lang_calib").rglob("result.json"))]
    runs = [FakeRun(r) for r in rows]
    crashed = dict(rows[0], cell_id="crashed0", status=None)
    crashed.pop("status")
    runs.append(FakeRun({k: v for k, v in crashed.items() if not k.startswith("ppl/")}, state="crashed"))
    api = FakeApi(runs)
    df = from_wandb("ent/proj", "lang_calib", api=api)
    assert api.calls == [("ent/proj", {"group": "lang_calib"})]
    assert len(df) == len(rows) + 1 and "wandb_run" in df.columns
    assert "_step" not in df.columns and "results_by_language" not in df.columns
    assert df.set_index("cell_id").at["crashed0", "status"] == "failed"
    assert df["path"].str.startswith("https://wandb.example/").all()
    disk = load_rows([sweeps / "lang_calib"])
    spec = spec_for("lang_calib")
    ours = {(t.metric, *t.key.values()): t for t in build_tables(disk, spec)}
    theirs = {(t.metric, *t.key.values()): t for t in build_tables(df[df["cell_id"] != "crashed0"], spec)}
    assert set(ours) == set(theirs)
    for key, t in ours.items():
        pd.testing.assert_frame_equal(t.mean, theirs[key].mean)
        pd.testing.assert_frame_equal(t.status, theirs[key].status)


def test_spec_errors_name_the_field():
    with pytest.raises(ValueError, match="Did you mean 'tables_by'"):
        parse_spec({"rows": "calib", "table_by": ["model"]})
    with pytest.raises(ValueError, match="report.delta"):
        parse_spec({"rows": "calib", "baselines": ["dense"], "delta": ["magnitude"]})
    with pytest.raises(ValueError, match="not columns of the results"):
        build_tables(pd.DataFrame({"status": ["done"], "ppl/en": [1.0]}), parse_spec({"rows": "calib"}))


def test_every_experiment_file_has_a_valid_table_spec():
    from mlsweep import CONF_DIR
    from mlsweep.results.tables.spec import experiment_block

    names = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
    assert {"lang_calib", "mbs", "translation_calib", "mwanda"} <= set(names)
    for name in names:
        spec = parse_spec(experiment_block(name))
        assert spec.rows and spec.metrics, name
