"""cocotb bench of thresholding_stream (run by test_thresholding_rtl.py, not by pytest).

Two tests on one build: ``random_traffic`` (random gaps on in0, random back-pressure and long
stalls on out0; bit exact against golden ``threshold``) and ``throughput`` (no gaps, no
back-pressure; cycle stamps of every transfer). Results go to the JSON file pytest reads.
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
    pack,
    save_result,
    spans,
    start_and_reset,
    wait_done,
)
from kernels._params import int_range
from kernels.thresholding.golden import ThresholdParams


def make_vectors(p: ThresholdParams, nv: int, rng: random.Random) -> np.ndarray:
    """Sweep vectors first (together they hold every input value once), then random vectors
    whose channels take, with equal chance, a random value, the input bounds, or a threshold
    of the channel's row or one below it (ties and the steps next to them)."""
    lo, hi = int_range(p.in_bits, p.in_signed)
    size = hi - lo + 1
    t = p.t_matrix()
    sweep = -(-size // p.c)
    x = np.zeros((max(nv, sweep + 4), p.c), np.int64)
    for v in range(len(x)):
        for c in range(p.c):
            if v < sweep:
                x[v, c] = lo + (v * p.c + c) % size
                continue
            row = t[0 if p.rows == 1 else c]
            pick = rng.randrange(4)
            if pick == 0:
                val = rng.randint(lo, hi)
            elif pick == 1:
                val = rng.choice((lo, hi))
            else:
                val = int(rng.choice(list(row))) - (pick == 3)
            x[v, c] = min(max(val, lo), hi)
    return x


async def run(dut, name: str, gap: float, bp: float, stall: float, nv: int) -> dict:
    cfg = config()
    p = ThresholdParams(**cfg["params"])
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n, {dut.in0_V_TVALID: 0, dut.out0_V_TREADY: 0})
    x = make_vectors(p, nv, rng)
    y = p.apply(x)
    nv = len(x)
    in0 = [pack(x[v, f * p.pe:(f + 1) * p.pe], p.in_bits) for v in range(nv) for f in range(p.fold)]
    out = [pack(y[v, f * p.pe:(f + 1) * p.pe], p.out_bits) for v in range(nv) for f in range(p.fold)]
    sb = Scoreboard(out, p.pe, p.out_bits, p.out_signed, p.fold)
    src = Source(dut.ap_clk, dut.in0_V_TDATA, dut.in0_V_TVALID, dut.in0_V_TREADY, [in0],
                 p.pe * p.in_bits, gap, rng)
    sink = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb, bp, rng,
                stall=stall, stall_len=tuple(cfg["stall_len"]))
    for c in (src, sink):
        cocotb.start_soon(c.run())
    budget = 100 + int(len(in0) * (1 + 4 * gap) * (1 + 6 * bp) * (1 + 200 * stall))
    finished = await wait_done(dut.ap_clk, sb, budget)
    in_starts = [s for s, _ in spans(src.accepted[0], p.fold)]
    out_starts = [s for s, _ in spans(sink.cycles, p.fold)]
    xt = x[..., None]
    tm = p.t_matrix()
    result = {
        **sb.report(),
        "finished": finished,
        "vectors": nv,
        "ties": int((xt == tm).sum()),
        "outputs_seen": sorted({int(v) for v in y.reshape(-1)}),
        "expected_cycles": p.expected_cycles(),
        "in_start_diffs": [in_starts[i + 1] - in_starts[i] for i in range(len(in_starts) - 1)],
        "out_start_diffs": [out_starts[i + 1] - out_starts[i] for i in range(len(out_starts) - 1)],
        "latency": (sink.cycles[0] - src.accepted[0][0]) if sink.cycles else None,
    }
    save_result(name, result)
    return result


@cocotb.test()
async def random_traffic(dut):
    cfg = config()
    r = await run(dut, "random", gap=0.3, bp=0.35, stall=0.01, nv=cfg["vectors"])
    assert r["finished"], f"timeout: {r['received_beats']} of {r['expected_beats']} output beats"
    assert not r["errors"], "\n".join(r["errors"])


@cocotb.test()
async def throughput(dut):
    cfg = config()
    r = await run(dut, "cycles", gap=0.0, bp=0.0, stall=0.0, nv=cfg["cycle_vectors"])
    assert r["finished"] and not r["errors"], r
