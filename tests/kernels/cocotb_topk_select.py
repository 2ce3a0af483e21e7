"""cocotb bench of topk_select (run by test_topk_select_rtl.py, not by pytest).

Three tests on one build: ``random_traffic`` (random gaps on in0 and in1 - the ids / bitmaps
often lag behind or run ahead of the scores -, random back-pressure and long stalls on out0;
bit exact against golden ``select``), ``throughput`` (no gaps, no back-pressure; cycle stamps
of every transfer: cycles per query, latency) and ``paced`` (as throughput, but in1 paced to
the scores' rate and starting with them: a query's in1 beats spread evenly over the golden
cycles per query). Results go to the JSON file pytest reads.
"""

from __future__ import annotations

import dataclasses
import random

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb_axis import (
    Scoreboard,
    Sink,
    Source,
    config,
    cycle,
    pack,
    save_result,
    spans,
    start_and_reset,
    steady_cycles,
    wait_done,
)
from kernels.topk_select.golden import TopkParams, bitmap_beats, cycles, select

#: score patterns, cycled over the queries
MODES = ("ties", "all-equal", "extremes", "all-min", "random", "ties-seen-top")
#: bitmap patterns (SEEN_MODE 2), cycled over the queries (7 and 6 are coprime: every pair)
BITMAPS = ("sparse", "top", "half", "dense", "almost-all", "all", "none")


def make_bitmap(p: TopkParams, kind: str, best: np.ndarray, rng: random.Random) -> np.ndarray:
    """One query's N-bit history: random density (sparse 2 %, half, dense 90 %), the
    unfiltered best items (each with probability 0.7, plus 5 % random), all valid items but
    0..K-1 (fewer than K eligible), everything, nothing. Padding bits are random."""
    density = {"sparse": 0.02, "top": 0.05, "half": 0.5, "dense": 0.9, "almost-all": 1.0,
               "all": 1.0, "none": 0.0}[kind]
    row = np.array([rng.random() < density for _ in range(p.n)], bool)
    if kind == "top":
        for i in best:
            row[i] |= rng.random() < 0.7
    elif kind == "almost-all":
        for i in rng.sample(range(p.n_valid), rng.randrange(min(p.k, p.n_valid))):
            row[i] = False
    if kind != "all":
        row[p.n_valid:] = [rng.random() < 0.5 for _ in range(p.n - p.n_valid)]
    return row


def make_queries(p: TopkParams, nq: int, rng: random.Random):
    """nq queries of tie-heavy scores (a window of 3..6 values, all equal, only the extreme
    values, all at the minimum, full range) and their filter input: SEEN_MODE 0/1 context ids
    mixing ids of the best items, duplicates, null / out-of-range ids (>= N_VALID) and random
    items (every fourth query: distinct valid ids, so that a short configuration gets queries
    with fewer than K eligible items); SEEN_MODE 2 bitmaps (:func:`make_bitmap`). Padding items
    (index >= N_VALID) often get the maximum score (they must never appear)."""
    lo, hi = p.in_range
    scores = np.zeros((nq, p.n), np.int64)
    ids = np.zeros((nq, p.k_ctx), np.int64)
    bitmaps = np.zeros((nq, p.n), bool)
    plain = dataclasses.replace(p, seen_mode=0)
    id_max = (1 << p.id_bits) - 1
    for q in range(nq):
        mode = MODES[q % len(MODES)]
        if mode in ("ties", "ties-seen-top"):
            w = rng.randint(2, 5)
            base = rng.randint(lo, hi - w)
            row = [rng.randint(base, base + w) for _ in range(p.n)]
        elif mode == "all-equal":
            row = [rng.choice((lo, hi, rng.randint(lo, hi)))] * p.n
        elif mode == "extremes":
            row = [rng.choice((lo, lo + 1, hi - 1, hi)) for _ in range(p.n)]
        elif mode == "all-min":
            row = [lo] * p.n
        else:
            row = [rng.randint(lo, hi) for _ in range(p.n)]
        scores[q] = row
        if q % 2 == 0:
            scores[q, p.n_valid:] = hi
        best = select(plain, scores[q:q + 1])[0]
        best = best[best < p.n]
        bitmaps[q] = make_bitmap(p, BITMAPS[q % len(BITMAPS)], best, rng)
        # context ids: best items (unfiltered order), duplicates, null / out-of-range, random
        if q % 4 == 3:  # distinct valid ids (as many as fit), then duplicates
            m = min(p.n_valid, id_max + 1)
            pool = rng.sample(range(m), min(p.k_ctx, m))
            ids[q] = pool + [rng.choice(pool) for _ in range(p.k_ctx - len(pool))]
            continue
        pool = []
        for _ in range(p.k_ctx):
            r = rng.random()
            if r < 0.35:
                pool.append(int(rng.choice(best)))
            elif r < 0.5 and pool:
                pool.append(rng.choice(pool))
            elif r < 0.65 and id_max >= p.n_valid:
                pool.append(rng.choice((id_max, rng.randint(p.n_valid, id_max))))
            else:
                pool.append(rng.randrange(min(p.n_valid, id_max + 1)))
        ids[q] = pool
    return scores, (bitmaps if p.seen_mode == 2 else ids)


def streams(p: TopkParams, scores, seen, want):
    in0 = [pack(scores[q, b * p.pe:(b + 1) * p.pe], p.in_bits)
           for q in range(len(scores)) for b in range(p.beats)]
    in1 = bitmap_beats(p, seen) if p.seen_mode == 2 else [int(i) for i in seen.reshape(-1)]
    out = [int(v) for v in want.reshape(-1)]
    return in0, in1, out


