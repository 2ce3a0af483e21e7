"""cocotb bench of mvau_stream (run by test_matrix_vector_rtl.py, not by pytest).

Two tests on one build: ``random_traffic`` (random gaps on in0, random back-pressure and long
stalls on out0; bit exact against golden ``mvau``) and ``throughput`` (no gaps, no
back-pressure; cycle stamps of every transfer). The weights come from the .npy file the pytest
side wrote next to the weight memory file the RTL reads. Results go to the JSON file pytest reads.
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
from kernels.matrix_vector.golden import MvauParams, mvau


def make_vectors(p: MvauParams, w: np.ndarray, nv: int, rng: random.Random) -> np.ndarray:
    """nv input vectors: all min, all max, the vectors that give the largest and the smallest
    y of the whole layer (each x[i] at the input bound matching the sign of W[i, o]), then
    random ones (every fourth with only extreme values)."""
    lo, hi = int_range(p.in_bits, p.in_signed)
    ymax_cols = np.where(w > 0, w * hi, w * lo).sum(axis=0)
    ymin_cols = np.where(w > 0, w * lo, w * hi).sum(axis=0)
    o_max, o_min = int(np.argmax(ymax_cols)), int(np.argmin(ymin_cols))
    fixed = [np.full(p.mw, lo), np.full(p.mw, hi),
             np.where(w[:, o_max] > 0, hi, lo), np.where(w[:, o_min] > 0, lo, hi)]
    x = np.zeros((nv, p.mw), np.int64)
    for v in range(nv):
        if v < len(fixed):
            x[v] = fixed[v]
        elif v % 4 == 3:
            x[v] = [rng.choice((lo, hi)) for _ in range(p.mw)]
        else:
            x[v] = [rng.randint(lo, hi) for _ in range(p.mw)]
    return x


async def run(dut, name: str, gap: float, bp: float, stall: float, nv: int) -> dict:
    cfg = config()
    p = MvauParams(**cfg["params"])
    w = p.check_weights(np.load(cfg["weights"]))
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n, {dut.in0_V_TVALID: 0, dut.out0_V_TREADY: 0})
    x = make_vectors(p, w, nv, rng)
    y = mvau(x, w)
    lo, hi = int_range(p.out_bits, True)
    assert lo <= y.min() and y.max() <= hi, "out_bits too narrow for the test vectors"
    in0 = [pack(x[v, s * p.simd:(s + 1) * p.simd], p.in_bits) for v in range(nv) for s in range(p.sf)]
    out = [pack(y[v, n * p.pe:(n + 1) * p.pe], p.out_bits) for v in range(nv) for n in range(p.nf)]
    sb = Scoreboard(out, p.pe, p.out_bits, True, p.nf)
    src = Source(dut.ap_clk, dut.in0_V_TDATA, dut.in0_V_TVALID, dut.in0_V_TREADY, [in0],
                 p.simd * p.in_bits, gap, rng)
    sink = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb, bp, rng,
                stall=stall, stall_len=tuple(cfg["stall_len"]))
    for c in (src, sink):
        cocotb.start_soon(c.run())
    per_vec = p.nf * p.sf
    budget = 100 + int(nv * per_vec * (1 + 4 * gap) * (1 + 6 * bp) * (1 + 200 * stall))
    finished = await wait_done(dut.ap_clk, sb, budget)
    in_starts = [s for s, _ in spans(src.accepted[0], p.sf)]
    out_starts = [s for s, _ in spans(sink.cycles, p.nf)]
    result = {
        **sb.report(),
        "finished": finished,
        "vectors": nv,
        "y_min": int(y.min()),
        "y_max": int(y.max()),
        "expected_cycles": p.expected_cycles(),
        "in_start_diffs": [in_starts[i + 1] - in_starts[i] for i in range(len(in_starts) - 1)],
        "out_start_diffs": [out_starts[i + 1] - out_starts[i] for i in range(len(out_starts) - 1)],
        # from the last input beat of vector 0 to its first output beat
        "latency": (sink.cycles[0] - src.accepted[0][p.sf - 1]) if sink.cycles else None,
        "total_cycles": (sink.cycles[-1] - src.accepted[0][0] + 1) if sink.cycles else None,
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
