"""Malformed configurations, each refused before any weight loads, with the field named.

Every case composes a real cell config (the tiny model and toy text of conftest.py plus the case's
overrides) and runs it through the cell entrypoint, as `python -m mlsweep` does: the row must be
`failed`, the error must name the field (and what is allowed where there is a closed set), and no
model load may have started (no `time/load_s`). A few cases also go through the command line, for
the exit code, and through a sweep, which must stop before its first cell ("nothing was run").
Cases that need a broken file on disk build it in `setup`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cell import compose_cfg

from mlsweep.cell.app import run_config

# (id, overrides, text the error must contain)
CASES = [
    ("target-1", "sparsity.target=1.0", "sparsity.target"),
    ("target-negative", "sparsity.target=-0.2", "sparsity.target"),
    ("pattern-mismatch", "sparsity.pattern=2:4 sparsity.target=0.6", "does not match sparsity.pattern='2:4'"),
    ("pattern-n-over-m", "sparsity.pattern=5:4", "sparsity.pattern='5:4': N:M needs 0 < N < M"),
    ("pattern-text", "sparsity.pattern=half", "sparsity.pattern='half': allowed values are 'unstructured' or 'N:M'"),
    ("tolerance-negative", "sparsity.tolerance=-0.1", "sparsity.tolerance"),
    ("owl-lambda-negative", "sparsity.allocation=owl sparsity.owl_lambda=-0.1", "sparsity.owl_lambda"),
    ("cwl-direction", "sparsity.allocation=cwl sparsity.cwl_direction=sideways", "sparsity.cwl_direction"),
    ("nsamples-0", "calib.nsamples=0", "calib.nsamples"),
    ("nsamples-huge", "calib.nsamples=100000", "calib.nsamples=100000: more windows of calib.seqlen=32"),
    (
        "prompts-beyond-text",
        "calib=monolingual calib.source.name=local calib.split=calib calib.languages=[aa] calib.nsamples=8",
        "calib.nsamples=8: aa gets 8 prompts of calib.shots=4",
    ),
    ("shots-0", "calib.shots=0", "calib.shots=0: must be a positive number"),
    ("shots-negative", "calib.shots=-1", "calib.shots=-1: must be a positive number"),
    ("fewer-windows-than-languages", "calib.languages=[aa,bb,cc] calib.nsamples=2", "calib.nsamples=2: fewer windows"),
    ("calib-language-unknown", "calib.languages=[xx]", "calib.languages"),
    ("calib-language-twice", "calib.languages=[sw,swh]", "calib.languages: 'sw' and 'swh' name the same language"),
    ("eval-language-twice", "eval.languages=[de,deu_Latn]", "eval.languages: 'de' and 'deu_Latn' name the same"),
    ("calib-split-missing", "calib.split=validation", "calib.split"),
    ("calib-seqlen-beyond-context", "calib.seqlen=4096", "calib.seqlen=4096"),
    ("weights-negative", "calib.mix=weights ++calib.weights={aa:-1.0}", "calib.weights"),
    ("weights-all-zero", "calib.mix=weights ++calib.weights={aa:0.0}", "calib.weights"),
    ("eval-language-unknown", "eval.languages=[aa,zz]", "eval.languages"),
    ("eval-split-missing", "eval.split=dev", "eval.split"),
    ("eval-seqlen-beyond-context", "eval.seqlen=4096", "eval.seqlen=4096"),
    ("max-windows-0", "eval.max_windows=0", "eval.max_windows=0"),
    ("max-windows-negative", "eval.max_windows=-2", "eval.max_windows=-2"),
    ("limit-negative", "eval.limit=-1", "eval.limit=-1"),
    ("limit-0", "eval.limit=0", "eval.limit=0"),
    ("include-folder-missing", "eval.include_paths=[/nonexistent/tasks]", "eval.include_paths[0]='/nonexistent/tasks'"),
    ("task-unknown", "eval.tasks=[no_such_task_anywhere]", "no_such_task_anywhere"),
    ("max-length-beyond-context", "eval.max_length=100", "eval.max_length=100"),
    ("chat-template-missing", "eval.apply_chat_template=true", "eval.apply_chat_template=true"),
    ("batch-size-0", "eval.batch_size=0", "eval.batch_size"),
    ("model-seqlen-1", "model.seqlen=1", "model.seqlen=1"),
    ("model-seqlen-beyond-context", "model.seqlen=4096", "model.seqlen"),
    ("model-path-missing", "model.path=/nonexistent/model", "model.path"),
    ("device-unknown", "model.device=gpu", "model.device='gpu': allowed values are auto, cpu, cuda"),
    ("exclude-without-reason", "++model.exclude={lm_head:''}", "model.exclude.lm_head: give the reason"),
    ("unknown-key-sparsity", "++sparsity.targt=0.7", "sparsity.targt"),
    ("unknown-key-engine", "++engine.foo=1", "engine.foo"),
    ("unknown-key-top", "++targt=0.7", "targt"),
    ("unknown-key-calib", "++calib.nsample=8", "calib.nsample"),
    ("engine-batch-0", "engine.calib_batch_size=0", "engine.calib_batch_size"),
    ("threads-negative", "runtime.threads=-1", "runtime.threads"),
    ("mwanda-gamma-negative", "pruner=mwanda pruner.gamma=-1", "pruner.gamma"),
    ("logger-mode", "logger=wandb logger.mode=sometimes", "logger.mode"),
]


# Values outside a closed set (an enum of the schema, a registry) fail when Hydra composes the config.
COMPOSE_CASES = [
    ("dtype", "model.dtype=float8", "float32, float16, bfloat16"),
    ("device-map", "model.device_map=everywhere", "auto, balanced, balanced_low_0, sequential"),
    ("allocation", "sparsity.allocation=owll", "cwl, owl, uniform"),
    ("mix", "calib.mix=propotional", "proportional"),
    ("format", "calib.format=translate", "translation"),
    ("propagation", "engine.propagation=sideways", "sequential, dense"),
    ("source", "calib.source.name=mc5", "mc4"),
    ("target-type", "sparsity.target=half", "sparsity.target"),
    ("seqlen-type", "model.seqlen=long", "model.seqlen"),
]


@pytest.mark.parametrize("overrides, allowed", [c[1:] for c in COMPOSE_CASES], ids=[c[0] for c in COMPOSE_CASES])
def test_a_value_outside_its_closed_set_fails_when_composed(tiny_overrides, overrides, allowed):
    with pytest.raises(Exception) as err:
        compose_cfg(tiny_overrides + overrides.split())
    text = f"{err.value} {err.value.__cause__}"
    assert overrides.split("=")[1] in text and allowed in text, text


@pytest.mark.parametrize("overrides, field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_malformed_config_is_refused_before_any_weight_loads(tmp_path, tiny_overrides, overrides, field):
    cfg = compose_cfg(tiny_overrides + overrides.split())
    row = run_config(cfg, tmp_path)
    assert row["status"] == "failed", f"{overrides} ran: {row.get('status')}"
    assert field in row["error"], row["error"]
    assert "time/load_s" not in row, "the model must not be loaded for a config error"
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"


def _copy_text(text_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "text"
    shutil.copytree(text_folder, folder)
    return folder


def _blank_split(folder: Path) -> tuple[list[str], str]:
    (folder / "bb" / "test.jsonl").write_text("\n  \n\n")
    return [f"eval.source.path={folder}"], "test.jsonl"


def _no_text_field(folder: Path) -> tuple[list[str], str]:
    (folder / "aa" / "calib.jsonl").write_text('{"body": "a document without the text field"}\n')
    return [f"calib.source.path={folder}"], "calib.jsonl"


FILE_CASES = {"blank-split": _blank_split, "jsonl-without-text": _no_text_field}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_a_broken_text_file_is_named_before_any_weight_loads(tmp_path, tiny_overrides, text_folder, case):
    overrides, named = FILE_CASES[case](_copy_text(text_folder, tmp_path))
    keep = [o for o in tiny_overrides if o.split("=")[0] not in {x.split("=")[0] for x in overrides}]
    row = run_config(compose_cfg(keep + overrides), tmp_path / "cell")
    assert row["status"] == "failed" and "time/load_s" not in row
    assert named in row["error"], row["error"]


def test_a_truncated_weights_file_is_named_before_loading(tmp_path, tiny_overrides, tiny_model):
    broken = tmp_path / "model"
    shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    keep = [o for o in tiny_overrides if not o.startswith("model.path=")]
    row = run_config(compose_cfg(keep + [f"model.path={broken}"]), tmp_path / "cell")
    assert row["status"] == "failed" and "time/load_s" not in row
    assert "model.safetensors" in row["error"], row["error"]


def mlsweep(cwd, *args):
    return subprocess.run([sys.executable, "-m", "mlsweep", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.integration
def test_the_command_line_exits_non_zero_naming_the_field(tmp_path, tiny_overrides):
    one = mlsweep(tmp_path, *tiny_overrides, "sparsity.tolerance=-0.1")
    assert one.returncode == 1 and "sparsity.tolerance" in one.stderr, one.stderr[-2000:]
    sweep = mlsweep(tmp_path, *tiny_overrides, "name=bad", "sparsity.target=0.5,1.5", "-m")
    assert sweep.returncode == 2 and "sparsity.target" in sweep.stderr and "nothing was run" in sweep.stderr
    assert not (tmp_path / "outputs" / "bad").exists(), "a bad grid point stops the sweep before any cell"
