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

Loading refuses, with one line naming the file: a manifest that is not a JSON object of the
expected keys and types, or whose model or layer records do not fit together
(:mod:`fpgarec.runtime.bundle_schema`); a listed file that is missing, larger than listed (or
than :data:`MAX_FILE_BYTES`), or whose sha256 differs; a ``.npy`` whose header's shape, dtype or
byte size differs from what its layer record says (checked before the data is read), that needs
pickle, or whose values lie outside its declared datatype's range or are not finite; and, last,
a manifest that differs from its own digest ``manifest_sha256`` (the sha256 of its canonical
JSON, ``sort_keys`` and no spaces, without that key; :func:`manifest_digest`). The files' sha256
guard the weights, the digest guards the manifest: a hand edit of a layer's attributes, or of a
file's listed sha256 after changing the file, is refused instead of answering differently. A
deliberate edit is re-stamped with :func:`stamp_manifest`.

Nothing that reads a bundle writes into it; the commands that do (the builder, ``fpgarec sim
--record``) write with :func:`write_text_safely` (a temporary file and ``os.replace``, never
through a symlink).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle_schema import (
    SchemaError,
    check_manifest,
    check_npy_header,
    check_values,
    datatype_bounds,
    expected_params,
    is_integer_datatype,
)

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


def datatype_range(name: str) -> tuple[int, int]:
    """Value range of a FINN/qonnx integer datatype name (``INT4``, ``UINT11``, ``BIPOLAR``)."""
    try:
        return datatype_bounds(name, "datatype")
    except SchemaError as exc:
        raise BundleError(str(exc)) from exc


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

    def item_ids(self, ids: np.ndarray) -> np.ndarray:
        """The item id of every slot of a query batch: ``ids`` itself, or an attention design's
        meta words' id field (``words & (2^id_bits - 1)``). Same shape, int64."""
        ids = np.asarray(ids, dtype=np.int64)
        agg = self.attention
        return ids if agg is None else ids & ((1 << int(agg["id_bits"])) - 1)

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
        agg = self.attention
        if agg is not None:
            return self._check_words(ids, agg)
        if ids.size and (ids.min() < 0 or ids.max() > self.max_id):
            null = f" ({self.max_id} = the null id of an empty slot)" if self.null_id is not None else ""
            raise ValueError(f"ids must lie in [0, {self.max_id}]{null}")
        return ids

    @property
    def attention(self) -> dict | None:
        """The model's ``aggregation`` record when the design is an attention design (its input
        is one meta word per slot, id | type << id_bits | bucket << (id_bits + type_bits)), else None."""
        agg = self.manifest["model"].get("aggregation")
        return agg if isinstance(agg, dict) and agg.get("mode") == "attention" else None

    def _check_words(self, words: np.ndarray, agg: dict) -> np.ndarray:
        """An attention design's meta words: every field inside its range (ids 0..max_id,
        types < n_types, buckets < n_buckets), nothing above the top field."""
        ib, tb, bb = (int(agg[f]) for f in ("id_bits", "type_bits", "bucket_bits"))
        if words.size and (words.min() < 0 or words.max() >= 1 << (ib + tb + bb)):
            raise ValueError(f"meta words must lie in [0, 2^{ib + tb + bb})")
        fields = ((words & ((1 << ib) - 1), self.max_id + 1, "ids"),
                  ((words >> ib) & ((1 << tb) - 1), int(agg["n_types"]), "behaviour types"),
                  (words >> (ib + tb), int(agg["n_buckets"]), "recency buckets"))
        for values, limit, what in fields:
            if values.size and values.max() >= limit:
                raise ValueError(f"meta words: {what} must lie in [0, {limit - 1}]")
        return words


