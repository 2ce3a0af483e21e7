"""Bundles: a compiled design as a folder with ``manifest.json``, read with numpy alone.

Layout (``bitstreams/<design>/``)::

    manifest.json          what is in the bundle (below)
    weights/*.npy          tables, weight matrices, thresholds (integer arrays, no pickles)
    model/dataflow.onnx    FINN's HW-layer graph the weights came from
    reports/*.json         FINN's estimates, the folding, our report
    bitfile/*.bit, *.hwh   only where Vivado built them

``manifest.json`` keys: ``format``, ``design``, ``board``, ``part``, ``clock_mhz``, ``model``
(sizes, score scale, tie rule), ``metrics``, ``folding``, ``io`` (input/output name, datatype,
shapes normal/folded/packed), ``dma`` (names of the DMA engines), ``layers`` (the HW layers in
stream order: op, attributes, parameter files), ``estimates``, ``bitstream`` (built or not, why)
and ``files``: every file with its byte size and sha256.

Loading refuses, with a message naming the file: a listed file that is missing, larger than
listed (or than :data:`MAX_FILE_BYTES`), or whose sha256 differs; a ``.npy`` that needs pickle;
a parameter outside its declared datatype's range.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

#: manifest format tag
FORMAT = "fpgarec-bundle/1"
MANIFEST = "manifest.json"
#: no file of a bundle may be larger than this (a guard against swapped-in huge files)
MAX_FILE_BYTES = 256 * 2**20


class BundleError(FpgarecError):
    """A bundle failed its checks. The message names the offending file."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# FINN datatype names -> (min, max) for the integer types a bundle uses
def datatype_range(name: str) -> tuple[int, int]:
    """Value range of a FINN/qonnx integer datatype name (``INT4``, ``UINT11``, ``BIPOLAR``)."""
    if name == "BIPOLAR":
        return -1, 1
    if name == "BINARY":
        return 0, 1
    if name.startswith("UINT"):
        return 0, 2 ** int(name[4:]) - 1
    if name.startswith("INT"):
        b = int(name[3:])
        return -(2 ** (b - 1)), 2 ** (b - 1) - 1
    raise BundleError(f"unsupported datatype {name}")


@dataclass
class Bundle:
    """A verified bundle: its folder, manifest and parameter arrays (by manifest path)."""

    root: Path
    manifest: dict
    arrays: dict[str, np.ndarray]

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    def array(self, rel: str) -> np.ndarray:
        return self.arrays[rel]

    @property
    def bitstream_built(self) -> bool:
        return bool(self.manifest.get("bitstream", {}).get("built"))

    @property
    def null_id(self) -> int | None:
        """The id of an empty neighbour slot (null padding), None for cyclic padding."""
        padding = self.manifest["model"].get("padding") or {}
        return int(padding["null_id"]) if padding.get("scheme") == "null" else None

    @property
    def max_id(self) -> int:
        """The largest id a query may carry: the null id, or the last item."""
        n = int(self.manifest["model"]["n_items"])
        return n if self.null_id is not None else n - 1

    def check_ids(self, ids) -> np.ndarray:
        """A query batch as a (B, K) integer array, or ValueError naming what is wrong.
        Shapes: (K,) or (B, K) -> (B, K)."""
        k = int(self.manifest["model"]["k"])
        ids = np.asarray(ids)
        if ids.ndim == 1:
            ids = ids[None, :]
        if ids.ndim != 2 or ids.shape[1] != k:
            raise ValueError(f"ids must have shape (B, {k}), got {ids.shape}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers, got {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() > self.max_id):
            null = f" ({self.max_id} = the null id of an empty slot)" if self.null_id is not None else ""
            raise ValueError(f"ids must lie in [0, {self.max_id}]{null}")
        return ids


def verify_files(root: Path, manifest: dict, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Check every file listed in the manifest: present, expected size, sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{root / MANIFEST}: no 'files' table")
    for rel, info in files.items():
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise BundleError(f"{root / MANIFEST}: file entry {rel!r} leaves the bundle")
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle")
        size = path.stat().st_size
        if size > max_bytes or size > int(info["bytes"]):
            raise BundleError(f"{path}: {size} bytes, larger than the {int(info['bytes'])} listed in the manifest")
        if size != int(info["bytes"]):
            raise BundleError(f"{path}: {size} bytes, the manifest lists {int(info['bytes'])} (tampered)")
        if sha256_file(path) != info["sha256"]:
            raise BundleError(f"{path}: sha256 differs from the manifest (tampered)")


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise BundleError(f"{path}: not a plain .npy array ({exc})") from exc


def load_bundle(root: Path | str) -> Bundle:
    """Read and verify the bundle in folder ``root`` (or its ``manifest.json``)."""
    root = Path(root)
    if root.name == MANIFEST:
        root = root.parent
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{mpath}: missing (not a bundle folder)")
    if mpath.stat().st_size > 16 * 2**20:
        raise BundleError(f"{mpath}: larger than 16 MiB")
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{mpath}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    verify_files(root, manifest)
    arrays: dict[str, np.ndarray] = {}
    for layer in manifest.get("layers", []):
        for key, rel in layer.get("params", {}).items():
            if rel not in manifest["files"]:
                raise BundleError(f"{root / rel}: parameter {key} of layer {layer['name']} is not listed in the manifest")
            arr = _load_array(root / rel)
            dt = layer.get("param_dtypes", {}).get(key)
            if dt and arr.size and np.issubdtype(arr.dtype, np.integer):
                lo, hi = datatype_range(dt)
                if arr.min() < lo or arr.max() > hi:
                    raise BundleError(f"{root / rel}: values outside {dt} (tampered)")
            arrays[rel] = arr
    return Bundle(root, manifest, arrays)
