"""Bundles are verified on load: missing, oversized or tampered files are refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest


@pytest.fixture
def bundle_copy(small_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(small_bundle, dst)
    return dst


def _weight_file(root):
    m = json.loads((root / "manifest.json").read_text())
    return next(rel for rel in m["files"] if rel.startswith("weights/") and "MVAU" in rel)


def test_valid_bundle_loads(bundle_copy):
    from fpgarec.runtime.bundle import load_bundle

    b = load_bundle(bundle_copy)
    assert b.manifest["format"] == "fpgarec-bundle/1" and b.arrays
    assert load_bundle(bundle_copy / "manifest.json").root == bundle_copy


def test_tampered_file_is_refused_by_name(bundle_copy):
    from fpgarec.runtime.bundle import BundleError, load_bundle

    rel = _weight_file(bundle_copy)
    path = bundle_copy / rel
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="tampered") as err:
        load_bundle(bundle_copy)
    assert rel in str(err.value)


def test_missing_file_is_refused_by_name(bundle_copy):
    from fpgarec.runtime.bundle import BundleError, load_bundle

    rel = _weight_file(bundle_copy)
    (bundle_copy / rel).unlink()
    with pytest.raises(BundleError, match="missing") as err:
        load_bundle(bundle_copy)
    assert rel in str(err.value)


def test_oversized_file_is_refused_by_name(bundle_copy):
    from fpgarec.runtime.bundle import BundleError, load_bundle

    path = bundle_copy / "model" / "dataflow.onnx"
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)
    with pytest.raises(BundleError, match="larger") as err:
        load_bundle(bundle_copy)
    assert "dataflow.onnx" in str(err.value)


def test_out_of_range_parameter_is_refused_even_with_a_matching_hash(bundle_copy):
    from fpgarec.runtime.bundle import BundleError, load_bundle, sha256_file

    rel = _weight_file(bundle_copy)
    w = np.load(bundle_copy / rel)
    w.flat[0] = 100  # outside INT4
    np.save(bundle_copy / rel, w)
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m["files"][rel] = {"bytes": (bundle_copy / rel).stat().st_size, "sha256": sha256_file(bundle_copy / rel)}
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="outside") as err:
        load_bundle(bundle_copy)
    assert rel in str(err.value)


def test_not_a_bundle(tmp_path):
    from fpgarec.runtime.bundle import BundleError, load_bundle

    with pytest.raises(BundleError, match="manifest.json"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(BundleError, match="format"):
        load_bundle(tmp_path)
