"""The SLURM test cluster where it cannot run: a clear skip for any user, a failure where CI requires it."""

import sys
from pathlib import Path

import pytest
from helpers import REQUIRE_SLURM_ENV, start_minislurm

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import minislurm  # noqa: E402


@pytest.fixture
def not_root(monkeypatch):
    """This process as an ordinary user on a machine without SLURM."""
    monkeypatch.setattr(minislurm.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(minislurm, "_have", lambda names: False)


def test_installing_as_an_ordinary_user_is_refused_naming_the_packages(not_root):
    with pytest.raises(minislurm.SlurmUnavailable, match=r"needs root and apt-get\): apt-get install slurm-wlm munge$"):
        minislurm.ensure_installed()


def test_the_cluster_is_skipped_with_the_reason_when_slurm_cannot_be_installed(not_root, monkeypatch, tmp_path):
    monkeypatch.delenv(REQUIRE_SLURM_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"SLURM unavailable: .*needs root.*MLSWEEP_REQUIRE_SLURM=1"):
        start_minislurm(tmp_path)
    assert not (tmp_path / "slurm.conf").exists(), "nothing was started"


def test_the_cluster_fails_instead_when_slurm_is_required(not_root, monkeypatch, tmp_path):
    monkeypatch.setenv(REQUIRE_SLURM_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"MLSWEEP_REQUIRE_SLURM=1 but SLURM is unavailable: .*needs root"):
        start_minislurm(tmp_path)


def test_installed_slurm_is_still_refused_to_an_ordinary_user(monkeypatch, tmp_path):
    """slurmd runs jobs as root here: as another user the daemons cannot start, so say so at once."""
    monkeypatch.setattr(minislurm.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(minislurm, "_have", lambda names: True)
    with pytest.raises(minislurm.SlurmUnavailable, match="run as root; this user is not root"):
        minislurm.MiniSlurm(tmp_path).up()


def test_ci_requires_the_slurm_tests():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert f"export {REQUIRE_SLURM_ENV}=1" in ci and ci.index(REQUIRE_SLURM_ENV) < ci.index("make test")
