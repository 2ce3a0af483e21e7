"""mvau_stream RTL: Verilator lint, cocotb simulation bit exact against the golden model (random
input gaps, output back-pressure), cycles per vector (exactly NF*SF in steady state), Yosys
figures of the demo configurations."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import pytest
from kernels.matrix_vector import golden
from kernels.matrix_vector.golden import MvauParams

from conftest import build_dir, run_cocotb, yosys_cached
from kernels import hwtools

TOP = "mvau_stream"


@dataclasses.dataclass(frozen=True)
class Case:
    p: MvauParams
    density: float = 1.0     # fraction of non-zero weights before fitting to out_bits
    fit_out: bool = False    # out_bits given: zero weights until every sum fits
    w_lim: int = 0           # weights in [-w_lim, w_lim - 1] instead of the full INT range
    yosys: bool = False      # Yosys figures in the suite (demo layer 1 only: the scoring
    #                          layer's run takes minutes, its figures are in the README)


#: the demo's layer 1 (INT4 x INT4, 10-bit sums: sparse weights that fit, as trained ones do)
#: and scoring layer (UINT4 x INT4, 14 bits hold any INT4 weights); odd shapes, NF = 1,
#: SF = 1, NF = SF = 1, SIMD = 1, DSP products (LUT_MAC 0), sums narrower than the products,
#: the weight ROM in block RAM (RAM_STYLE 1)
CASES = {
    "demo-layer1": Case(MvauParams(mw=64, mh=64, pe=8, simd=16, in_bits=4, in_signed=True,
                                   w_bits=4, out_bits=10, lut_mac=1), density=0.2, fit_out=True,
                        yosys=True),
    "demo-scoring": Case(MvauParams(mw=64, mh=1728, pe=48, simd=16, in_bits=4, in_signed=False,
                                    w_bits=4, out_bits=14, lut_mac=1, ram_style="block")),
    # ^ Yosys figures in the README (slow); the weight ROM in block RAM (as LUT logic the
    #   layer needs more LUTs than the xc7z020 has)
    "odd-uint3-int3": Case(MvauParams(mw=6, mh=4, pe=2, simd=3, in_bits=3, in_signed=False,
                                      w_bits=3, out_bits=2, lut_mac=1)),
    "nf=sf=1-dsp": Case(MvauParams(mw=8, mh=4, pe=4, simd=8, in_bits=5, in_signed=True,
                                   w_bits=6, out_bits=2, lut_mac=0)),
    "nf=1-bram": Case(MvauParams(mw=12, mh=2, pe=2, simd=3, in_bits=4, in_signed=True,
                                 w_bits=4, out_bits=2, lut_mac=1, ram_style="block")),
    "sf=1-simd=pe": Case(MvauParams(mw=4, mh=12, pe=3, simd=4, in_bits=2, in_signed=False,
                                    w_bits=2, out_bits=2, lut_mac=1)),
    "simd=1": Case(MvauParams(mw=5, mh=6, pe=3, simd=1, in_bits=3, in_signed=True,
                              w_bits=3, out_bits=2, lut_mac=0)),
    # LUT_MAC 1 bit-plane corners: SIMD = 1, odd SIMD, unsigned, 5- and 6-bit weights (the top
    # plane carried over combine levels, a lone non-raw node), sums capped below the plane
    # weights (planes >= OUT_BITS drop out)
    "simd=1-lut": Case(MvauParams(mw=5, mh=6, pe=3, simd=1, in_bits=3, in_signed=True,
                                  w_bits=3, out_bits=2, lut_mac=1)),
    "uint5-int5-simd7": Case(MvauParams(mw=14, mh=6, pe=3, simd=7, in_bits=5, in_signed=False,
                                        w_bits=5, out_bits=2, lut_mac=1)),
    "int4-int6-simd6": Case(MvauParams(mw=12, mh=4, pe=2, simd=6, in_bits=4, in_signed=True,
                                       w_bits=6, out_bits=2, lut_mac=1)),
    "uint1-int6-out4": Case(MvauParams(mw=8, mh=4, pe=2, simd=4, in_bits=1, in_signed=False,
                                       w_bits=6, out_bits=2, lut_mac=1), w_lim=2),
    "int8-dsp-out<prod": Case(MvauParams(mw=12, mh=6, pe=3, simd=4, in_bits=8, in_signed=True,
                                         w_bits=8, out_bits=13, lut_mac=0), density=0.5,
                              fit_out=True),
}
IDS = list(CASES)
# out_bits = 2 above (fit_out False): raised to the minimal exact width of the random weights


def weights(name: str) -> tuple[MvauParams, np.ndarray]:
    """Deterministic random weights of a case (both INT bounds present) and the params with
    out_bits set."""
    case = CASES[name]
    p = case.p
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little"))
    lo, hi = -(1 << (p.w_bits - 1)), (1 << (p.w_bits - 1)) - 1
    if case.w_lim:
        lo, hi = -case.w_lim, case.w_lim - 1
    w = rng.integers(lo, hi + 1, size=(p.mw, p.mh))
    w[rng.random(w.shape) >= case.density] = 0
    w[0, 0], w[-1, -1] = lo, hi
    if case.fit_out:
        for o in range(p.mh):
            while golden.min_out_bits(w[:, o:o + 1], p.in_bits, p.in_signed) > p.out_bits:
                nz = np.flatnonzero(w[:, o])
                w[rng.choice(nz), o] = 0
    else:
        p = dataclasses.replace(p, out_bits=max(p.out_bits, p.min_out_bits(w)))
    p.check_weights(w)
    return p, w


def prepare(name: str) -> tuple[MvauParams, dict, dict]:
    """Params, Verilog parameters and bench settings; writes the weight memory (named by its
    content hash, so a build folder always matches its weights) into the build folder (the
    simulation's working directory) and its yosys/ subfolder, and the weights as .npy."""
    p, w = weights(name)
    words = golden.weight_words(w, p.pe, p.simd, p.w_bits)
    tag = hashlib.sha256(repr((p.pe, p.simd, p.w_bits, words)).encode()).hexdigest()[:12]
    fname = f"w-{tag}.hex"
    params = golden.hdl_params(p, fname)
    where = build_dir(TOP, params)
    for d in (where, where / "yosys"):
        d.mkdir(parents=True, exist_ok=True)
        if not (d / fname).exists():
            golden.write_weight_mem(d / fname, w, p.pe, p.simd, p.w_bits)
    npy = where / f"w-{tag}.npy"
    if not npy.exists():
        np.save(npy, w)
    per_vec = p.expected_cycles()
    settings = {"params": dataclasses.asdict(p), "weights": str(npy), "seed": 2024,
                "vectors": max(12, min(48, 2000 // per_vec)),
                "cycle_vectors": max(8, min(24, 1200 // per_vec)),
                "stall_len": [10, max(60, 2 * per_vec)]}
    return p, params, settings


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", IDS)
def test_lint(name, hw_env):
    _, params, _ = prepare(name)
    hwtools.lint(hwtools.SOURCES[TOP], TOP, params)


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", IDS)
def test_simulation(name, hw_env):
    p, params, settings = prepare(name)
    res = run_cocotb(TOP, params, "cocotb_matrix_vector", settings)
    rnd, cyc = res["random"], res["cycles"]
    # bit exact under random gaps and back-pressure (the cocotb test asserts it too)
    assert rnd["finished"] and rnd["n_errors"] == 0, rnd["errors"]
    assert rnd["received_beats"] == rnd["expected_beats"]
    # cycles without gaps / back-pressure: exactly NF*SF per vector in steady state
    assert cyc["finished"] and cyc["n_errors"] == 0, cyc["errors"]
    want = p.expected_cycles()
    ins, outs = cyc["in_start_diffs"], cyc["out_start_diffs"]
    print(f"\n{name}: NF*SF = {want}; output vector starts every {sorted(set(outs))} cycles, input "
          f"every {sorted(set(ins[2:]))} (after the first three), latency {cyc['latency']}, "
          f"{cyc['vectors']} vectors in {cyc['total_cycles']} cycles, y in "
          f"[{rnd['y_min']}, {rnd['y_max']}] (OUT_BITS {p.out_bits})")
    assert set(outs) == {want}, outs
    assert set(ins[2:]) == {want}, ins


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", [n for n in IDS if CASES[n].yosys])
def test_resources(name, hw_env):
    p, params, _ = prepare(name)
    t0 = time.monotonic()
    stat = yosys_cached(TOP, params)
    took = time.monotonic() - t0
    macs = p.pe * p.simd
    print(f"\n{name}: yosys LUT {stat['LUT']} + LUTRAM {stat['LUTRAM']}, FF {stat['FF']}, "
          f"CARRY4 {stat['CARRY4']}, DSP {stat['DSP']}, BRAM18 {stat['BRAM18']} "
          f"({macs} MACs, {stat['LUT'] / macs:.1f} LUT/MAC; {took:.0f} s, 0 if cached)")
    assert stat["DSP"] == 0  # LUT_MAC = 1: products in LUTs


# ------------------------------------------------------------------ golden model (no simulator)
def test_golden_weight_words_layout():
    """word n*SF + s, lane (p*SIMD + j) = W[s*SIMD + j, n*PE + p] (two's complement)."""
    rng = np.random.default_rng(7)
    mw, mh, pe, simd, wb = 6, 4, 2, 3, 3
    w = rng.integers(-4, 4, size=(mw, mh))
    words = golden.weight_words(w, pe, simd, wb)
    sf = mw // simd
    assert len(words) == (mh // pe) * sf
    for n in range(mh // pe):
        for s in range(sf):
            for p in range(pe):
                for j in range(simd):
                    v = (words[n * sf + s] >> ((p * simd + j) * wb)) & 7
                    assert v - 8 * (v >> 2) == w[s * simd + j, n * pe + p]


def test_golden_min_out_bits_exhaustive():
    """min_out_bits is the exact bound: every input vector's sums fit, and the extremes need it."""
    w = np.array([[3, -4], [-2, 1], [1, 2]])
    xs = np.array(np.meshgrid(*[np.arange(0, 8)] * 3)).reshape(3, -1).T  # UINT3, all 512 vectors
    y = golden.mvau(xs, w)
    n = golden.min_out_bits(w, 3, False)
    assert -(1 << (n - 1)) <= y.min() and y.max() <= (1 << (n - 1)) - 1
    assert y.min() < -(1 << (n - 2)) or y.max() > (1 << (n - 2)) - 1
    with pytest.raises(ValueError):
        MvauParams(mw=3, mh=2, pe=2, simd=3, in_bits=3, in_signed=False, w_bits=3,
                   out_bits=n - 1).check_weights(w)
    with pytest.raises(ValueError):
        MvauParams(mw=6, mh=4, pe=3, simd=3, in_bits=3)