def verify_files(root: Path, manifest: dict, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Check every file listed in the manifest: inside the bundle, present, expected size, sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{root / MANIFEST}: no 'files' table")
    for rel, info in files.items():
        path = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise BundleError(f"{root / MANIFEST}: file entry {rel!r} leaves the bundle")
        if not path.is_file():
            raise BundleError(f"{path}: missing from the bundle")
        size, listed = path.stat().st_size, info["bytes"]
        if size > max_bytes or size > listed:
            raise BundleError(f"{path}: {size} bytes, larger than the {listed} listed in the manifest")
        if size != listed:
            raise BundleError(f"{path}: {size} bytes, the manifest lists {listed} (tampered)")
        if sha256_file(path) != info["sha256"]:
            raise BundleError(f"{path}: sha256 differs from the manifest (tampered)")


def _read_manifest(mpath: Path) -> dict:
    """The manifest's JSON, its keys and types checked (:mod:`fpgarec.runtime.bundle_schema`)."""
    if not mpath.is_file():
        raise BundleError(f"{mpath}: missing (not a bundle folder)")
    if mpath.stat().st_size > 16 * 2**20:
        raise BundleError(f"{mpath}: larger than 16 MiB")
    try:
        manifest = json.loads(mpath.read_bytes())
    except RecursionError as exc:
        raise BundleError(f"{mpath}: not valid JSON (nested too deeply)") from exc
    except ValueError as exc:
        raise BundleError(f"{mpath}: not valid JSON ({_one_line(exc)})") from exc
    if isinstance(manifest, dict) and manifest.get("format") != FORMAT:
        raise BundleError(f"{mpath}: format {_one_line(manifest.get('format'))}, expected {FORMAT!r}")
    try:
        check_manifest(manifest)
    except SchemaError as exc:
        raise BundleError(f"{mpath}: {_one_line(exc)}") from exc
    return manifest


def _one_line(value) -> str:
    text = value if isinstance(value, str) else (str(value) if isinstance(value, Exception) else repr(value))
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _load_params(root: Path, manifest: dict) -> dict[str, np.ndarray]:
    """Every layer's parameter arrays, each checked against its layer record: header (shape,
    dtype, byte size) before reading, values (datatype range, finite) after."""
    arrays: dict[str, np.ndarray] = {}
    for layer in manifest["layers"]:
        shapes = expected_params(layer)
        for key, rel in layer.get("params", {}).items():
            path = root / rel
            if rel not in manifest["files"]:
                raise BundleError(f"{path}: parameter {key} of layer {layer['name']} is not listed in the manifest")
            datatype = layer.get("param_dtypes", {}).get(key)
            integer = datatype is None or is_integer_datatype(datatype)
            try:
                check_npy_header(path, shapes[key], integer)
                arr = np.load(path, allow_pickle=False)
                check_values(arr, datatype, integer and datatype is not None)
            except SchemaError as exc:
                raise BundleError(f"{path}: parameter {key} of layer {layer['name']}: {_one_line(exc)}") from exc
            except ValueError as exc:
                raise BundleError(f"{path}: not a plain .npy array ({_one_line(exc)})") from exc
            arrays[rel] = arr
    return arrays


def load_bundle(root: Path | str) -> Bundle:
    """Read and verify the bundle in folder ``root`` (or its ``manifest.json``)."""
    root = Path(root)
    if root.name == MANIFEST:
        root = root.parent
    manifest = _read_manifest(root / MANIFEST)
    verify_files(root, manifest)
    params = _load_params(root, manifest)
    check_digest(root / MANIFEST, manifest)  # last: the checks above name what an edit broke
    return Bundle(root, manifest, params)


#: the manifest's digest of itself
DIGEST_KEY = "manifest_sha256"


def manifest_digest(manifest: dict) -> str:
    """sha256 (hex) of ``manifest`` without :data:`DIGEST_KEY`, as canonical JSON
    (``sort_keys``, separators ``,`` and ``:``)."""
    body = {k: v for k, v in manifest.items() if k != DIGEST_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def stamp_manifest(manifest: dict) -> dict:
    """Set ``manifest[DIGEST_KEY]`` to its digest (in place; returns it). Every writer of a
    manifest calls this last."""
    manifest[DIGEST_KEY] = manifest_digest(manifest)
    return manifest


def check_digest(mpath: Path, manifest: dict) -> None:
    """Raise :class:`BundleError` (one line) when the manifest has no digest or differs from it."""
    got = manifest.get(DIGEST_KEY)
    if got is None:
        raise BundleError(f"{mpath}: no {DIGEST_KEY} (written before manifests carried their own digest, "
                          "or edited by hand); rebuild the bundle with `fpgarec build`")
    if got != manifest_digest(manifest):
        raise BundleError(f"{mpath}: the manifest differs from its {DIGEST_KEY} (edited after it was written?); "
                          "rebuild the bundle, or re-stamp a deliberate edit (fpgarec.runtime.bundle.stamp_manifest)")


def write_text_safely(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and
    :func:`os.replace`, never through a symlink: a ``path`` that is a symlink, or whose folder is
    one, is refused (:class:`BundleError`). A reader sees the old file or the new one."""
    path = Path(path)
    refuse_symlinks(path, path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def refuse_symlinks(*paths: Path | str) -> None:
    """Raise :class:`BundleError` naming the first of ``paths`` that is a symlink (checked
    before a command writes anything, so it leaves no half-written bundle)."""
    for p in map(Path, paths):
        if p.is_symlink():
            raise BundleError(f"{p}: is a symlink; refusing to write through it")
