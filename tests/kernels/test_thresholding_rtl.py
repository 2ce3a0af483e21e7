"""thresholding_stream RTL: Verilator lint, cocotb simulation bit exact against the golden model
(every input value, ties x == T, random gaps and back-pressure), cycles per vector (exactly
C/PE), Yosys figures of the demo configurations."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import pytest
from kernels._params import int_range
from kernels.thresholding import golden
from kernels.thresholding.golden import ThresholdParams

from conftest import run_cocotb, yosys_cached
from kernels import hwtools

TOP = "thresholding_stream"


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little"))


def _sorted_rows(name: str, rows: int, n: int, lo: int, hi: int) -> list[list[int]]:
    """Ascending rows (FINN's layout), duplicates allowed."""
    return np.sort(_rng(name).integers(lo, hi + 1, size=(rows, n)), axis=1).tolist()


def _configs() -> dict[str, ThresholdParams]:
    return {
        # the demo's two thresholding layers
        "demo-int8-shared": ThresholdParams(
            thresholds=_sorted_rows("demo-int8-shared", 1, 15, -64, 63), c=64, pe=64, in_bits=8,
            in_signed=True, t_bits=7, bias=-8, out_bits=4, out_signed=True),
        "demo-int10-perchannel": ThresholdParams(
            thresholds=_sorted_rows("demo-int10-perchannel", 64, 15, -256, 255), c=64, pe=32,
            in_bits=10, in_signed=True, t_bits=9, bias=0, out_bits=4, out_signed=False),
        # PE < C, unsorted rows, thresholds beyond the UINT4 input range on both sides
        "odd-uint4-unsorted": ThresholdParams(
            thresholds=_rng("odd").integers(-20, 21, size=(6, 3)).tolist(), c=6, pe=2, in_bits=4,
            in_signed=False, t_bits=6, bias=1, out_bits=3, out_signed=False),
        # PE = 1, shared row, signed output around 0, T wider than the input
        "pe=1-int3-shared": ThresholdParams(
            thresholds=_sorted_rows("pe1", 1, 7, -6, 5), c=5, pe=1, in_bits=3, in_signed=True,
            t_bits=5, bias=-4, out_bits=4, out_signed=True),
    }


CONFIGS = _configs()
IDS = list(CONFIGS)
DEMO = ("demo-int8-shared", "demo-int10-perchannel")


def settings(p: ThresholdParams) -> dict:
    d = dataclasses.asdict(p)
    d["thresholds"] = [list(r) for r in p.thresholds]
    return {"params": d, "seed": 2024, "vectors": max(48, min(200, 1500 // p.fold)),
            "cycle_vectors": max(16, min(48, 400 // p.fold)), "stall_len": [10, 60]}


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", IDS)
def test_lint(name, hw_env):
    hwtools.lint(hwtools.SOURCES[TOP], TOP, golden.hdl_params(CONFIGS[name]))


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", IDS)
def test_simulation(name, hw_env):
    p = CONFIGS[name]
    res = run_cocotb(TOP, golden.hdl_params(p), "cocotb_thresholding", settings(p))
    rnd, cyc = res["random"], res["cycles"]
    assert rnd["finished"] and rnd["n_errors"] == 0, rnd["errors"]
    assert rnd["received_beats"] == rnd["expected_beats"]
    assert rnd["ties"] > 0
    if p.rows == 1:  # every output value some input in range reaches (the sweep has them all)
        lo, hi = int_range(p.in_bits, p.in_signed)
        reach = golden.threshold(np.arange(lo, hi + 1)[:, None], p.t_matrix(), p.bias)
        assert set(rnd["outputs_seen"]) == {int(v) for v in reach.reshape(-1)}
    assert cyc["finished"] and cyc["n_errors"] == 0, cyc["errors"]
    want = p.expected_cycles()
    ins, outs = cyc["in_start_diffs"], cyc["out_start_diffs"]
    print(f"\n{name}: C/PE = {want}; vector starts every {sorted(set(ins))} cycles in, "
          f"{sorted(set(outs))} out, latency {cyc['latency']}, {rnd['ties']} ties, outputs "
          f"{rnd['outputs_seen']}")
    assert set(ins) == {want} and set(outs) == {want}, (ins, outs)


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", DEMO)
def test_resources(name, hw_env):
    p = CONFIGS[name]
    t0 = time.monotonic()
    stat = yosys_cached(TOP, golden.hdl_params(p))
    took = time.monotonic() - t0
    print(f"\n{name}: yosys LUT {stat['LUT']} + LUTRAM {stat['LUTRAM']}, FF {stat['FF']}, "
          f"CARRY4 {stat['CARRY4']}, DSP {stat['DSP']}, BRAM18 {stat['BRAM18']} "
          f"({stat['LUT'] / p.pe:.1f} LUT/lane; {took:.0f} s, 0 if cached)")
    assert stat["DSP"] == 0 and stat["BRAM18"] == 0


# ------------------------------------------------------------------ golden model (no simulator)
def test_golden_threshold_and_validation():
    t = np.array([[-3, 0, 0, 5], [9, -1, 2, 2]])  # per channel, second row unsorted
    x = np.array([[-4, 0], [5, 2], [0, 9]])
    want = [[sum(int(x[b, c] >= v) for v in t[c]) - 2 for c in range(2)] for b in range(3)]
    assert golden.threshold(x, t, -2).tolist() == want
    assert golden.threshold(x, t[:1], 0).tolist() == [[0, 3], [4, 3], [3, 4]]
    p = ThresholdParams(thresholds=t.tolist(), c=2, pe=1, in_bits=5, t_bits=5, bias=-2,
                        out_bits=3, out_signed=True)
    assert not p.sorted and p.rows == 2
    assert golden.packed_thresholds(p) & 31 == (-3) & 31
    with pytest.raises(ValueError):  # 0 .. 4 does not fit INT2
        ThresholdParams(thresholds=[[1, 2, 3, 4]], c=2, pe=2, in_bits=4, t_bits=4, out_bits=2,
                        out_signed=True)
    with pytest.raises(ValueError):  # threshold outside INT4
        ThresholdParams(thresholds=[[9]], c=2, pe=2, in_bits=4, t_bits=4)
