"""Vectorized fold/pack/unpack of integer tensors in FINN's packed stream layout.

numpy only (it runs on a PYNQ board with Python 3.10 and numpy 1.x): no torch, finn or
qonnx import here, and no numpy-2-only API.

Layout
------
FINN's generated drivers call ``finnpy_to_packed_bytearray(x, dt, reverse_inner=True,
reverse_endian=True)`` and ``packed_bytearray_to_finnpy(..., reverse_inner=True,
reverse_endian=True)``. For a stream word holding ``C`` elements ``v[0] .. v[C-1]`` (the last
axis of the folded tensor) of ``bits`` bits each, that layout is::

    W      = sum_i  u(v[i]) << (i * bits)          # element 0 in the least significant bits
    nbytes = ceil(C * bits / 8)                     # word zero-padded to whole bytes
    out[k] = (W >> (8 * k)) & 0xFF,  k = 0 .. nbytes-1   # little-endian bytes

where ``u(v) = v mod 2**bits`` (two's complement for signed types). The padding
``8 * nbytes - C * bits`` zero bits are the most significant bits of ``W``, i.e. the high bits
of the last byte. Bit ``p`` of ``W`` is bit ``p % 8`` of byte ``p // 8``.

Implementation
--------------
* bits in {8, 16, 32}: the word is the values' little-endian bytes, so packing is a cast and
  a byte view, unpacking a ``<u2``/``<u4`` view.
* any other width: the word is built as little-endian uint64 limbs (or one uint8/16/32 limb
  when the word has 1, 2 or 4 bytes): each element is shifted to its offset and OR-ed
  (summed: elements never overlap) into its limb, elements crossing a limb boundary add
  their high part to the next limb; the limbs' bytes are the packed word. Unpacking views
  the (zero-extended) bytes as limbs, gathers each element's limb, shifts and masks. Index
  tables are cached per ``(C, bits)``; the cost is O(B * C) uint64 ops, no per-bit arrays.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

__all__ = [
    "fold",
    "pack",
    "packed_nbytes",
    "parse_datatype",
    "unfold",
    "unpack",
    "value_range",
]

_DT_RE = re.compile(r"^(U?)INT(\d+)$")


def parse_datatype(name: str) -> tuple[int, bool]:
    """Parse a FINN integer DataType name: ``"UINT11"`` -> ``(11, False)``, ``"INT4"`` ->
    ``(4, True)``. Only INT/UINT of 1..32 bits (``"BINARY"`` = ``"UINT1"``) are supported."""
    n = str(name).strip().upper()
    if n == "BINARY":
        return 1, False
    m = _DT_RE.match(n)
    if not m:
        raise ValueError(f"datatype: {name!r} is not a FINN INT<n>/UINT<n> name")
    bits = int(m.group(2))
    _check_bits(bits)
    return bits, m.group(1) == ""


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ValueError(f"bits must be an integer in 1..32, got {bits!r}")
    bits = int(bits)
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in 1..32, got {bits}")
    return bits


def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive ``(lo, hi)`` of a ``bits``-bit integer: ``[-2**(b-1), 2**(b-1)-1]`` if signed,
    else ``[0, 2**b - 1]``."""
    bits = _check_bits(bits)
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def packed_nbytes(n_elems: int, bits: int) -> int:
    """Bytes of one packed stream word of ``n_elems`` elements: ``ceil(n_elems * bits / 8)``."""
    return (int(n_elems) * _check_bits(bits) + 7) // 8


def _reshape_checked(values: np.ndarray, shape, name: str) -> np.ndarray:
    values = np.asarray(values)
    shape = tuple(int(s) for s in shape)
    if int(np.prod(shape)) != values.size:
        raise ValueError(f"{name} {shape} does not hold {values.size} values of shape {values.shape}")
    return values.reshape(shape)


