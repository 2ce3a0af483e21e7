"""A bundle fuzzer: tampered copies of the committed bundle either load and answer exactly as the
original (benign variants) or are refused with one FpgarecError line naming the file; never a
traceback of another exception type, never a silent answer from a changed design.

Variants: the hostile probe's cases (issue 16), every top-level, model and layer-record key
deleted or set to a wrong type, and every parameter array truncated, re-typed, re-shaped, made
NaN, complex, string, object or given a lying header; where a variant is meant to get past the
sha256 check the manifest's file entry is re-hashed, and every manifest edit is re-stamped with
the manifest's own digest (``stamp_manifest``: a deliberate edit), so each variant reaches the
check it aims at. The digest itself is fuzzed by the ``unstamped-*`` variants: the same kinds of
hand edits without a new digest, among them the ones that would change the answers while every
other check holds (issue 16 probe 5: a threshold table cut with ``numSteps`` to match, shuffled
weights re-hashed, a layer attribute edited).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import MANIFEST, load_bundle, sha256_file, stamp_manifest
from fpgarec.runtime.bundle_schema import OPTIONAL
from fpgarec.runtime.emulation import EmulationBackend

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bitstreams" / "student_w4_pynq-z2"
WRONG = (None, "x", -1, [], {})
IDS = np.random.default_rng(16).integers(0, 1683, size=(5, 20))  # 1682: the null id


def _manifest() -> dict:
    return json.loads((BUNDLE / MANIFEST).read_text())


def _edit(fn, stamp: bool = True):
    """A variant that edits the manifest's JSON in place (and re-stamps its digest, unless
    ``stamp`` is False)."""
    def apply(root: Path):
        m = json.loads((root / MANIFEST).read_text())
        fn(m)
        if stamp and isinstance(m, dict):
            stamp_manifest(m)
        (root / MANIFEST).write_text(json.dumps(m))
    return apply


def _raw(text: str):
    def apply(root: Path):
        (root / MANIFEST).write_text(text)
    return apply


def _rehash(root: Path, rel: str, stamp: bool = True) -> None:
    m = json.loads((root / MANIFEST).read_text())
    m["files"][rel] = {"bytes": (root / rel).stat().st_size, "sha256": sha256_file(root / rel)}
    if stamp:
        stamp_manifest(m)
    (root / MANIFEST).write_text(json.dumps(m))


def _array(rel: str, fn, rehash: bool = True, stamp: bool = True, **save):
    """A variant that replaces the array ``rel`` by ``fn(original)`` (re-hashed)."""
    def apply(root: Path):
        new = fn(np.load(root / rel))
        if isinstance(new, bytes):
            (root / rel).write_bytes(new)
        else:
            np.save(root / rel, new, **save)
        if rehash:
            _rehash(root, rel, stamp)
    return apply


def _lying_header(shape):
    """The file's own data behind a header that declares ``shape``."""
    def fn(a):
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": a.dtype.str, "fortran_order": False, "shape": shape})
        return buf.getvalue() + a.tobytes()
    return fn


def _set(path: tuple, value):
    def fn(m):
        node = m
        for key in path[:-1]:
            node = node[key] if not isinstance(key, str) or not key.startswith("@") else _layer(m, key[1:])
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return _edit(fn)


_DELETE = object()


def _layer(m: dict, name: str) -> dict:
    return next(layer for layer in m["layers"] if layer["name"] == name)


