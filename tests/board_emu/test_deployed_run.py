"""The folder ``fpgarec deploy`` writes, run on the FPGA path: its own ``lib/`` runtime, the real
pynq 4.0.0 package and an emulated PYNQ-Z2, in a fresh interpreter of ``.venv-pynq`` (Python
and numpy as on a board image: numpy 1.x)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pynq", reason="pynq 4.0.0 lives in .venv-pynq (requirements/pynq.txt)")

HERE = Path(__file__).resolve().parent

LAUNCHER = """
import runpy, sys
deployed, here, bitfile = sys.argv[1:4]
sys.path[:0] = [deployed + "/lib", here]          # the deployed runtime first, then the emulator
import emulated_device
from fpgarec.runtime.bundle import load_bundle
emulated_device.install(load_bundle(deployed + "/bundle/student_w4_pynq-z2"))
sys.argv = [deployed + "/run.py", "--bitfile", bitfile, *sys.argv[4:]]
runpy.run_path(deployed + "/run.py", run_name="__main__")
"""


def test_deployed_run_script_drives_the_emulated_board(overlay, tmp_path):
    from fpgarec.deploy import deploy

    out = deploy(HERE.parents[1] / "bitstreams" / "student_w4_pynq-z2", "pynq-z2", tmp_path / "deploy")
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(out), str(HERE), str(overlay.bit),
         "--queries", "300", "--batch", "128", "--check", "--throughput", "--seconds", "0.3"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "pynq" and result["emulated"] is True
    assert result["bitexact_vs_emulation"] is True and result["queries"] == 300
    assert result["fclk0_mhz"] == pytest.approx(100.0)
    assert result["throughput"]["batch"] == 128 and result["throughput"]["batches"] >= 1
    assert Path(result["runtime"]).resolve() == (out / "lib" / "fpgarec").resolve()
