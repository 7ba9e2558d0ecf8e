"""`logger=wandb` with the real wandb, offline: what a cell's run records, and that it never hurts the cell.

The offline run's transaction log is read back with tests/wandb_log.py (wandb
0.31 writes no wandb-summary.json offline).
"""

import json
import os
import shutil

import pytest
from hydra import compose, initialize_config_dir
from wandb_log import find_runs, read_run

import mlsweep.cell.app  # noqa: F401  (registers the schemas)
from mlsweep import CONF_DIR
from mlsweep.cell.app import run_config
from mlsweep.config import CellSpec, ConfigError
from mlsweep.tracking import redact, tracker_names
from mlsweep.tracking.wandb_run import language_table

pytestmark = pytest.mark.integration

FAKE_KEY = "mlsweeptestkey" + "0123456789abcdef" * 2 + "zz"  # 48 characters, never a real key
LABEL = "cell 1/1 pruner=wanda,sparsity.target=0.5"


def compose_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(autouse=True)
def _private_wandb(tmp_path_factory, monkeypatch):
    """No user settings, no real key, nothing written to the home folder; a fresh wandb session
    per test (wandb reads its environment once per session and ignores later changes)."""
    import wandb

    wandb.teardown()
    for var in [v for v in os.environ if v.startswith("WANDB_")]:
        monkeypatch.delenv(var)
    home = tmp_path_factory.mktemp("wandb-home")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    yield
    wandb.teardown()


def wandb_cell(tiny_overrides, *extra):
    return compose_cfg(
        tiny_overrides
        + [
            "logger=wandb",
            "logger.mode=offline",
            "logger.project=mlsweep-test",
            "pruner=wanda",
            "sparsity.target=0.5",
            *extra,
        ]
    )


