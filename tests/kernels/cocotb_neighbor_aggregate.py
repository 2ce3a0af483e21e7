"""cocotb bench of neighbor_aggregate (run by test_neighbor_aggregate_rtl.py, not by pytest).

Two tests on one build: ``random_traffic`` (random gaps on in0 and in1, random back-pressure
and long stalls on out0; bit exact against golden ``aggregate``) and ``throughput`` (no gaps,
no back-pressure; cycle stamps of every transfer). Results go to the JSON file pytest reads.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb_axis import (
    Scoreboard,
    Sink,
    Source,
    config,
    save_result,
    spans,
    start_and_reset,
    steady_cycles,
    wait_done,
)
from kernels._params import int_range
from kernels.neighbor_aggregate.golden import AggregateParams, aggregate


def make_queries(p: AggregateParams, nq: int, rng: random.Random):
    """nq queries: n = K, 0, 1, K-1 first (edge cases), then random n; real slots at random
    positions with random non-null ids, the other slots NULL_ID with junk features; every
    fourth query uses extreme feature values."""
    lo, hi = int_range(p.in_bits, p.in_signed)
    feats = np.zeros((nq, p.k, p.d), np.int64)
    ids = np.full((nq, p.k), p.null_id, np.int64)
    fixed = [p.k, 0, 1, max(p.k - 1, 0)]
    for q in range(nq):
        n = fixed[q] if q < len(fixed) else rng.randint(0, p.k)
        for k in rng.sample(range(p.k), n):
            i = rng.randrange(1 << p.id_bits)
            while i == p.null_id:
                i = rng.randrange(1 << p.id_bits)
            ids[q, k] = i
        mode = q % 4
        for k in range(p.k):
            for d in range(p.d):
                if mode == 3:
                    feats[q, k, d] = rng.choice((lo, hi))
                elif mode == 2:
                    feats[q, k, d] = hi if (q // 4) % 2 else lo
                else:
                    feats[q, k, d] = rng.randint(lo, hi)
    return feats, ids


def streams(p: AggregateParams, feats, ids, want):
    fold = p.fold
    in0 = [[(int(v)) for v in feats[q, k, f * p.pe:(f + 1) * p.pe]]
           for q in range(len(feats)) for k in range(p.k) for f in range(fold)]
    in0 = [sum((v & ((1 << p.in_bits) - 1)) << (j * p.in_bits) for j, v in enumerate(b)) for b in in0]
    in1 = [int(i) for i in ids.reshape(-1)]
    out = [sum((int(v) & ((1 << p.out_bits) - 1)) << (j * p.out_bits)
               for j, v in enumerate(want[q, f * p.pe:(f + 1) * p.pe]))
           for q in range(len(want)) for f in range(fold)]
    return in0, in1, out


async def run(dut, name: str, gap: float, bp: float, stall: float, nq: int) -> dict:
    cfg = config()
    p = AggregateParams(**cfg["params"])
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n,
                          {dut.in0_V_TVALID: 0, dut.in1_V_TVALID: 0, dut.out0_V_TREADY: 0})
    feats, ids = make_queries(p, nq, rng)
    want = aggregate(p, feats, ids)
    in0, in1, out = streams(p, feats, ids, want)
    sb = Scoreboard(out, p.pe, p.out_bits, p.out_signed, p.fold)
    src0 = Source(dut.ap_clk, dut.in0_V_TDATA, dut.in0_V_TVALID, dut.in0_V_TREADY, [in0],
                  p.pe * p.in_bits, gap, rng)
    src1 = Source(dut.ap_clk, dut.in1_V_TDATA, dut.in1_V_TVALID, dut.in1_V_TREADY, [in1],
                  p.id_bits, gap, rng)
    sink = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb, bp, rng,
                stall=stall, stall_len=tuple(cfg["stall_len"]))
    for c in (src0, src1, sink):
        cocotb.start_soon(c.run())
    budget = 50 + int(len(in0) * (1 + 4 * gap) * (1 + 6 * bp) * (1 + 200 * stall))
    finished = await wait_done(dut.ap_clk, sb, budget)
    per_query = p.k * p.fold
    starts = [s for s, _ in spans(src0.accepted[0], per_query)]
    out_starts = [s for s, _ in spans(sink.cycles, p.fold)]
    result = {
        **sb.report(),
        "finished": finished,
        "queries": nq,
        "n_per_query": [int(x) for x in (ids != p.null_id).sum(axis=1)],
        "expected_cycles": p.expected_cycles(),
        "cycles_per_query": steady_cycles(starts),
        "out_cycles_per_query": steady_cycles(out_starts),
        "input_spans": [last - first + 1 for first, last in spans(src0.accepted[0], per_query)],
        # from the first beat of query 0's last neighbour to its first output beat
        "latency": (sink.cycles[0] - src0.accepted[0][(p.k - 1) * p.fold]) if sink.cycles else None,
        "in0_beats": len(src0.accepted[0]),
        "in1_beats": len(src1.accepted[0]),
    }
    save_result(name, result)
    return result


@cocotb.test()
async def random_traffic(dut):
    cfg = config()
    r = await run(dut, "random", gap=0.3, bp=0.35, stall=0.01, nq=cfg["queries"])
    assert r["finished"], f"timeout: {r['received_beats']} of {r['expected_beats']} output beats"
    assert not r["errors"], "\n".join(r["errors"])


@cocotb.test()
async def throughput(dut):
    cfg = config()
    r = await run(dut, "cycles", gap=0.0, bp=0.0, stall=0.0, nq=cfg["cycle_queries"])
    assert r["finished"] and not r["errors"], r
