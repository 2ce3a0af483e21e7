"""fpgarec.runtime.packing against finn-plus' own packing functions (bit-exact), plus
round trips and bad input."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from fpgarec.runtime import packing
from fpgarec.runtime.packing import (
    fold,
    pack,
    packed_nbytes,
    parse_datatype,
    unfold,
    unpack,
    value_range,
)

BITS = [1, 2, 3, 4, 5, 7, 8, 11, 12, 16, 24, 32]
SHAPES = [(7, 16, 1), (5, 3), (4, 10), (3, 2, 7), (6, 1), (2, 40), (9,)]


def _finn():
    dp = pytest.importorskip("finn.util.data_packing")
    from qonnx.core.datatype import DataType

    return dp.finnpy_to_packed_bytearray, dp.packed_bytearray_to_finnpy, DataType


def _random(rng, bits, signed, shape):
    lo, hi = value_range(bits, signed)
    x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    # include both extremes
    flat = x.reshape(-1)
    flat[0], flat[-1] = lo, hi
    if bits > 24:
        # finn's general path goes through float32: keep values it represents exactly
        x &= ~np.int64((1 << (bits - 24)) - 1)
    return x


@pytest.mark.parametrize("signed", [False, True], ids=["uint", "int"])
@pytest.mark.parametrize("bits", BITS)
def test_bitexact_with_finn(bits, signed):
    to_packed, from_packed, DataType = _finn()
    dt = DataType[("INT" if signed else "UINT") + str(bits)]
    rng = np.random.default_rng(1000 * bits + signed)
    for shape in SHAPES:
        x = _random(rng, bits, signed, shape)
        ref = np.ascontiguousarray(
            to_packed(x.astype(np.float32), dt, reverse_inner=True, reverse_endian=True)
        )
        ours = pack(x, bits, signed)
        assert ours.dtype == np.uint8 and ours.flags.c_contiguous
        assert ours.shape == ref.shape == (*shape[:-1], packed_nbytes(shape[-1], bits))
        np.testing.assert_array_equal(ours, ref, err_msg=f"pack {dt.name} {shape}")
        ref_vals = from_packed(ref, dt, shape, reverse_inner=True, reverse_endian=True)
        vals = unpack(ours, bits, signed, shape)
        assert vals.dtype.kind in "iu" and vals.shape == shape
        np.testing.assert_array_equal(vals, ref_vals, err_msg=f"unpack {dt.name} {shape}")
        np.testing.assert_array_equal(vals, x)


def test_bitexact_batch_1000_and_native_containers():
    to_packed, from_packed, DataType = _finn()
    rng = np.random.default_rng(7)
    for bits, signed, shape in [
        (11, False, (1000, 20, 1)),
        (11, False, (1000, 10, 1)),
        (4, True, (1000, 8, 8)),
        (11, False, (4, 10)),
    ]:
        dt = DataType[("INT" if signed else "UINT") + str(bits)]
        x = _random(rng, bits, signed, shape)
        ref = np.ascontiguousarray(
            to_packed(x.astype(np.float32), dt, reverse_inner=True, reverse_endian=True)
        )
        np.testing.assert_array_equal(pack(x, bits, signed), ref)
        np.testing.assert_array_equal(
            unpack(ref, bits, signed, shape),
            from_packed(ref, dt, shape, reverse_inner=True, reverse_endian=True),
        )
    # finn's byte-view fast path for native int containers
    for bits, signed, npdt in [(8, True, np.int8), (16, False, np.uint16), (32, True, np.int32)]:
        dt = DataType[("INT" if signed else "UINT") + str(bits)]
        x = _random(rng, bits, signed, (5, 6)).astype(npdt)
        ref = np.ascontiguousarray(to_packed(x, dt, reverse_inner=True, reverse_endian=True))
        np.testing.assert_array_equal(pack(x, bits, signed), ref)
        np.testing.assert_array_equal(unpack(ref, bits, signed, x.shape), x)


def test_layout_and_padding_by_hand():
    # UINT11 x [a, b]: W = a | b << 11 over 3 bytes little-endian, padding in the top 2 bits
    a, b = 0x7FF, 0x001
    w = a | (b << 11)
    expect = np.array([[w & 0xFF, (w >> 8) & 0xFF, (w >> 16) & 0xFF]], dtype=np.uint8)
    np.testing.assert_array_equal(pack(np.array([[a, b]]), 11, False), expect)
    # INT4 [-1, 2] -> 0x2F
    np.testing.assert_array_equal(pack(np.array([-1, 2]), 4, True), np.array([0x2F], np.uint8))
    # padding bits set in the input are ignored on unpack
    np.testing.assert_array_equal(
        unpack(np.array([[0xFF, 0xFF, 0xFF]], np.uint8), 11, False, (1, 2)), [[2047, 2047]]
    )


@pytest.mark.parametrize("bits", list(range(1, 33)))
@pytest.mark.parametrize("signed", [False, True])
def test_round_trip_all_widths(bits, signed):
    rng = np.random.default_rng(bits)
    lo, hi = value_range(bits, signed)
    for shape in [(3, 1), (2, 5, 9), (4, 70), (0, 3), (1,)]:
        x = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
        for inp in (x, x.astype(np.float32) if bits <= 24 else x):
            p = pack(inp, bits, signed)
            assert p.shape == (*shape[:-1], packed_nbytes(shape[-1], bits))
            np.testing.assert_array_equal(unpack(p, bits, signed, shape), x)
        # a flat buffer (as a DMA buffer comes) unpacks too
        np.testing.assert_array_equal(unpack(p.reshape(-1), bits, signed, shape), x)
        np.testing.assert_array_equal(unpack(p, bits, signed, shape, dtype=np.int64), x)


def test_small_containers():
    x = np.array([[0, 1, 255, 7]], dtype=np.uint8)
    np.testing.assert_array_equal(unpack(pack(x, 9, False), 9, False, x.shape), x)
    y = np.array([[-8, 7, 0]], dtype=np.int8)
    np.testing.assert_array_equal(unpack(pack(y, 4, True), 4, True, y.shape), y)
    z = np.array([[True, False, True]])
    np.testing.assert_array_equal(unpack(pack(z, 1, False), 1, False, z.shape), z)


@pytest.mark.parametrize("bits", [0, 33, -1, 2.5, True])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        pack(np.zeros((2, 2), dtype=np.int64), bits, False)
    with pytest.raises(ValueError, match="bits"):
        unpack(np.zeros((2, 2), dtype=np.uint8), bits, False, (2, 2))


def test_out_of_range_values():
    with pytest.raises(ValueError, match=r"values out of range for UINT11 \[0, 2047\]"):
        pack(np.array([[2048]]), 11, False)
    with pytest.raises(ValueError, match="values out of range for UINT4"):
        pack(np.array([[-1]]), 4, False)
    with pytest.raises(ValueError, match="values out of range for INT4"):
        pack(np.array([[8]]), 4, True)
    with pytest.raises(ValueError, match="values out of range for INT8"):
        pack(np.array([[-129]]), 8, True)
    with pytest.raises(ValueError, match="values must be integral"):
        pack(np.array([[1.5]]), 4, False)
    with pytest.raises(ValueError, match="values must be integers"):
        pack(np.array([["a"]]), 4, False)
    with pytest.raises(ValueError, match="values must have at least one axis"):
        pack(np.int64(3), 4, False)


def test_bad_packed():
    with pytest.raises(ValueError, match="packed must be a uint8"):
        unpack(np.zeros((2, 2), dtype=np.int16), 11, False, (2, 1))
    with pytest.raises(ValueError, match="packed has 6 bytes"):
        unpack(np.zeros((2, 3), dtype=np.uint8), 11, False, (2, 1))
    with pytest.raises(ValueError, match="shape must have at least one axis"):
        unpack(np.zeros(2, dtype=np.uint8), 11, False, ())


def test_fold_unfold_and_datatypes():
    x = np.arange(24).reshape(2, 12)
    f = fold(x, (2, 3, 4))
    assert f.shape == (2, 3, 4) and np.shares_memory(f, x)
    np.testing.assert_array_equal(unfold(f, (2, 12)), x)
    with pytest.raises(ValueError, match="folded_shape"):
        fold(x, (2, 5, 4))
    with pytest.raises(ValueError, match="normal_shape"):
        unfold(f, (5,))
    assert parse_datatype("UINT11") == (11, False)
    assert parse_datatype("int4") == (4, True)
    assert parse_datatype("BINARY") == (1, False)
    with pytest.raises(ValueError, match="datatype"):
        parse_datatype("BIPOLAR")
    with pytest.raises(ValueError, match="bits"):
        parse_datatype("UINT40")


def test_packing_imports_numpy_only():
    tree = ast.parse(Path(packing.__file__).read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add((node.module or "").split(".")[0])
    assert mods <= {"__future__", "re", "functools", "numpy"}, mods


def test_bench_packing_small():
    pytest.importorskip("finn.util.data_packing")
    from fpgarec.compile.bench_packing import bench_packing

    res = bench_packing(batch=50, repeats=2)
    assert res["bitexact"] is True
    assert res["batch"] == 50
    assert {"pack_speedup", "unpack_speedup", "host_us_per_query", "note"} <= set(res)
    assert res["host_us_per_query"] > 0
