"""Fixtures of the board-emulation tests: the committed PYNQ-Z2 bundle, its generated emulation
overlay (``.hwh`` + placeholder ``.bit``, outside the bundle) and a fresh emulated pynq device
per test.

These tests need ``pynq==4.0.0``, which pins numpy < 2: they run in ``.venv-pynq``
(``requirements/pynq.txt``). In the main environment every test module here skips at import;
this file must therefore not import pynq itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture(scope="session")
def bundle():
    from fpgarec.runtime.bundle import load_bundle

    return load_bundle(BUNDLE)


@pytest.fixture(scope="session")
def overlay(bundle, tmp_path_factory):
    """``EmulationOverlay(bit, hwh, sidecar, design)`` of the committed bundle."""
    from fpgarec.runtime.pynq_hwh import write_emulation_overlay

    return write_emulation_overlay(bundle, tmp_path_factory.mktemp("emulation_overlay"))


@pytest.fixture
def make_device(bundle):
    """``make_device(mode="ok", latency_polls=2, emulated=True)`` installs a fresh emulated
    device as pynq's active device; it is removed after the test."""
    import emulated_device

    def make(**kwargs):
        return emulated_device.install(bundle, **kwargs)

    yield make
    emulated_device.uninstall()


@pytest.fixture
def device(make_device):
    return make_device()


@pytest.fixture(scope="session")
def single_input_bundle(tmp_path_factory):
    """A copy of the committed bundle without its seen-items input: one input DMA (``idma0``),
    no ``io.seen``, a LabelSelect without ``SeenMode``, as bundles were built before
    ``--exclude-seen``."""
    import json
    import shutil

    from fpgarec.runtime.bundle import load_bundle, stamp_manifest

    root = tmp_path_factory.mktemp("single_input") / "student_w4_pynq-z2"
    shutil.copytree(BUNDLE, root)
    manifest = json.loads((root / "manifest.json").read_text())
    seen = manifest["io"].pop("seen")["name"]
    manifest["dma"]["input"] = manifest["dma"]["input"][:1]
    last = manifest["layers"][-1]
    last["attrs"].pop("SeenMode")
    last["inputs"] = [x for x in last["inputs"] if x != seen]
    manifest["model"].pop("exclude_seen", None)
    (root / "manifest.json").write_text(json.dumps(stamp_manifest(manifest), indent=2))
    return load_bundle(root)


@pytest.fixture
def built_bundle(tmp_path):
    """A copy of the committed bundle that claims a built bitstream: ``bitfile/finn-accel.bit``
    (a .bit header without the emulation marker, so no emulated device programs it) and the
    ``.hwh`` beside it, both listed in the manifest with their sha256."""
    import json
    import shutil

    from fpgarec.runtime.bundle import sha256_file, stamp_manifest
    from fpgarec.runtime.pynq_hwh import EMULATION_MARKER, bit_part, make_bit, make_hwh

    root = tmp_path / "built"
    shutil.copytree(BUNDLE, root)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "bitfile").mkdir()
    bit = make_bit("top_wrapper", bit_part(manifest["part"]))
    bit = bit.replace(f"_{EMULATION_MARKER}".encode(), b"_" + b"X" * len(EMULATION_MARKER))
    (root / "bitfile" / "finn-accel.bit").write_bytes(bit)
    (root / "bitfile" / "finn-accel.hwh").write_text(make_hwh(manifest))
    rels = ["bitfile/finn-accel.bit", "bitfile/finn-accel.hwh"]
    manifest["bitstream"] = {"built": True, "reason": "", "files": rels}
    for rel in rels:
        manifest["files"][rel] = {"bytes": (root / rel).stat().st_size, "sha256": sha256_file(root / rel)}
    (root / "manifest.json").write_text(json.dumps(stamp_manifest(manifest), indent=2))
    return root


#: built by tests/board_emu/build_bundles.py (make test runs it first, in the main environment)
WEIGHTS_BUNDLE = REPO / "build" / "board_emu" / "attention_weights"


@pytest.fixture(scope="session")
def weights_bundle():
    """The small attention design built with the weight stream: ids are meta words, a second
    output DMA ``odma1`` writes each query's K attention weights."""
    from fpgarec.runtime.bundle import load_bundle

    if not (WEIGHTS_BUNDLE / "manifest.json").is_file():
        pytest.fail(f"{WEIGHTS_BUNDLE} is missing: build it with "
                    "`.venv/bin/python tests/board_emu/build_bundles.py build/board_emu` (make test does)")
    return load_bundle(WEIGHTS_BUNDLE)
