"""cocotb bench of attention_aggregate (run by test_attention_aggregate_rtl.py, not by pytest).

Two tests on one build: ``random_traffic`` (random gaps on in0 and in1, random back-pressure and
long stalls on out0 and out1; bit exact against golden ``attend``: u on out0, the weights a on
out1 when EMIT_WEIGHTS) and ``throughput`` (no gaps, no back-pressure; cycle stamps of every
transfer). Results go to the JSON file pytest reads.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotb_axis import (
    Scoreboard,
    Sink,
    Source,
    config,
    pack,
    save_result,
    spans,
    start_and_reset,
    steady_cycles,
)
from kernels._params import int_range
from kernels.attention_aggregate.golden import AttentionParams, attend, pack_meta


def make_params(cfg: dict) -> AttentionParams:
    kw = dict(cfg["params"])
    for f in ("q", "b_type", "b_pos"):
        kw[f] = tuple(kw[f])
    return AttentionParams(**kw)


def make_queries(p: AttentionParams, nq: int, rng: random.Random):
    """nq queries: n = K, 0, 1, K-1 first (edge cases), then random n; real slots at random
    positions with random non-null ids, types and buckets; padding slots carry junk features,
    types and buckets (any value of their fields); every fourth query uses extreme values,
    every fifth repeats one item in every slot (equal logits)."""
    lo, hi = int_range(p.in_bits, p.in_signed)
    x = np.zeros((nq, p.k, p.d), np.int64)
    meta = np.zeros((nq, p.k, 3), np.int64)
    fixed = [p.k, 0, 1, max(p.k - 1, 0)]
    for q in range(nq):
        n = fixed[q] if q < len(fixed) else rng.randint(0, p.k)
        real = set(rng.sample(range(p.k), n))
        for k in range(p.k):
            if k in real:
                i = rng.randrange(1 << p.id_bits)
                while i == p.null_id:
                    i = rng.randrange(1 << p.id_bits)
                meta[q, k] = (i, rng.randrange(p.n_types), rng.randrange(p.n_buckets))
            else:
                meta[q, k] = (p.null_id, rng.randrange(1 << p.type_bits), rng.randrange(1 << p.bucket_bits))
        mode = q % 4
        for k in range(p.k):
            for d in range(p.d):
                if mode == 3:
                    x[q, k, d] = rng.choice((lo, hi))
                elif mode == 2:
                    x[q, k, d] = hi if (q // 4) % 2 else lo
                else:
                    x[q, k, d] = rng.randint(lo, hi)
        if q % 5 == 4:
            x[q, :] = x[q, 0]
            meta[q, :, 1] = rng.randrange(p.n_types)
            meta[q, :, 2] = rng.randrange(p.n_buckets)
    return x, meta


def streams(p: AttentionParams, x, meta, u, a):
    in0 = [pack(x[q, k, f * p.pe:(f + 1) * p.pe], p.in_bits)
           for q in range(len(x)) for k in range(p.k) for f in range(p.fold)]
    in1 = [int(w) for w in pack_meta(p, meta).reshape(-1)]
    out0 = [pack(u[q, f * p.pe:(f + 1) * p.pe], p.out_bits) for q in range(len(u)) for f in range(p.fold)]
    out1 = [int(v) for v in a.reshape(-1)]
    return in0, in1, out0, out1


async def wait_all(clk, boards, timeout: int, drain: int = 40) -> bool:
    for _ in range(timeout):
        if all(b.done for b in boards):
            break
        await RisingEdge(clk)
    else:
        return False
    for _ in range(drain):
        await RisingEdge(clk)
    return True


async def run(dut, name: str, gap: float, bp: float, stall: float, nq: int) -> dict:
    cfg = config()
    p = make_params(cfg)
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n,
                          {dut.in0_V_TVALID: 0, dut.in1_V_TVALID: 0, dut.out0_V_TREADY: 0,
                           dut.out1_V_TREADY: 0})
    x, meta = make_queries(p, nq, rng)
    u, a = attend(p, x, meta)
    in0, in1, out0, out1 = streams(p, x, meta, u, a)
    sb0 = Scoreboard(out0, p.pe, p.out_bits, p.out_signed, p.fold)
    sb1 = Scoreboard(out1 if p.emit_weights else [], 1, p.weight_bits, False, p.k)
    src0 = Source(dut.ap_clk, dut.in0_V_TDATA, dut.in0_V_TVALID, dut.in0_V_TREADY, [in0],
                  p.pe * p.in_bits, gap, rng)
    src1 = Source(dut.ap_clk, dut.in1_V_TDATA, dut.in1_V_TVALID, dut.in1_V_TREADY, [in1],
                  p.meta_bits, gap, rng)
    sink0 = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb0, bp, rng,
                 stall=stall, stall_len=tuple(cfg["stall_len"]))
    sink1 = Sink(dut.ap_clk, dut.out1_V_TDATA, dut.out1_V_TVALID, dut.out1_V_TREADY, sb1, bp, rng,
                 stall=stall, stall_len=tuple(cfg["stall_len"]))
    for c in (src0, src1, sink0, sink1):
        cocotb.start_soon(c.run())
    per_query = max(p.k * p.fold, cfg["expected"][0])
    budget = 200 + int(nq * per_query * (1 + 4 * gap) * (1 + 6 * bp) * (1 + 200 * stall))
    finished = await wait_all(dut.ap_clk, [sb0, sb1], budget)
    beats = p.k * p.fold
    starts = [s for s, _ in spans(src0.accepted[0], beats)]
    out_starts = [s for s, _ in spans(sink0.cycles, p.fold)]
    rep0, rep1 = sb0.report(), sb1.report()
    result = {
        "finished": finished,
        "errors": rep0["errors"] + rep1["errors"],
        "n_errors": rep0["n_errors"] + rep1["n_errors"],
        "out0": rep0, "out1": rep1,
        "queries": nq,
        "n_per_query": [int(v) for v in (meta[..., 0] != p.null_id).sum(axis=1)],
        # (the first two queries fill both banks at once: the steady state starts with the third)
        "cycles_per_query": steady_cycles(starts[1:]),
        "out_cycles_per_query": steady_cycles(out_starts),
        # from the acceptance of query 0's last in0 beat to its first out0 beat
        "latency": (sink0.cycles[0] - src0.accepted[0][beats - 1]) if sink0.cycles else None,
        "distinct_weights": len({int(v) for v in a.reshape(-1)}),
    }
    save_result(name, result)
    return result


@cocotb.test()
async def random_traffic(dut):
    cfg = config()
    r = await run(dut, "random", gap=0.3, bp=0.35, stall=0.01, nq=cfg["queries"])
    assert r["finished"], f"timeout: {r['out0']} {r['out1']}"
    assert not r["errors"], "\n".join(r["errors"])


@cocotb.test()
async def throughput(dut):
    cfg = config()
    r = await run(dut, "cycles", gap=0.0, bp=0.0, stall=0.0, nq=cfg["cycle_queries"])
    assert r["finished"] and not r["errors"], r
