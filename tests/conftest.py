"""Shared fixtures: offline hub settings, a tiny random Llama and a toy text folder."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from helpers import make_tiny_model, start_minislurm, write_text_folder  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "llama")


@pytest.fixture(scope="session")
def text_folder(tmp_path_factory) -> Path:
    return write_text_folder(tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="session")
def tiny_overrides(tiny_model, text_folder) -> list[str]:
    """Overrides that point a cell at the tiny model and toy text."""
    return [
        f"model.path={tiny_model}",
        "model.name=tiny",
        "model.seqlen=32",
        "model.device=cpu",
        "calib.source.name=local",
        f"calib.source.path={text_folder}",
        "calib.languages=[aa]",
        "calib.nsamples=4",
        "eval.source.name=local",
        f"eval.source.path={text_folder}",
        "eval.languages=[aa,bb,cc]",
        "eval.max_windows=8",
    ]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real slurmctld + slurmd + munged on this machine (tests/scripts/minislurm.py), once per test run.

    Installs slurm-wlm and munge when missing (root); stops the daemons it started, by PID. Where SLURM
    cannot be installed or started, every test using it is skipped with the reason (failed instead
    with MLSWEEP_REQUIRE_SLURM=1, as in CI); pytest keeps that outcome, so the attempt is made once.
    """
    cluster = start_minislurm(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(autouse=True)
def _private_calibration_cache(tmp_path_factory, monkeypatch):
    """Tests never read or fill the user's calibration cache."""
    monkeypatch.setenv("MLSWEEP_CACHE", str(tmp_path_factory.getbasetemp() / "mlsweep-cache"))
