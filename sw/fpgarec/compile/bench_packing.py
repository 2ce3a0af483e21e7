"""Benchmark: :mod:`fpgarec.runtime.packing` against finn-plus' packing functions, and the
whole host side of a query (sample + pack + unpack).

Times (best of ``repeats``) our :func:`~fpgarec.runtime.packing.pack` /
:func:`~fpgarec.runtime.packing.unpack` and finn's ``finnpy_to_packed_bytearray`` /
``packed_bytearray_to_finnpy`` (``reverse_inner=True, reverse_endian=True``, as FINN's
generated drivers call them) for the demo bundle's stream datatypes and checks that both
give the same bytes / values. finn is imported inside the benchmark's functions only: this module
is a development benchmark, the runtime itself (``packing.py``) never imports finn.

The host sampler (:class:`~fpgarec.runtime.sampler.HostSampler`) is timed on a seeded
synthetic history shaped like the demo's (943 users, 1,682 items, 1..400 items per user, a
third of them shorter than K = 20 so padding is exercised), for known users computed from the
history on every call (no per-user cache: the worst case) and with the cache, in both padding
schemes; ``host_us_per_query`` takes the slowest uncached variant.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from fpgarec.runtime.packing import pack, unpack, value_range
from fpgarec.runtime.sampler import History, HostSampler, Padding

log = logging.getLogger(__name__)

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


#: sampler variants timed: (name, padding, n_recent); the demo bundle is cyclic without n_recent,
#: the null-padded design with the demo's n_recent = 12 is the most work per query
_SAMPLER_CASES = (("cyclic", None, None), ("null_recent12", "null", 12))


def bench_sampler(batch: int = 1000, repeats: int = 20, seed: int = 0, k: int = 20, n_items: int = 1682,
                  n_users: int = 943) -> dict:
    """Microseconds per batch of :meth:`HostSampler.users` (uncached and cached) and of
    :meth:`HostSampler.items` (new users' item lists) per padding variant."""
    rng = np.random.default_rng(seed)
    lengths = np.where(rng.random(n_users) < 1 / 3, rng.integers(1, k, n_users), rng.integers(k, 401, n_users))
    history = History.from_lists([rng.integers(0, n_items, n) for n in lengths], n_items)
    users = rng.integers(0, n_users, batch)
    lists = [history.of(u).tolist()[-50:] for u in users]
    out = {}
    for name, scheme, n_recent in _SAMPLER_CASES:
        padding = Padding(scheme, n_items) if scheme else Padding()
        plain = HostSampler(k, n_items, padding, n_recent, history, cache_entries=0)
        cached = HostSampler(k, n_items, padding, n_recent, history)
        assert np.array_equal(plain.users(users), cached.users(users))
        out[name] = {
            "users_us": round(_best(lambda s=plain: s.users(users), repeats) * 1e6, 1),
            "users_cached_us": round(_best(lambda s=cached: s.users(users), repeats) * 1e6, 1),
            "items_us": round(_best(lambda s=plain: s.items(lists), max(3, repeats // 4)) * 1e6, 1),
        }
        log.info("sampler %s at batch %d (us per batch): %s", name, batch, out[name])
    return out


def _bench_case(x: np.ndarray, dt, bits: int, signed: bool, repeats: int) -> dict:
    """One case of :func:`bench_packing`: ``x`` (batch, *word) int64 values of datatype ``dt``
    packed and unpacked by finn and by us; bytes and values compared, microseconds per batch."""
    from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy

    shape = x.shape
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
    return {
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


def bench_packing(batch: int = 1000, repeats: int = 20, seed: int = 0) -> dict:
    """Time pack/unpack against finn at ``batch`` queries; return the summary dict.

    ``pack_speedup`` / ``unpack_speedup``: finn time / our time for the demo input (pack) and
    output (unpack) words; ``bitexact``: every case's bytes and values equal finn's;
    ``host_us_per_query``: (our pack of the input + our unpack of the output) / batch in us.
    ``cases`` holds the per-case timings in microseconds per batch.
    """
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(seed)
    cases = {}
    for name, (word, bits, signed) in _CASES.items():
        shape = (batch, *word)
        dt = DataType[("INT" if signed else "UINT") + str(bits)]
        lo, hi = value_range(bits, signed)
        x = rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int64)
        cases[name] = _bench_case(x, dt, bits, signed, repeats)
    bitexact = all(case["bitexact"] for case in cases.values())

    inp, out = cases["input"], cases["output"]
    sampler = bench_sampler(batch, repeats, seed)
    sample_us = max(v["users_us"] for v in sampler.values())
    host_us = (sample_us + inp["ours_pack_us"] + out["ours_unpack_us"]) / batch
    return {
        "pack_speedup": inp["pack_speedup"],
        "unpack_speedup": out["unpack_speedup"],
        "bitexact": bitexact,
        "batch": int(batch),
        "host_us_per_query": round(host_us, 4),
        "sample_us_per_query": round(sample_us / batch, 4),
        "cases": cases,
        "sampler": sampler,
        "note": (
            "pack_speedup: demo input (batch, 20, 1) UINT11; unpack_speedup: demo output "
            "(batch, 10, 1) UINT11; host_us_per_query = sampling known users (slowest padding "
            "variant, no per-user cache) + our pack of the input + our unpack of the output, "
            "per query"
        ),
    }
