"""bench/gpu_check.py, the GPU readiness check: its CPU smoke mode runs the same code, and without CUDA
the GPU run says so and exits cleanly."""

import importlib.util
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.integration


def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cpu_smoke_run_reports_every_mode_beside_the_plan(capsys, tmp_path):
    assert gpu_check().main(["--device", "cpu", "--tiny", "--pruners", "wanda", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("tiny ")]
    assert [r[2] for r in rows] == ["memory", "offload", "stream", "spread"] and all(r[3] == "done" for r in rows)
    assert all(float(r[5]) > 0 and float(r[8]) > 0 for r in rows)  # the plan's GB and seconds beside each
    assert "4 cells, 0 failed" in out


@pytest.mark.skipif("torch" in sys.modules and sys.modules["torch"].cuda.is_available(), reason="a GPU is present")
def test_without_cuda_the_gpu_run_exits_cleanly_saying_so(capsys):
    assert gpu_check().main([]) == 0
    assert "no CUDA device" in capsys.readouterr().out