def fold(values: np.ndarray, folded_shape) -> np.ndarray:
    """Reshape a normal-shape tensor to the accelerator's folded shape (row-major, as FINN's
    driver does); the last axis of ``folded_shape`` is the stream word's elements. A view when
    ``values`` is contiguous."""
    return _reshape_checked(values, folded_shape, "folded_shape")


def unfold(values: np.ndarray, normal_shape) -> np.ndarray:
    """Inverse of :func:`fold`: reshape a folded tensor back to ``normal_shape``."""
    return _reshape_checked(values, normal_shape, "normal_shape")


@lru_cache(maxsize=256)
def _limb_tables(n: int, bits: int):
    """Where each element sits in the word split into little-endian limbs.

    The word ``W`` (module docstring) is stored as ``L`` limbs of ``lb`` bytes, limb ``j``
    holding bits ``64j .. 64j+63`` (``lb = 8``), or a single limb of ``lb = nbytes`` in
    {1, 2, 4} bytes when the word is that small. Element ``i`` starts at bit ``p = i*bits``:
    limb ``p // 64``, offset ``r = p % 64``; it straddles into the next limb when
    ``r + bits > 64``. Returns ``(lb, L, limb, r, groups, straddle)`` where ``groups`` lists,
    per limb, the contiguous element range ``[a, b)`` starting in it."""
    nbytes = packed_nbytes(n, bits)
    if nbytes in (1, 2, 4):
        lb, n_limbs = nbytes, 1
    else:
        lb, n_limbs = 8, (nbytes + 7) // 8
    pos = np.arange(n, dtype=np.int64) * bits
    limb = (pos // 64).astype(np.intp)
    r = (pos % 64).astype(np.uint64)
    straddle = np.nonzero((pos % 64) + bits > 64)[0].astype(np.intp)
    groups = []
    for j in range(n_limbs):
        idx = np.nonzero(limb == j)[0]
        if idx.size:
            groups.append((j, int(idx[0]), int(idx[-1]) + 1))
    return lb, n_limbs, limb, r, tuple(groups), straddle


def pack(values: np.ndarray, bits: int, signed: bool, check: bool = True) -> np.ndarray:
    """Pack the last axis of an integer array into FINN stream words.

    ``values``: shape ``(B, ..., C)``, integer (or integral float) values of a ``bits``-bit
    signed/unsigned integer type. Returns a C-contiguous ``uint8`` array of shape
    ``(B, ..., ceil(C*bits/8))`` equal to finn's ``finnpy_to_packed_bytearray(values, dt,
    reverse_inner=True, reverse_endian=True)`` (see the module docstring for the layout).
    With ``check`` (default) out-of-range values raise ``ValueError``.
    """
    bits = _check_bits(bits)
    values = np.asarray(values)
    if values.ndim == 0:
        raise ValueError("values must have at least one axis (the stream word's elements)")
    if values.dtype.kind not in "iub":
        if values.dtype.kind != "f":
            raise ValueError(f"values must be integers, got dtype {values.dtype}")
        if check and values.size and not np.array_equal(values, np.floor(values)):
            raise ValueError("values must be integral")
        values = values.astype(np.int64)
    n = values.shape[-1]
    lead = values.shape[:-1]
    if check and values.size:
        lo, hi = value_range(bits, signed)
        vmin, vmax = int(values.min()), int(values.max())
        if vmin < lo or vmax > hi:
            kind = "INT" if signed else "UINT"
            raise ValueError(
                f"values out of range for {kind}{bits} [{lo}, {hi}]: min {vmin}, max {vmax}"
            )
    nbytes = packed_nbytes(n, bits)
    if bits in (8, 16, 32):
        # word = the elements' little-endian bytes, in order
        le = np.dtype(("<i" if signed else "<u") + str(bits // 8))
        out = np.ascontiguousarray(values, dtype=le).view(np.uint8)
        return out.reshape(*lead, nbytes)
    mask = (1 << bits) - 1
    # u: the elements' bit patterns as uint64, with as few temporaries as possible
    if values.dtype == np.int64:
        u = np.bitwise_and(values, mask).view(np.uint64)
    elif values.dtype == np.uint64:
        u = values
    else:
        u = values.astype(np.uint64)
        if signed:
            u &= np.uint64(mask)
    u = u.reshape(-1, n)
    rows = u.shape[0]
    lb, n_limbs, limb, r, groups, straddle = _limb_tables(n, bits)
    limbs = np.zeros((rows, n_limbs), dtype=np.uint64)
    for i in straddle:  # high part of an element crossing a limb boundary
        limbs[:, limb[i] + 1] |= u[:, i] >> (np.uint64(64) - r[i])
    for j, a, b in groups:  # elements never overlap, so OR == sum
        col = limbs[:, j]
        if b - a <= 16:  # few elements per limb: column ops beat a short-row reduction
            for i in range(a, b):
                col |= u[:, i] << r[i]
        else:
            col |= np.sum(u[:, a:b] << r[a:b], axis=1, dtype=np.uint64)
    out = limbs.astype(f"<u{lb}", copy=False).view(np.uint8)
    if out.shape[1] != nbytes:
        out = np.ascontiguousarray(out[:, :nbytes])
    return out.reshape(*lead, nbytes)


def _out_dtype(bits: int, signed: bool):
    if bits <= 8:
        return np.int8 if signed else np.uint8
    if bits <= 16:
        return np.int16 if signed else np.uint16
    return np.int32 if signed else np.uint32


def unpack(packed: np.ndarray, bits: int, signed: bool, shape, dtype=None) -> np.ndarray:
    """Unpack FINN stream words back into integers (inverse of :func:`pack`).

    ``packed``: ``uint8`` of shape ``(B, ..., nbytes)`` (or any shape with the same size, e.g.
    a flat DMA buffer) with ``nbytes = ceil(shape[-1]*bits/8)``; ``shape``: the folded output
    shape ``(B, ..., C)``. Returns an integer array of ``shape`` whose values equal finn's
    ``packed_bytearray_to_finnpy(packed, dt, shape, reverse_inner=True,
    reverse_endian=True)`` (finn returns float32). The result dtype is the smallest
    (u)int8/16/32 holding ``bits`` bits, or ``dtype`` if given. Padding bits are ignored.
    """
    bits = _check_bits(bits)
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise ValueError("shape must have at least one axis (the stream word's elements)")
    packed = np.asarray(packed)
    if packed.dtype != np.uint8:
        raise ValueError(f"packed must be a uint8 array, got dtype {packed.dtype}")
    n = shape[-1]
    nbytes = packed_nbytes(n, bits)
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    if packed.size != rows * nbytes:
        raise ValueError(
            f"packed has {packed.size} bytes, shape {shape} at {bits} bits needs "
            f"{rows} x {nbytes} = {rows * nbytes}"
        )
    odt = np.dtype(dtype) if dtype is not None else np.dtype(_out_dtype(bits, signed))
    p = np.ascontiguousarray(packed).reshape(rows, nbytes)
    if bits in (8, 16, 32):
        le = np.dtype(("<i" if signed else "<u") + str(bits // 8))
        return p.view(le).reshape(shape).astype(odt, copy=False)
    lb, n_limbs, limb, r, groups, straddle = _limb_tables(n, bits)
    if lb * n_limbs != nbytes:
        buf = np.zeros((rows, lb * n_limbs), dtype=np.uint8)
        buf[:, :nbytes] = p
        p = buf
    limbs = p.view(f"<u{lb}").astype(np.uint64)
    if n_limbs == 1:
        u = limbs >> r
    else:
        u = limbs[:, limb]
        u >>= r
        for i in straddle:
            u[:, i] |= limbs[:, limb[i] + 1] << (np.uint64(64) - r[i])
    u &= np.uint64((1 << bits) - 1)
    if signed:
        s = u.view(np.int64)
        sign = np.int64(1 << (bits - 1))
        s ^= sign
        s -= sign
        return s.reshape(shape).astype(odt, copy=False)
    return u.reshape(shape).astype(odt, copy=False)
