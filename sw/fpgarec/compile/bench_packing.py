"""Benchmark: :mod:`fpgarec.runtime.packing` against finn-plus' packing functions.

Times (best of ``repeats``) our :func:`~fpgarec.runtime.packing.pack` /
:func:`~fpgarec.runtime.packing.unpack` and finn's ``finnpy_to_packed_bytearray`` /
``packed_bytearray_to_finnpy`` (``reverse_inner=True, reverse_endian=True``, as FINN's
generated drivers call them) for the demo bundle's stream datatypes and checks that both
give the same bytes / values. finn is imported inside :func:`bench_packing` only: this module
is a development benchmark, the runtime itself (``packing.py``) never imports finn.
"""

from __future__ import annotations

import time

import numpy as np

from fpgarec.runtime.packing import pack, unpack, value_range

# demo bundle: input item ids (batch, 20, 1) UINT11 (1,792 items), output top-k ids
# (batch, 10, 1) UINT11; a side case with a wider, signed word: (batch, 8, 8) INT4
_CASES = {
    "input": ((20, 1), 11, False),
    "output": ((10, 1), 11, False),
    "int4_side": ((8, 8), 4, True),
}


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_packing(batch: int = 1000, repeats: int = 20, seed: int = 0) -> dict:
    """Time pack/unpack against finn at ``batch`` queries; return the summary dict.

    ``pack_speedup`` / ``unpack_speedup``: finn time / our time for the demo input (pack) and
    output (unpack) words; ``bitexact``: every case's bytes and values equal finn's;
    ``host_us_per_query``: (our pack of the input + our unpack of the output) / batch in us.
    ``cases`` holds the per-case timings in microseconds per batch.
    """
    from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(seed)
    cases = {}
    bitexact = True
    for name, (word, bits, signed) in _CASES.items():
        shape = (batch, *word)
        dt = DataType[("INT" if signed else "UINT") + str(bits)]
        lo, hi = value_range(bits, signed)
        x = rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int64)
        # finn's drivers hand it the float32 tensor the model works on
        xf = x.astype(np.float32)

        def finn_pack(xf=xf, dt=dt):
            return np.ascontiguousarray(
                finnpy_to_packed_bytearray(xf, dt, reverse_inner=True, reverse_endian=True)
            )

        ref_bytes = finn_pack()
        ours_bytes = pack(x, bits, signed)
        ref_vals = packed_bytearray_to_finnpy(
            ref_bytes, dt, shape, reverse_inner=True, reverse_endian=True
        )
        ours_vals = unpack(ours_bytes, bits, signed, shape)
        exact = (
            ref_bytes.shape == ours_bytes.shape
            and np.array_equal(ref_bytes, ours_bytes)
            and np.array_equal(ref_vals, ours_vals)
            and np.array_equal(ours_vals, x)
        )
        bitexact = bitexact and bool(exact)

        t_finn_pack = _best(finn_pack, repeats)
        t_ours_pack = _best(lambda x=x, b=bits, s=signed: pack(x, b, s), repeats)
        t_finn_unpack = _best(
            lambda p=ref_bytes, dt=dt, sh=shape: packed_bytearray_to_finnpy(
                p, dt, sh, reverse_inner=True, reverse_endian=True
            ),
            repeats,
        )
        t_ours_unpack = _best(
            lambda p=ours_bytes, b=bits, s=signed, sh=shape: unpack(p, b, s, sh), repeats
        )
        cases[name] = {
            "shape": list(shape),
            "datatype": dt.name,
            "bitexact": bool(exact),
            "finn_pack_us": round(t_finn_pack * 1e6, 1),
            "ours_pack_us": round(t_ours_pack * 1e6, 1),
            "finn_unpack_us": round(t_finn_unpack * 1e6, 1),
            "ours_unpack_us": round(t_ours_unpack * 1e6, 1),
            "pack_speedup": round(t_finn_pack / t_ours_pack, 2),
            "unpack_speedup": round(t_finn_unpack / t_ours_unpack, 2),
        }

    inp, out = cases["input"], cases["output"]
    host_us = (inp["ours_pack_us"] + out["ours_unpack_us"]) / batch
    return {
        "pack_speedup": inp["pack_speedup"],
        "unpack_speedup": out["unpack_speedup"],
        "bitexact": bitexact,
        "batch": int(batch),
        "host_us_per_query": round(host_us, 4),
        "cases": cases,
        "note": (
            "pack_speedup: demo input (batch, 20, 1) UINT11; unpack_speedup: demo output "
            "(batch, 10, 1) UINT11; host_us_per_query = our pack of the input + our unpack of "
            "the output per query; neighbour sampling is not part of it yet"
        ),
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(bench_packing()))