def _variants() -> list[tuple[str, object, str, str | None]]:
    """(name, mutation, "ok" | "error", the file the error must name: None = manifest.json)."""
    m = _manifest()
    out = [
        ("manifest-list", _raw("[]"), "error", None),
        ("manifest-nested-200k", _raw("[" * 200_000 + "]" * 200_000), "error", None),
        ("manifest-not-json", _raw("{"), "error", None),
        ("manifest-string", _raw('"fpgarec-bundle/1"'), "error", None),
        ("files-bytes-abc", _set(("files", "weights/MVAU_rtl_0.weights.npy", "bytes"), "abc"), "error", None),
        ("files-entry-string", _set(("files", "weights/MVAU_rtl_0.weights.npy"), "abc"), "error", None),
        ("files-no-sha256", _edit(lambda m: m["files"]["weights/MVAU_rtl_0.weights.npy"].pop("sha256")),
         "error", None),
        ("files-leaves-bundle", _set(("files", "../x.npy"), {"bytes": 1, "sha256": "0" * 64}), "error", None),
        ("files-param-unlisted", _edit(lambda m: m["files"].pop("weights/MVAU_rtl_0.weights.npy")),
         "error", "weights/MVAU_rtl_0.weights.npy"),
        ("layers-dict", _set(("layers",), {"a": 1}), "error", None),
        ("layers-entry-string", _edit(lambda m: m["layers"].__setitem__(3, "x")), "error", None),
        ("model-k-0", _set(("model", "k"), 0), "error", None),
        ("model-k-19", _set(("model", "k"), 19), "error", None),
        ("model-n-items-string", _set(("model", "n_items"), "1682"), "error", None),
        ("model-n-items-bool", _set(("model", "n_items"), True), "error", None),
        ("model-top-k-5", _set(("model", "top_k"), 5), "error", None),
        ("model-null-id-1683", _set(("model", "padding", "null_id"), 1683), "error", None),
        ("model-padding-cyclic", _set(("model", "padding"), {"scheme": "cyclic"}), "error", None),
        ("model-n-labels-1700", _set(("model", "n_labels"), 1700), "error", None),
        ("design-escapes", _set(("design",), "../../evil"), "error", None),
        ("clock-nan", _raw((BUNDLE / MANIFEST).read_text().replace('"clock_mhz": 100.0', '"clock_mhz": NaN')),
         "error", None),
        ("io-seen-deleted", _edit(lambda m: m["io"].pop("seen")), "error", None),
        ("dma-one-input", _set(("dma", "input"), ["idma0"]), "error", None),
        ("thresholding-steps-3", _set(("layers", "@Thresholding_rtl_0", "attrs", "numSteps"), 3), "error",
         "weights/Thresholding_rtl_0.thresholds.npy"),
        ("labelselect-k-5", _set(("layers", "@LabelSelect_rtl_0", "attrs", "K"), 5), "error", None),
        ("mvau-mh-63", _set(("layers", "@MVAU_rtl_0", "attrs", "MH"), 63), "error", None),
        ("lookup-rows-1682", _set(("layers", "@Lookup_rtl_0", "attrs", "NumEmbeddings"), 1682), "error", None),
        ("aggregate-nullid-0", _set(("layers", "@NeighborAggregate_rtl_0", "attrs", "NullId"), 0), "error", None),
        ("aggregate-pe-7", _set(("layers", "@NeighborAggregate_rtl_0", "attrs", "PE"), 7), "error", None),
        ("fusion-input-unknown", _set(("layers", "@ModalityFusion_rtl_0", "inputs"), ["nope", "Gather_1_out0"]),
         "error", None),
        ("mvau-in-dtype-float", _set(("layers", "@MVAU_rtl_1", "in_dtype"), "FLOAT32"), "error", None),
        ("mvau-unknown-param", _set(("layers", "@MVAU_rtl_0", "params", "bias"), "weights/MVAU_rtl_0.weights.npy"),
         "error", None),
        ("op-unknown", _set(("layers", "@MVAU_rtl_0", "op"), "Conv"), "error", None),
        ("layers-reversed", _edit(lambda m: m["layers"].reverse()), "error", None),
        # benign: keys nobody computes from
        ("metrics-empty", _set(("metrics",), {}), "ok", None),
        ("layer-cycles-deleted", _set(("layers", "@MVAU_rtl_1", "cycles"), _DELETE), "ok", None),
    ]
    for key in (k for k in m if k != "manifest_sha256"):  # every top-level key deleted, then set to
        # each wrong type (the digest: the unstamped variants; a stamped edit would re-set it)
        out.append((f"delete-{key}", _set((key,), _DELETE), "ok" if key in OPTIONAL else "error", None))
        for value in WRONG:
            benign = (key in OPTIONAL or key in ("design", "board", "part")) and _right_type(key, value, m)
            out.append((f"{key}={json.dumps(value)}", _set((key,), value), "ok" if benign else "error", None))
    for key in m["model"]:
        needed = key in ("n_items", "k", "top_k", "padding", "n_labels")
        out.append((f"delete-model.{key}", _set(("model", key), _DELETE), "error" if needed else "ok", None))
    for key in ("n_items", "k", "top_k", "n_labels", "padding", "n_recent"):
        for value in WRONG:
            benign = key == "n_recent" and value is None
            out.append((f"model.{key}={json.dumps(value)}", _set(("model", key), value),
                        "ok" if benign else "error", None))
    for name in ("Thresholding_rtl_0", "LabelSelect_rtl_0", "Lookup_rtl_1"):
        layer = _layer(m, name)
        for key in layer:
            benign = key in ("impl", "cycles", "lut_floor", "param_dtypes") or (key == "params" and not layer[key])
            out.append((f"delete-{name}.{key}", _set(("layers", f"@{name}", key), _DELETE),
                        "ok" if benign else "error", None))
    out += _array_variants(m)
    out += _unstamped_variants()
    return out