class PacedSource:
    """in1 at the scores' rate: beat i (of ``per_query_beats`` per query) is presented from
    cycle t0 + floor(i * per_query / per_query_beats) on and held until accepted (t0: the
    first cycle, when in0 starts as well)."""

    def __init__(self, clk, data, valid, ready, beats, width, per_query, per_query_beats, rng):
        self.clk, self.data, self.valid, self.ready = clk, data, valid, ready
        self.beats, self.width, self.rng = beats, width, rng
        self.per_query, self.per_query_beats = per_query, per_query_beats
        self.accepted: list[list[int]] = [[]]

    async def run(self) -> None:
        t0 = cycle()
        i = 0
        while i < len(self.beats):
            due = t0 + i * self.per_query // self.per_query_beats
            on = cycle() >= due
            self.data.value = self.beats[i] if on else self.rng.getrandbits(self.width)
            self.valid.value = int(on)
            await ReadOnly()
            if on and int(self.ready.value):
                self.accepted[0].append(cycle())
                i += 1
            await RisingEdge(self.clk)
        self.valid.value = 0


async def run(dut, name: str, gap: float, gap_ids: float, bp: float, stall: float, nq: int,
              paced: bool = False) -> dict:
    cfg = config()
    p = TopkParams(**cfg["params"])
    rng = random.Random(f"{cfg['seed']}-{name}")
    await start_and_reset(dut, dut.ap_clk, dut.ap_rst_n,
                          {dut.in0_V_TVALID: 0, dut.in1_V_TVALID: 0, dut.out0_V_TREADY: 0})
    scores, seen = make_queries(p, nq, rng)
    want = select(p, scores, seen)
    unfiltered = select(dataclasses.replace(p, seen_mode=0), scores)
    in0, in1, out = streams(p, scores, seen, want)
    sb = Scoreboard(out, 1, p.out_bits, False, p.k)
    src0 = Source(dut.ap_clk, dut.in0_V_TDATA, dut.in0_V_TVALID, dut.in0_V_TREADY, [in0],
                  p.pe * p.in_bits, gap, rng)
    per_query = cycles(p).per_query
    if paced:
        src1 = PacedSource(dut.ap_clk, dut.in1_V_TDATA, dut.in1_V_TVALID, dut.in1_V_TREADY, in1,
                           p.in1_bits, per_query, len(in1) // nq, rng)
    else:
        src1 = Source(dut.ap_clk, dut.in1_V_TDATA, dut.in1_V_TVALID, dut.in1_V_TREADY, [in1],
                      p.in1_bits, gap_ids, rng)
    sink = Sink(dut.ap_clk, dut.out0_V_TDATA, dut.out0_V_TVALID, dut.out0_V_TREADY, sb, bp, rng,
                stall=stall, stall_len=tuple(cfg["stall_len"]))
    for c in (src0, src1, sink):
        cocotb.start_soon(c.run())
    budget = 200 + int(nq * per_query * (1 + 4 * max(gap, gap_ids)) * (1 + 6 * bp) * (1 + 200 * stall))
    finished = await wait_done(dut.ap_clk, sb, budget)
    in_spans = spans(src0.accepted[0], p.beats)
    out_spans = spans(sink.cycles, p.k)
    result = {
        **sb.report(),
        "finished": finished,
        "queries": nq,
        "expected_cycles": per_query,
        # between the last in0 beats of the queries (the beat a query may wait with for the
        # shadow bank; its first beats may run ahead)
        "cycles_per_query": steady_cycles([e for _, e in in_spans]),
        "out_cycles_per_query": steady_cycles([s for s, _ in out_spans]),
        "input_spans": [last - first + 1 for first, last in in_spans],
        # from the cycle the last in0 beat of a query is accepted to its last out0 beat
        "latency": [o - i for (_, i), (_, o) in zip(in_spans, out_spans, strict=False)],
        "in0_beats": len(src0.accepted[0]),
        "in1_beats": len(src1.accepted[0]),
        # the filter changed the answer in that many queries
        "filtered_queries": int((want != unfiltered).any(axis=1).sum()),
        # queries with fewer than K eligible items (slots carrying N)
        "short_queries": int((want == p.n).any(axis=1).sum()),
        "empty_queries": int((want == p.n).all(axis=1).sum()),
        "modes": [MODES[q % len(MODES)] for q in range(nq)],
        "in1_beats_per_query": len(in1) // nq,
    }
    save_result(name, result)
    return result


@cocotb.test()
async def random_traffic(dut):
    cfg = config()
    r = await run(dut, "random", gap=0.3, gap_ids=0.5, bp=0.35, stall=0.01, nq=cfg["queries"])
    assert r["finished"], f"timeout: {r['received_beats']} of {r['expected_beats']} output beats"
    assert not r["errors"], "\n".join(r["errors"])


@cocotb.test()
async def throughput(dut):
    cfg = config()
    r = await run(dut, "cycles", gap=0.0, gap_ids=0.0, bp=0.0, stall=0.0, nq=cfg["cycle_queries"])
    assert r["finished"] and not r["errors"], r


@cocotb.test()
async def paced(dut):
    cfg = config()
    r = await run(dut, "paced", gap=0.0, gap_ids=0.0, bp=0.0, stall=0.0, nq=cfg["cycle_queries"],
                  paced=True)
    assert r["finished"] and not r["errors"], r
