"""cocotb bench of modality_fusion (run by test_modality_fusion_rtl.py, not by pytest).

``random_traffic``: the M input streams with independent random gaps, random back-pressure and
long stalls on out0, bit exact against golden ``fuse``; ``throughput``: no gaps, no
back-pressure, cycle stamps. Results go to the JSON file pytest reads.
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
    steady_cycles,
    wait_done,
)
from kernels._params import int_range
from kernels.modality_fusion.golden import FusionParams, fuse


def make_items(p: FusionParams, n: int, rng: random.Random) -> np.ndarray:
    """(M, n, D) inputs: random, with every third item at the range limits (saturation)."""
    lo, hi = int_range(p.in_bits, p.in_signed)
    x = np.zeros((p.m, n, p.d), np.int64)
    for i in range(n):
        for m in range(p.m):
            for d in range(p.d):
                x[m, i, d] = rng.choice((lo, hi)) if i % 3 == 2 else rng.randint(lo, hi)
    return x


async def run(dut, name: str, gap: float, bp: float, stall: float, n: int) -> dict:
    cfg = config()
    p = FusionParams(**{**cfg["params"], "weights": tuple(cfg["params"]["weights"])})
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n,
                          {dut.in_TVALID: 0, dut.out0_V_TREADY: 0})
    x = make_items(p, n, rng)
    want = fuse(p, x)  # (n, D)
    fold = p.fold
    ins = [[pack(x[m, i, f * p.pe:(f + 1) * p.pe], p.in_bits) for i in range(n) for f in range(fold)]
           for m in range(p.m)]
    out = [pack(want[i, f * p.pe:(f + 1) * p.pe], p.out_bits) for i in range(n) for f in range(fold)]
    sb = Scoreboard(out, p.pe, p.out_bits, p.out_signed, fold)
    src = Source(dut.ap_clk, dut.in_TDATA, dut.in_TVALID, dut.in_TREADY, ins, p.pe * p.in_bits,
                 gap, rng)
    sink = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb, bp, rng,
                stall=stall, stall_len=tuple(cfg["stall_len"]))
    cocotb.start_soon(src.run())
    cocotb.start_soon(sink.run())
    budget = 50 + int(n * fold * (1 + 6 * gap) * (1 + 6 * bp) * (1 + 200 * stall))
    finished = await wait_done(dut.ap_clk, sb, budget)
    # a beat is consumed by the join when the last of the M streams has delivered it
    joined = [max(src.accepted[m][b] for m in range(p.m))
              for b in range(min(len(a) for a in src.accepted))]
    starts = [s for s, _ in spans(joined, fold)]
    out_starts = [s for s, _ in spans(sink.cycles, fold)]
    result = {
        **sb.report(),
        "finished": finished,
        "items": n,
        "expected_cycles": p.expected_cycles(),
        "cycles_per_item": steady_cycles(starts),
        "out_cycles_per_item": steady_cycles(out_starts),
        "latency": (sink.cycles[0] - joined[0]) if sink.cycles else None,
        "in_beats": [len(a) for a in src.accepted],
        "saturated": int(np.sum((want == int_range(p.out_bits, p.out_signed)[0])
                                | (want == int_range(p.out_bits, p.out_signed)[1]))),
    }
    save_result(name, result)
    return result


@cocotb.test()
async def random_traffic(dut):
    cfg = config()
    r = await run(dut, "random", gap=0.3, bp=0.35, stall=0.01, n=cfg["items"])
    assert r["finished"], f"timeout: {r['received_beats']} of {r['expected_beats']} output beats"
    assert not r["errors"], "\n".join(r["errors"])


@cocotb.test()
async def throughput(dut):
    cfg = config()
    r = await run(dut, "cycles", gap=0.0, bp=0.0, stall=0.0, n=cfg["cycle_items"])
    assert r["finished"] and not r["errors"], r
