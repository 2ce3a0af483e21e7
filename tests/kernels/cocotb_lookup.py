"""cocotb bench of lookup_rom (run by test_lookup_rtl.py, not by pytest): random ids with random
input gaps and output back-pressure, bit exact against golden ``lookup``; then a gap-free run
for cycles per id."""

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
    start_and_reset,
    steady_cycles,
    wait_done,
)
from kernels.lookup.golden import lookup


async def run(dut, name: str, gap: float, bp: float, n_ids: int) -> dict:
    cfg = config()
    n, d, pe, bits, id_bits = (cfg[k] for k in ("n", "d", "pe", "bits", "id_bits"))
    table = np.load(cfg["table"]).astype(np.int64)
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n, {dut.in0_V_TVALID: 0, dut.out0_V_TREADY: 0})
    ids = [0, n - 1] + [rng.randrange(n) for _ in range(n_ids - 2)]
    want = lookup(table, np.array([ids]))[0]  # (n_ids, d)
    fold = d // pe
    mask = (1 << bits) - 1
    out = [sum((int(v) & mask) << (j * bits) for j, v in enumerate(row[f * pe:(f + 1) * pe]))
           for row in want for f in range(fold)]
    sb = Scoreboard(out, pe, bits, True, fold)
    src = Source(dut.ap_clk, dut.in0_V_TDATA, dut.in0_V_TVALID, dut.in0_V_TREADY, [ids], id_bits, gap, rng)
    sink = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb, bp, rng,
                stall=0.01 if bp else 0.0, stall_len=(5, 30))
    for c in (src, sink):
        cocotb.start_soon(c.run())
    finished = await wait_done(dut.ap_clk, sb, 200 + len(out) * 20)
    res = {**sb.report(), "finished": finished, "cycles_per_id": steady_cycles(src.accepted[0]),
           "expected_cycles_per_id": fold}
    save_result(name, res)
    return res


@cocotb.test()
async def random_traffic(dut):
    r = await run(dut, "random", gap=0.3, bp=0.35, n_ids=300)
    assert r["finished"] and not r["errors"], r


@cocotb.test()
async def throughput(dut):
    r = await run(dut, "cycles", gap=0.0, bp=0.0, n_ids=60)
    assert r["finished"] and not r["errors"], r
