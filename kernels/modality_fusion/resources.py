"""Resource estimate of the ``modality_fusion`` RTL on 7-series (what FINN's op reports).

A structural count of rtl/modality_fusion.sv as Yosys 0.70 ``synth_xilinx -family xc7`` maps
it, pure Python (no numpy). The weights are constants, so the cost depends on their values:

- W = 0: nothing; W = +-2^t: a shift (a negation when negative), no multiplier;
- otherwise W = core * 2^t with an odd core: x * core goes to one DSP48E1 (its input and
  product registers too) when the product has >= 9 bits, else to a LUT multiplier;
- the sum: DSP products with an odd weight (t = 0) chain through the DSPs' post-adders for free;
  every other term costs a fabric adder of the sum's width;
- rounding and saturation: the bits above the output range are checked (when the range can
  be exceeded at all); a clamp on both ends costs a select per output bit, a one-sided clamp
  uses the output flip-flops' set/reset.

The logic-LUT coefficients are fitted to Yosys figures of 57 configurations (README
"Resources": median error 14 % on designs of >= 100 LUTs, larger on designs of a few dozen).
"""

from __future__ import annotations

from kernels._params import clog2
from kernels.neighbor_aggregate.resources import DSP_Y_MIN, dsp48_count

LUT_PER_ADD_BIT = 0.7         # fabric adder of the sum, per bit and added term
LUT_PER_SOFT_MUL_BIT = 0.4    # LUT multiplier, per partial-product bit (x bits * weight bits)
LUT_PER_CLAMP_BIT = 0.7       # clamp at the bottom of the range, per output bit
LUT_PER_CHECK_BIT = 1.0       # overflow check, per bit above the output range
LUT_BASE = 5


def signed_bits(v: int) -> int:
    """Width of v as a two's-complement constant."""
    return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1


def terms(p) -> list[dict]:
    """How each W_m x_m is built: kind zero | shift | dsp | soft, the shift t of W = core * 2^t,
    the multiplier's operand widths (Yosys multiplies unsigned when x is unsigned and the core
    positive) and the product register's width."""
    xb = p.in_bits + (0 if p.in_signed else 1)
    out = []
    for w in p.weights:
        if w == 0:
            out.append({"kind": "zero", "t": 0, "a": 0, "b": 0, "signed": True, "prod_bits": 0})
            continue
        t = (w & -w).bit_length() - 1
        core = w >> t
        if not p.in_signed and core > 0:
            a, b, sgn = p.in_bits, core.bit_length(), False
        else:
            a, b, sgn = xb, signed_bits(core), True
        if abs(core) == 1:
            kind = "shift"
        elif a + b >= DSP_Y_MIN:
            kind = "dsp"
        else:
            kind = "soft"
        prod = xb + (b if kind != "shift" else (1 if core < 0 else 0))  # without the t zeros
        out.append({"kind": kind, "t": t, "a": a, "b": b, "signed": sgn, "prod_bits": prod})
    return out


def features(p) -> dict[str, float]:
    """Per-instance counts the LUT estimate weighs (also used to fit the coefficients)."""
    xb = p.in_bits + (0 if p.in_signed else 1)
    ts = [t for t in terms(p) if t["kind"] != "zero"]
    width = max([xb + signed_bits(w) for w in p.weights if w] or [1]) + clog2(max(1, len(ts)))
    # the sum is the chain ((2^(F-1) + p_0) + p_1) + ...: Yosys moves the adder of p_m into
    # p_m's DSP48E1 (post-adder) when x*W_m is a DSP product with an odd weight; every other
    # term needs a fabric adder (none for the first term when F = 0: nothing to add it to)
    fabric = [not (t["kind"] == "dsp" and t["t"] == 0) for t in ts]
    # an adder spans the sum's bits above the term's t trailing zero bits
    add_bits = sum(width + 1 - t["t"] for t, f in zip(ts[1:], fabric[1:], strict=True) if f)
    if fabric and fabric[0] and p.frac_bits:   # 2^(F-1) + p_0: an incrementer above bit F-1
        add_bits += width + 2 - max(p.frac_bits, ts[0]["t"] + 1)
    rb = width + (1 if p.frac_bits else 0) - p.frac_bits       # bits of the shifted sum
    nonneg = (not p.in_signed) and all(w >= 0 for w in p.weights)
    # bits above the output range to check; the clamp to the top uses the output flip-flops'
    # set pins, a clamp at the bottom (possible unless the sum is >= 0) costs a select per bit
    top = rb - (1 if nonneg or not p.out_signed else 0) - p.out_bits
    check = max(0, top) + (0 if nonneg or p.out_signed else 1)
    return {
        "add": p.pe * add_bits,
        "soft": p.pe * sum(t["a"] * t["b"] for t in ts if t["kind"] == "soft"),
        "clamp": p.pe * p.out_bits if check and not nonneg else 0,
        "check": p.pe * check,
        "base": 1,
    }


def estimate(p) -> dict[str, int]:
    """LUT, FF, DSP (DSP48E1), BRAM18 of one instance for golden ``FusionParams`` p."""
    xb = p.in_bits + (0 if p.in_signed else 1)
    ts = terms(p)
    f = features(p)
    lut = (LUT_PER_ADD_BIT * f["add"] + LUT_PER_SOFT_MUL_BIT * f["soft"]
           + LUT_PER_CLAMP_BIT * f["clamp"] + LUT_PER_CHECK_BIT * f["check"] + LUT_BASE)
    dsp = p.pe * sum(dsp48_count(t["a"], t["b"], None, t["signed"], t["signed"])
                     for t in ts if t["kind"] == "dsp")
    # output register, valid/full flags; input and product registers of the terms not in DSPs
    ff = p.pe * p.out_bits + p.m + 2
    ff += p.pe * sum(xb + t["prod_bits"] for t in ts if t["kind"] in ("shift", "soft"))
    return {"LUT": round(lut), "FF": ff, "DSP": dsp, "BRAM18": 0}
