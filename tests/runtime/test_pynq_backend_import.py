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
    code = ("import sys, fpgarec.runtime, fpgarec.runtime.pynq_backend, fpgarec.runtime.pynq_hwh, "
            "fpgarec.runtime.pynq_overlay; "
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


def test_every_dma_has_its_io_entry_and_mismatches_are_refused():
    import copy

    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.bundle import Bundle, load_bundle
    from fpgarec.runtime.pynq_backend import PynqBackend
    from fpgarec.runtime.pynq_hwh import EmulationOverlayError, dma_addresses, dma_ios, make_hwh

    bundle = load_bundle(BUNDLE)
    m = bundle.manifest
    ios = dma_ios(m)  # the committed design: ids, the seen bitmap, the top-k
    assert list(ios) == ["idma0", "idma1", "odma0"]
    assert [ios[n]["name"] for n in ios] == ["ids", "seen", "topk"]
    assert ios["idma1"]["stream_width_bits"] == 48 and ios["idma1"]["shape_packed"] == [1, 36, 6]
    assert dma_addresses(m) == {"idma0": 0x4000_0000, "idma1": 0x4000_1000, "odma0": 0x4000_2000}
    hwh = make_hwh(m)
    for name, width in (("idma0", 224), ("idma1", 48), ("odma0", 16)):
        module = hwh[hwh.index(f'INSTANCE="{name}" IPTYPE'):]
        assert f'NAME="STREAM_WIDTH_BITS" VALUE="{width}"' in module[: module.index("</MODULE>")]

    one_dma = copy.deepcopy(m)
    one_dma["dma"]["input"] = ["idma0"]  # io has "seen", the DMA list does not
    with pytest.raises(EmulationOverlayError, match=r"expected 2 input DMA\(s\) \(streaming io input, seen"):
        make_hwh(one_dma)
    with pytest.raises(ValueError, match="expected 1 input DMA"):
        no_seen = copy.deepcopy(m)
        del no_seen["io"]["seen"]
        dma_ios(no_seen)
    with pytest.raises(FpgarecError, match=r"manifest.json: dma .*expected 2 input DMA") as err:
        PynqBackend(Bundle(bundle.root, one_dma, bundle.arrays))  # checked before pynq is needed
    assert "\n" not in str(err.value)