def files_containing(root, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_tracker_registry_and_logger_configs_are_the_same_set():
    assert set(tracker_names()) == {p.stem for p in (CONF_DIR / "logger").glob("*.yaml")}


def test_logger_none_is_the_default():
    assert compose_cfg([]).logger.name == "none"


def test_wandb_group_defaults_to_the_experiment_name():
    cfg = compose_cfg(["logger=wandb", "name=lang_calib"])
    assert cfg.logger.group == "lang_calib" and cfg.logger.mode == "online"


@pytest.mark.parametrize(
    "override,field", [("logger.mode=onlin", "logger.mode"), ("logger.init_timeout=0", "logger.init_timeout")]
)
def test_bad_logger_settings_are_rejected_naming_the_field(tiny_overrides, override, field):
    with pytest.raises(ConfigError, match=field) as err:
        CellSpec.from_config(compose_cfg(tiny_overrides + ["logger=wandb", override]))
    if field == "logger.mode":
        assert "online, offline, disabled" in str(err.value)


def test_redact_drops_credential_keys_and_values(monkeypatch):
    cfg = {
        "logger": {"api_key": "x", "project": "p"},
        "hf_token": "t",
        "WANDB_API_KEY": "k",
        "eval_tokens": 3,
        "password": "pw",
        "note": f"key={FAKE_KEY}",
        "tags": [{"secret": 1, "a": 2}],
    }
    out = redact(cfg)
    assert out == {"logger": {"project": "p"}, "eval_tokens": 3, "note": "key=<redacted>", "tags": [{"a": 2}]}


def test_language_table_has_one_row_per_language():
    row = {
        "ppl/en": 3.0,
        "bpb/en": 1.0,
        "ppl/de": 4.0,
        "bpb/de": 1.5,
        "acc/xcopa_en": 0.6,
        "acc_lang/en": 0.6,
        "calib_count/en": 8,
        "calib_count/code": 4,
        "time/eval_s": 2.0,
        "ppl_xlsum/eng_Latn": 9.0,
    }
    columns, rows = language_table(row)
    assert columns == ["language", "acc_lang", "bpb", "calib_count", "ppl", "ppl_xlsum"]
    assert rows == [
        ["de", None, 1.5, None, 4.0, None],
        ["en", 0.6, 1.0, 8, 3.0, None],
        ["eng_Latn", None, None, None, None, 9.0],
    ]


def test_an_offline_run_records_config_history_summary_and_exit(tmp_path, tiny_overrides, capfd):
    row = run_config(wandb_cell(tiny_overrides), tmp_path, LABEL)
    assert row["status"] == "done", row["error"]
    [log] = find_runs(tmp_path / "wandb")  # default logger.dir: inside the cell's folder
    run = read_run(log)

    assert run.name == "pruner=wanda,sparsity.target=0.5" and run.group == "default" and run.job_type == "cell"
    assert run.project == "mlsweep-test"
    assert {"pruner=wanda", "model=tiny", "sparsity_target=0.5", "calib=en"} <= set(run.tags)
    for key in ("name", "seed", "model", "pruner", "calib", "sparsity", "eval", "logger", "engine", "runtime"):
        assert key in run.config, key
    assert run.config["pruner"]["name"] == "wanda" and run.config["model"]["path"] == row["config"]["model"]["path"]
    assert "${" not in json.dumps(run.config), "the config is resolved"

    blocks = [h for h in run.history if "prune/block_sparsity" in h]
    assert [h["prune/block"] for h in blocks] == list(range(len(row["sparsity_per_block"])))
    assert [h["prune/block_sparsity"] for h in blocks] == pytest.approx(row["sparsity_per_block"])
    ppl = {k: v for h in run.history for k, v in h.items() if k.startswith("ppl/")}
    assert ppl == {f"ppl/{lang}": pytest.approx(row[f"ppl/{lang}"]) for lang in ("aa", "bb", "cc")}
    first_ppl = next(i for i, h in enumerate(run.history) if "ppl/aa" in h)
    assert first_ppl > run.history.index(blocks[-1]), "logged as each stage happens"

    for key, value in row.items():
        if key != "config":
            assert run.summary[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert run.summary["results_by_language/nrows"] == 3
    assert run.exit_code == 0 and run.kinds[-1] == "exit"

    captured = capfd.readouterr()
    assert FAKE_KEY not in captured.out + captured.err
    assert files_containing(tmp_path, FAKE_KEY) == [], "the API key is in no file of the cell"


def test_streamed_pruning_logs_each_blocks_sparsity(tmp_path, tiny_overrides):
    """A streamed block leaves memory after its turn: its sparsity is counted before."""
    row = run_config(wandb_cell(tiny_overrides, "engine.stream_from_disk=true"), tmp_path, LABEL)
    assert row["status"] == "done", row["error"]
    run = read_run(*find_runs(tmp_path))
    logged = [h["prune/block_sparsity"] for h in run.history if "prune/block_sparsity" in h]
    assert logged == pytest.approx(row["sparsity_per_block"]) and len(logged) > 1


def test_two_cells_in_one_process_are_two_runs(tmp_path, tiny_overrides, text_folder):
    leaky = (
        tmp_path / "leaky"
    )  # its test split is the calibration split: the cell fails at evaluation, after its run began
    shutil.copytree(text_folder, leaky)
    shutil.copy(leaky / "aa" / "calib.jsonl", leaky / "aa" / "test.jsonl")
    done = run_config(wandb_cell(tiny_overrides), tmp_path / "a", LABEL)
    failed = run_config(wandb_cell(tiny_overrides, f"eval.source.path={leaky}"), tmp_path / "b", "cell 2/2 b")
    assert done["status"] == "done" and failed["status"] == "failed"
    [a], [b] = find_runs(tmp_path / "a"), find_runs(tmp_path / "b")
    run_a, run_b = read_run(a), read_run(b)
    assert run_a.run_id != run_b.run_id
    assert (run_a.exit_code, run_b.exit_code) == (0, 1)
    assert run_b.summary["status"] == "failed" and "calibration text" in run_b.summary["error"]
    assert run_b.name == "b"


def test_disabled_mode_writes_nothing(tmp_path, tiny_overrides):
    row = run_config(wandb_cell(tiny_overrides, "logger.mode=disabled"), tmp_path, LABEL)
    assert row["status"] == "done", row["error"]
    assert not (tmp_path / "wandb").exists() and find_runs(tmp_path) == []


def test_logger_dir_moves_the_runs(tmp_path, tiny_overrides):
    where = tmp_path / "elsewhere"
    row = run_config(wandb_cell(tiny_overrides, f"logger.dir={where}"), tmp_path / "cell", LABEL)
    assert row["status"] == "done", row["error"]
    assert len(find_runs(where)) == 1 and find_runs(tmp_path / "cell") == []


def test_an_unreachable_server_neither_blocks_nor_fails_the_cell(tmp_path, tiny_overrides, monkeypatch, capfd):
    """The online start gives up (logger.init_timeout) and the same cell is logged offline, whole."""
    import wandb

    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: connection refused
    tries = []
    real_init = wandb.init

    def init(*args, **kwargs):
        tries.append((kwargs["mode"], kwargs["settings"].init_timeout))
        return real_init(*args, **kwargs)

    monkeypatch.setattr(wandb, "init", init)
    row = run_config(
        wandb_cell(tiny_overrides, "logger.mode=online", "logger.init_timeout=3", "logger.finish_timeout=3"),
        tmp_path,
        LABEL,
    )
    assert row["status"] == "done", row["error"]
    assert tries == [("online", 3), ("offline", 3)]  # one bounded online try, then offline
    # fell back to an offline run, for `wandb sync` (beside it, the folder of the failed online attempt)
    [log] = [p for p in find_runs(tmp_path) if p.parent.name.startswith("offline-run-")]
    run = read_run(log)
    assert run.exit_code == 0 and run.summary["status"] == "done" and run.summary["cell_id"] == row["cell_id"]
    logged = [h["prune/block_sparsity"] for h in run.history if "prune/block_sparsity" in h]
    assert logged == pytest.approx(row["sparsity_per_block"])  # the whole cell, not just its end
    err = capfd.readouterr().err
    assert err.count("online start failed") == 1
    assert "127.0.0.1:9" in err and "wandb sync" in err and FAKE_KEY not in err
    assert files_containing(tmp_path, FAKE_KEY) == []


def test_a_broken_tracker_does_not_fail_the_cell(tmp_path, tiny_overrides, monkeypatch, capfd):
    import wandb

    def broken(*_args, **_kwargs):
        raise RuntimeError(f"no luck with {FAKE_KEY}")

    monkeypatch.setattr(wandb, "init", broken)
    row = run_config(wandb_cell(tiny_overrides), tmp_path, LABEL)
    assert row["status"] == "done", row["error"]
    err = capfd.readouterr().err
    assert err.count("tracker  off for this cell") == 1 and FAKE_KEY not in err


def test_a_tracker_error_mid_cell_is_printed_once_and_closes_the_run(capfd):
    from mlsweep.tracking import Guarded

    class Flaky:
        finished = []

        def log(self, metrics):
            raise ConnectionError("network down")

        def finish(self, row):
            self.finished.append(row)

    tracker = Guarded("cell 1/1 x", Flaky())
    for step in range(3):
        tracker.log({"step": step})
    tracker.finish({"status": "done"})
    assert capfd.readouterr().err.count("ConnectionError: network down") == 1
    assert Flaky.finished == [None], "closed once, as failed, when the error happened"