def _unstamped_variants() -> list:
    """Hand edits without a new digest: all refused by the digest check, naming manifest.json;
    the first five change the answers while passing every other check (probe 5)."""
    thr, mvau = "weights/Thresholding_rtl_1.thresholds.npy", "weights/MVAU_rtl_1.weights.npy"

    def cut_steps(root: Path):
        np.save(root / thr, np.load(root / thr)[:, :3])
        _rehash(root, thr, stamp=False)
        _edit(lambda m: _layer(m, "Thresholding_rtl_1")["attrs"].update(numSteps=3), stamp=False)(root)

    def fix(m, name, key, value):
        _layer(m, name)["attrs"][key] = value

    return [
        ("unstamped-thresholds-cut-numSteps-3", cut_steps, "error", None),
        ("unstamped-weights-shuffled-rehashed",
         _array(mvau, lambda a: np.random.default_rng(0).permutation(a), stamp=False), "error", None),
        ("unstamped-aggregate-FracBits-3", _edit(lambda m: fix(m, "NeighborAggregate_rtl_0", "FracBits", 3), stamp=False),
         "error", None),
        ("unstamped-fusion-FracBits-7", _edit(lambda m: fix(m, "ModalityFusion_rtl_0", "FracBits", 7), stamp=False),
         "error", None),
        ("unstamped-thresholding-ActVal-0", _edit(lambda m: fix(m, "Thresholding_rtl_0", "ActVal", 0), stamp=False),
         "error", None),
        ("unstamped-metrics-empty", _edit(lambda m: m.update(metrics={}), stamp=False), "error", None),
        ("unstamped-digest-deleted", _edit(lambda m: m.pop("manifest_sha256"), stamp=False), "error", None),
        ("unstamped-digest-wrong", _edit(lambda m: m.update(manifest_sha256="0" * 64), stamp=False), "error", None),
    ]


def _right_type(key: str, value, m: dict) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if key == "clock_mhz":
        return isinstance(value, (int, float)) and value > 0
    return type(value) is type(m[key]) and not (key == "design" and value == "")


def _array_variants(m: dict) -> list:
    out = []
    for rel in sorted(r for r in m["files"] if r.endswith(".npy")):
        name = Path(rel).stem
        out += [
            (f"{name}:tampered", _array(rel, lambda a: np.roll(a, 1), rehash=False), "error", rel),
            (f"{name}:truncated", _array(rel, lambda a: _npy_bytes(a)[:-7]), "error", rel),
            (f"{name}:float64", _array(rel, lambda a: a.astype(np.float64)), "error", rel),
            (f"{name}:float-nan", _array(rel, lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, np.nan,
                                                                a.astype(np.float32))), "error", rel),
            (f"{name}:complex", _array(rel, lambda a: a.astype(np.complex64)), "error", rel),
            (f"{name}:unicode", _array(rel, lambda a: a.astype("U3")), "error", rel),
            (f"{name}:bytes", _array(rel, lambda a: a.astype("S3")), "error", rel),
            (f"{name}:object", _array(rel, lambda a: a.astype(object), allow_pickle=True), "error", rel),
            (f"{name}:bool", _array(rel, lambda a: a != 0), "error", rel),
            *([(f"{name}:transposed", _array(rel, lambda a: np.ascontiguousarray(a.T)), "error", rel)]
              if _rows(rel) != _cols(rel) else []),
            (f"{name}:one-row-less", _array(rel, lambda a: a[:-1] if len(a) > 1 else a[:, :-1]), "error", rel),
            (f"{name}:flat", _array(rel, lambda a: a.ravel()), "error", rel),
            (f"{name}:header-1e11", _array(rel, _lying_header((10**11, 64))), "error", rel),
            (f"{name}:header-shape-lies", _array(rel, _lying_header((_rows(rel) + 1, 3))), "error", rel),
            (f"{name}:garbage", _array(rel, lambda a: b"not an npy file at all"), "error", rel),
            (f"{name}:out-of-range", _array(rel, lambda a: np.full_like(a.astype(np.int32), 1000)), "error", rel),
            # benign: the same values in a wider integer dtype, or in Fortran order
            (f"{name}:int32", _array(rel, lambda a: a.astype(np.int32)), "ok", None),
            (f"{name}:fortran", _array(rel, lambda a: np.asfortranarray(a)), "ok", None),
        ]
    rel = "weights/Thresholding_rtl_1.thresholds.npy"
    out.append(("thresholds-1x3-for-15-steps", _array(rel, lambda a: a[:1, :3]), "error", rel))
    out.append(("thresholds-64x3-for-15-steps", _array(rel, lambda a: a[:, :3]), "error", rel))
    return out


def _rows(rel: str) -> int:
    return int(np.load(BUNDLE / rel, mmap_mode="r").shape[0])


def _cols(rel: str) -> int:
    return int(np.load(BUNDLE / rel, mmap_mode="r").shape[1])


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


VARIANTS = _variants()


@pytest.fixture(scope="module")
def reference():
    return EmulationBackend(BUNDLE).run_with_scores(IDS)


def test_enough_variants():
    assert len(VARIANTS) >= 53
    assert len({name for name, *_ in VARIANTS}) == len(VARIANTS)


@pytest.mark.parametrize(("name", "mutate", "expect", "names"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_tampered_bundle(tmp_path, reference, name, mutate, expect, names):
    root = tmp_path / "b"
    shutil.copytree(BUNDLE, root)
    mutate(root)
    try:
        top, scores = EmulationBackend(load_bundle(root)).run_with_scores(IDS)
    except FpgarecError as err:
        msg = str(err)
        assert expect == "error", f"benign variant refused: {msg}"
        assert "\n" not in msg and len(msg) < 600, msg
        assert str(root / (names or MANIFEST)) in msg, msg
        return
    assert expect == "ok", f"silent answer from a changed bundle ({name})"
    np.testing.assert_array_equal(top, reference[0])
    np.testing.assert_array_equal(scores, reference[1])
