"""The PYNQ backend's module imports where pynq is absent (this environment), and says so.

The backend itself runs in tests/board_emu on the real pynq package (.venv-pynq).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bitstreams" / "student_w4_pynq-z2"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pynq") is not None,
                                reason="checks the behaviour without pynq")


def test_import_without_pynq_and_no_board():
    import fpgarec.runtime.pynq_backend as pb

    assert "pynq" not in sys.modules
    assert pb.board_present() is False
    assert "pynq" not in sys.modules  # the failed lazy import leaves nothing behind


def test_runtime_import_pulls_in_nothing_heavy():
    code = ("import sys, fpgarec.runtime, fpgarec.runtime.pynq_backend, fpgarec.runtime.pynq_hwh; "
            "print(sorted(m for m in ('pynq', 'torch', 'finn', 'qonnx', 'brevitas', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_backend_without_pynq_is_a_one_line_user_error(tmp_path):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend
    from fpgarec.runtime.pynq_hwh import write_emulation_overlay

    ov = write_emulation_overlay(BUNDLE, tmp_path)
    with pytest.raises(FpgarecError, match="pynq package is not installed") as err:
        PynqBackend(BUNDLE, bitfile=ov.bit)
    assert "\n" not in str(err.value)
    with pytest.raises(FpgarecError, match="has no bitstream"):
        PynqBackend(BUNDLE)  # checked before pynq is needed


def test_emulation_overlay_is_labelled_and_verified(tmp_path):
    from fpgarec.runtime.bundle import load_bundle
    from fpgarec.runtime.pynq_hwh import (
        EMULATION_MARKER,
        EmulationOverlayError,
        is_emulation_bitfile,
        read_bit_header,
        verify_emulation_overlay,
        write_emulation_overlay,
    )

    bundle = load_bundle(BUNDLE)
    ov = write_emulation_overlay(bundle, tmp_path / "a")
    again = write_emulation_overlay(bundle, tmp_path / "b")
    assert ov.bit.read_bytes() == again.bit.read_bytes() and ov.hwh.read_text() == again.hwh.read_text()
    assert ov.bit.name == "student_w4_pynq-z2.emulated.bit" and is_emulation_bitfile(ov.bit)
    header = read_bit_header(ov.bit.read_bytes())
    assert EMULATION_MARKER in header["design"] and header["part"] == "7z020clg400"
    assert b"\xaa\x99\x55\x66" not in ov.bit.read_bytes()  # no sync word: no FPGA would configure
    text = ov.hwh.read_text()
    assert "GENERATED FOR EMULATION" in text and "NOT produced by Vivado" in text
    info = json.loads(ov.sidecar.read_text())
    assert info["generated_for_emulation"] and info["not_from_vivado"]
    assert verify_emulation_overlay(ov.bit, design="student_w4_pynq-z2").hwh == ov.hwh
    with pytest.raises(EmulationOverlayError, match="not 'other'"):
        verify_emulation_overlay(ov.bit, design="other")
    ov.hwh.write_text(text.replace("0x40001000", "0x40002000"))
    with pytest.raises(EmulationOverlayError, match="hwh: sha256 differs"):
        verify_emulation_overlay(ov.bit)
    with pytest.raises(EmulationOverlayError, match="never go inside the bundle"):
        write_emulation_overlay(bundle, BUNDLE / "bitfile")
    assert not (BUNDLE / "bitfile").exists()
