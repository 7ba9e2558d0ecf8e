"""A non-editable install runs from any folder: the config tree and the testbed ship inside the package."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_pip_install_then_a_sweep_from_an_unrelated_folder(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies (torch, transformers, ...) come from this environment's site-packages, read as a plain
    # path: its .pth files, among them the editable install of the checkout, are not processed there
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # built by this environment's pip and setuptools (no downloads), a wheel installed into the fresh one
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            site,
            str(REPO),
        ],
        check=True,
        cwd=tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import mlsweep; print(mlsweep.CONF_DIR)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=elsewhere,
    ).stdout.strip()
    assert Path(where).is_relative_to(Path(site)), f"mlsweep imported from {where}, not the installed copy"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(py),
            "-m",
            "mlsweep",
            "+experiment=lang_calib",
            "~hydra.sweeper.params",
            "pruner=dense,wanda",
            "sparsity.target=0.5",
            "eval.max_windows=4",
            "-m",
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(p.read_text()) for p in (elsewhere / "outputs" / "lang_calib").rglob("result.json")]
    assert sorted(r["pruner"] for r in rows) == ["dense", "wanda"] and all(r["status"] == "done" for r in rows)
