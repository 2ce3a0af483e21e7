"""topk_select: golden model against the project's tie rule and a brute-force reference;
RTL: Verilator lint, cocotb simulation bit exact against the golden model (random gaps on both
inputs, back-pressure), cycles per query and latency, Yosys figures."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from kernels._params import KernelParameterError
from kernels.topk_select.golden import (
    TopkParams,
    bitmap_beats,
    cycles,
    hdl_params,
    register_bits,
    select,
    topk,
)

from conftest import run_cocotb, yosys_cached
from fpgarec.runtime.topk import tie_rule_topk
from kernels import hwtools

TOP = "topk_select"

#: the demo (N=1792 labels padded from 1682, PE=64, L=4, INT14, K=10) with the ids filter (20
#: context ids), without a filter and with the history bitmap; small odd sizes (ids, bitmap);
#: PE=1; a merge-bound one (2K+2 > N/PE*L); PE not a power of two with an id-bound rate
#: (K_CTX > N/PE*L); ids that can leave fewer than K eligible items (N_VALID - K_CTX < K)
DEMO = {"n": 1792, "n_valid": 1682, "pe": 64, "in_bits": 14, "k": 10, "out_bits": 16,
        "k_ctx": 20, "id_bits": 11, "lanes_per_sorter": 4}
CONFIGS = {
    "demo": TopkParams(**DEMO, seen_mode=1),
    "demo-noseen": TopkParams(**DEMO, seen_mode=0),
    "demo-bitmap": TopkParams(**DEMO, seen_mode=2),
    "small-odd": TopkParams(n=24, n_valid=21, pe=4, in_bits=5, k=3, out_bits=5,
                            seen_mode=1, k_ctx=3, id_bits=5, lanes_per_sorter=2),
    "small-bitmap": TopkParams(n=24, n_valid=21, pe=4, in_bits=5, k=3, out_bits=5,
                               seen_mode=2, lanes_per_sorter=2),
    "pe1": TopkParams(n=20, n_valid=19, pe=1, in_bits=6, k=4, out_bits=8,
                      seen_mode=1, k_ctx=5, id_bits=5, lanes_per_sorter=1),
    "merge-bound": TopkParams(n=8, n_valid=8, pe=4, in_bits=3, k=4, out_bits=3,
                              seen_mode=1, k_ctx=4, id_bits=4, lanes_per_sorter=1),
    "pe6-id-bound": TopkParams(n=18, n_valid=17, pe=6, in_bits=4, k=3, out_bits=6,
                               seen_mode=1, k_ctx=10, id_bits=5, lanes_per_sorter=3),
    "ids-short": TopkParams(n=12, n_valid=10, pe=4, in_bits=4, k=4, out_bits=4,
                            seen_mode=1, k_ctx=8, id_bits=4, lanes_per_sorter=2),
}
IDS = list(CONFIGS)
#: Yosys figures for these (the demo takes minutes)
#: Yosys runs (the demo configurations take 60-80 s each: the stitched design's bitmap mode only)
RESOURCE_IDS = ["demo-bitmap", "small-odd", "small-bitmap"]


def settings(p: TopkParams) -> dict:
    per_query = cycles(p).per_query
    return {"params": p.__dict__, "seed": 2024,
            "queries": max(24, min(60, 4000 // per_query)),
            "cycle_queries": max(8, min(16, 1600 // per_query)),
            "stall_len": [10, max(60, 2 * per_query)]}


# ------------------------------------------------------------------ golden model (no simulator)
def brute_force(scores, k, n_valid, ctx=None, seen=None):
    out = []
    for q, row in enumerate(scores):
        gone = set() if ctx is None else {int(i) for i in ctx[q]}
        if seen is not None:
            gone |= {int(i) for i in np.flatnonzero(seen[q])}
        items = [i for i in range(n_valid) if i not in gone]
        best = sorted(items, key=lambda i: (-int(row[i]), i))[:k]
        out.append(best + [len(row)] * (k - len(best)))
    return np.array(out, np.int64)


def test_golden_matches_tie_rule_and_brute_force():
    rng = np.random.default_rng(7)
    for n, k, n_valid, k_ctx in ((24, 3, 21, 3), (1792, 10, 1682, 20), (8, 4, 8, 4), (5, 5, 5, 0),
                                 (12, 4, 10, 8)):
        for lo, hi in ((-3, 3), (-8192, 8191), (0, 0)):
            s = rng.integers(lo, hi + 1, (16, n))
            # the project's tie rule (no filter, no padding)
            assert np.array_equal(topk(s, k, n), tie_rule_topk(s.copy(), k))
            ctx = rng.integers(0, n + 5, (16, k_ctx)) if k_ctx else None
            if ctx is not None:  # ids of the best items, duplicates
                ctx[:, 0] = topk(s, k, n_valid)[:, 0]
                ctx[:, -1] = ctx[:, 0]
                ctx[::4] = [rng.permutation(n)[:k_ctx] for _ in range(len(ctx[::4]))]
            assert np.array_equal(topk(s, k, n_valid, ctx), brute_force(s, k, n_valid, ctx))
            # bitmaps of every density (up to all), the best items excluded in some
            seen = rng.random((16, n)) < np.linspace(0, 1, 16)[:, None]
            seen[::3, topk(s, k, n_valid)[::3]] = True
            assert np.array_equal(topk(s, k, n_valid, seen=seen),
                                  brute_force(s, k, n_valid, seen=seen))
            assert np.array_equal(topk(s, k, n_valid, ctx, seen),
                                  brute_force(s, k, n_valid, ctx, seen))


def test_golden_refuses():
    good = CONFIGS["small-odd"].__dict__
    for change, name in (({"pe": 5}, "PE"), ({"n_valid": 25}, "N_VALID"), ({"k": 25}, "K"),
                         ({"lanes_per_sorter": 3}, "LANES_PER_SORTER"), ({"out_bits": 4}, "OUT_BITS"),
                         ({"in_bits": 1}, "IN_BITS"), ({"seen_mode": 3}, "SEEN_MODE"),
                         ({"seen_mode": True}, "SEEN_MODE"), ({"exclude_seen": 2, "seen_mode": None},
                                                             "EXCLUDE_SEEN"),
                         # the bitmap (or too many ids) can leave a slot empty: N must fit
                         ({"n": 32, "n_valid": 30, "seen_mode": 2}, "OUT_BITS"),
                         ({"n": 32, "n_valid": 30, "k_ctx": 28}, "OUT_BITS")):
        with pytest.raises(KernelParameterError, match=name):
            TopkParams(**{**good, **change})
    TopkParams(**{**good, "n": 32, "n_valid": 30, "k_ctx": 27})  # 30 - 27 >= K: N need not fit
    p = CONFIGS["small-odd"]
    with pytest.raises(ValueError):
        select(p, np.zeros((1, p.n), np.int64), np.zeros((1, 2), np.int64))
    pb = CONFIGS["small-bitmap"]
    with pytest.raises(ValueError):  # a bitmap of the wrong length
        select(pb, np.zeros((1, pb.n), np.int64), np.zeros((1, pb.n - 1), bool))
    # fewer than k eligible: the empty slots carry N
    assert topk(np.zeros((1, 4)), 3, 4, np.array([[0, 1]])).tolist() == [[2, 3, 4]]
    assert topk(np.arange(6)[None], 3, 5, seen=np.array([[1, 1, 1, 0, 1, 0]])).tolist() == [[3, 6, 6]]
    assert hdl_params(p)["LANES_PER_SORTER"] == 2 and cycles(p).per_query == 12
    assert hdl_params(pb)["SEEN_MODE"] == 2 and "EXCLUDE_SEEN" not in hdl_params(pb)
    assert cycles(pb).per_query == 12 and pb.in1_bits == 4 and pb.in1_beats == 6
    assert bitmap_beats(pb, np.eye(1, 24, 5, dtype=bool)) == [0, 2, 0, 0, 0, 0]
    # the alias: exclude_seen picks the mode when seen_mode is not given; seen_mode wins
    alias = {k: v for k, v in good.items() if k not in ("seen_mode", "exclude_seen")}
    assert TopkParams(**alias).seen_mode == 1 and TopkParams(**alias, exclude_seen=False).seen_mode == 0
    assert not TopkParams(**alias, exclude_seen=True, seen_mode=0).exclude_seen


# ------------------------------------------------------------------ RTL
@pytest.mark.rtlsim
@pytest.mark.parametrize("name", IDS)
def test_lint(name, hw_env):
    hwtools.lint(hwtools.SOURCES[TOP], TOP, hdl_params(CONFIGS[name]))


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", IDS)
def test_simulation(name, hw_env):
    p = CONFIGS[name]
    res = run_cocotb(TOP, hdl_params(p), "cocotb_topk_select", settings(p))
    rnd, cyc = res["random"], res["cycles"]
    # bit exact under random gaps and back-pressure (the cocotb test asserts it too)
    assert rnd["finished"] and rnd["n_errors"] == 0, rnd["errors"]
    assert rnd["received_beats"] == rnd["expected_beats"]
    # ids / bitmap words consumed (the bench sends K_CTX ids per query without a filter)
    assert rnd["in1_beats"] == rnd["queries"] * (p.in1_beats or p.k_ctx)
    if p.seen_mode:  # the filter mattered
        assert rnd["filtered_queries"] >= rnd["queries"] // 3, rnd["filtered_queries"]
    if p.short:  # queries with fewer than K eligible items (slots = N), some with none at all
        assert rnd["short_queries"] >= rnd["queries"] // 8, rnd["short_queries"]
        if p.seen_mode == 2:
            assert rnd["empty_queries"] >= rnd["queries"] // 8, rnd["empty_queries"]
    # cycles and latency without gaps / back-pressure
    assert cyc["finished"] and cyc["n_errors"] == 0, cyc["errors"]
    want = cycles(p)
    got = cyc["cycles_per_query"]
    lat = cyc["latency"]
    print(f"\n{name}: {got:.2f} cycles/query in (expected {want.per_query}), "
          f"{cyc['out_cycles_per_query']:.2f} out; latency last in0 -> last out0 beat: "
          f"min {min(lat)} max {max(lat)} (expected {want.latency})")
    assert math.isclose(got, want.per_query, abs_tol=1e-9), (got, want)
    assert math.isclose(cyc["out_cycles_per_query"], want.per_query, abs_tol=1e-9)
    assert max(lat) == want.latency, lat
    assert max(cyc["input_spans"]) <= want.per_query, cyc["input_spans"]
    # in1 at the scores' rate, starting with them: the same rate and latency
    pc = res["paced"]
    assert pc["finished"] and pc["n_errors"] == 0, pc["errors"]
    print(f"{name} paced in1: {pc['cycles_per_query']:.2f} in, "
          f"{pc['out_cycles_per_query']:.2f} out, latency max {max(pc['latency'])}")
    assert math.isclose(pc["cycles_per_query"], want.per_query, abs_tol=1e-9), pc["cycles_per_query"]
    assert math.isclose(pc["out_cycles_per_query"], want.per_query, abs_tol=1e-9)
    assert max(pc["latency"]) == want.latency, pc["latency"]


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", RESOURCE_IDS)
def test_resources(name, hw_env):
    p = CONFIGS[name]
    t0 = time.monotonic()
    stat = yosys_cached(TOP, hdl_params(p))
    took = time.monotonic() - t0
    regs = register_bits(p)
    print(f"\n{name}: yosys LUT {stat['LUT']} + LUTRAM {stat['LUTRAM']} = "
          f"{stat['LUT'] + stat['LUTRAM']}, FF {stat['FF']} (sorter lists + shadow bank "
          f"{regs}), CARRY4 {stat['CARRY4']}, DSP {stat['DSP']}, BRAM18 {stat['BRAM18']} "
          f"({took:.0f} s{' cached' if took < 2 else ''})")
    assert stat["DSP"] == 0 and stat["BRAM18"] == 0
    assert regs <= stat["FF"] <= regs + 40 * p.sorters + 200
    if name == "demo-bitmap":  # the brief's budget (xc7z020: 53200 LUT, 106400 FF)
        assert stat["LUT"] + stat["LUTRAM"] <= 10000, stat

