"""Resource estimate of the ``neighbor_aggregate`` RTL on 7-series (what FINN's op reports).

A structural count of rtl/neighbor_aggregate.sv as Yosys 0.70 ``synth_xilinx -family xc7``
maps it, pure Python (no numpy):

- memories: the accumulator bank (D/PE words of PE*AW bits) and the hold FIFO (max(D/PE, 2)
  words of PE*AW + n bits). Depth 1: flip-flops; depth <= 32: RAM32M (32 x 6 bits, 4 LUTs);
  <= 64: RAM64M (64 x 3 bits, 4 LUTs); deeper: block RAM (RAMB18E1 = 512 x 36 ... 16K x 1).
  The LUTs of distributed RAM are included in ``LUT`` (they are LUTs of the device).
- DSP48E1: the mean's PE multipliers S * Rcp[n] (SB x (SH+P+1) bits signed), split as Yosys'
  mul2dsp does (25 x 18 signed per DSP48E1).
- FF: counters and id queue, the output register (PE*OUT_BITS), the mean's operand register
  (PE*SB; the Rcp and product registers sit in the DSPs' AREG/MREG), the accumulators when
  D/PE = 1.
- logic LUTs: per lane the accumulate (adder or compare + select) and, for the mean, the
  operand select and rounding adder; the Rcp table (a ROM of K+1 words); control. The
  coefficients are fitted to Yosys figures of 56 configurations (see the README: median error
  7 %, worst 31 % on a K = 1 design).
"""

from __future__ import annotations

from kernels._params import clog2

#: logic-LUT coefficients (fitted to Yosys 0.70, see README "Resources")
LUT_PER_ACC_BIT = 1.95        # sum/mean: adder + first-neighbour/padding selects; max: compare + select
LUT_PER_MEAN_BIT = 0.45       # mean: doubling select + rounding adder, per lane bit
LUT_PER_ROM_BIT = 2.2         # mean: Rcp[n] table, per output bit and 64 words
LUT_PER_MAX_OUT_BIT = 1.6     # max: n == 0 gives 0
LUT_PER_CTRL_BIT = 1.6        # id compare, counters
LUT_BASE = 1

#: Yosys xc7 multiplier mapping (mul2dsp): DSP48E1 is 25 x 18 signed
DSP_A, DSP_B, DSP_PARTIAL, DSP_Y_MIN = 25, 18, 18, 9


def dsp48_count(a_bits: int, b_bits: int, y_bits: int | None = None,
                a_signed: bool = True, b_signed: bool = True, _top: bool = True) -> int:
    """DSP48E1s of an a_bits x b_bits multiplier as Yosys' mul2dsp splits it (0 when Yosys
    keeps it in LUTs: operand < 2 bits or product < 9 bits)."""
    y_bits = a_bits + b_bits if y_bits is None else y_bits
    if _top and a_bits < b_bits:
        a_bits, b_bits, a_signed, b_signed = b_bits, a_bits, b_signed, a_signed
    if a_bits < 2 or b_bits < 2 or y_bits < DSP_Y_MIN:
        return 0
    if _top and not a_signed and not b_signed:
        a_bits, b_bits, a_signed, b_signed = a_bits + 1, b_bits + 1, True, True
    step = DSP_PARTIAL - 1  # one bit of sign headroom per partial product
    if a_bits > DSP_A:
        n = (a_bits - DSP_A + step - 1) // step
        last = a_bits - n * step
        return (n * dsp48_count(DSP_PARTIAL, b_bits, min(y_bits, b_bits + DSP_PARTIAL), True,
                                b_signed, False)
                + dsp48_count(last, b_bits, b_bits + last, a_signed, b_signed, False))
    if b_bits > DSP_B:
        n = (b_bits - DSP_B + step - 1) // step
        last = b_bits - n * step
        return (n * dsp48_count(a_bits, DSP_PARTIAL, min(y_bits, a_bits + DSP_PARTIAL),
                                a_signed, True, False)
                + dsp48_count(a_bits, last, a_bits + last, a_signed, b_signed, False))
    return 1


def memory(depth: int, width: int) -> dict[str, int]:
    """LUT / FF / BRAM18 of a depth x width memory with one write and one read port."""
    if depth <= 1:
        return {"LUT": 0, "FF": width, "BRAM18": 0}
    if depth <= 32:
        return {"LUT": 4 * -(-width // 6), "FF": 0, "BRAM18": 0}
    if depth <= 64:
        return {"LUT": 4 * -(-width // 3), "FF": 0, "BRAM18": 0}
    for max_depth, bits in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        if depth <= max_depth:
            return {"LUT": 0, "FF": 0, "BRAM18": -(-width // bits)}
    return {"LUT": 0, "FF": 0, "BRAM18": -(-depth // 16384) * width}


def sizes(p) -> dict[str, int]:
    """The RTL's derived widths (the same names as the localparams in the .sv file)."""
    fold = p.d // p.pe
    ck = clog2(p.k)
    aw = p.in_bits if p.mode == "max" else p.in_bits + ck
    nw = clog2(p.k + 1)
    sh = 2 * ck + p.in_bits + 2
    return {
        "FOLD": fold, "CK": ck, "AW": aw, "OW": p.out_bits, "NW": nw,
        "FW": clog2(fold) if fold > 1 else 1, "KW": clog2(p.k) if p.k > 1 else 1,
        "HD": max(fold, 2), "NS": nw if p.mode == "mean" else 1,
        "SH": sh, "RW": sh + p.frac_bits, "SB": aw + 1 + (0 if p.in_signed else 1),
    }


def estimate(p) -> dict[str, int]:
    """LUT (incl. distributed RAM), FF, DSP (DSP48E1), BRAM18 of one instance for golden
    ``AggregateParams`` p."""
    s = sizes(p)
    mean, mx = p.mode == "mean", p.mode == "max"
    acc = memory(s["FOLD"], p.pe * s["AW"])
    hold = memory(s["HD"], p.pe * s["AW"] + s["NS"])
    hpw, hcw = clog2(s["HD"]), clog2(s["HD"] + 1)

    dsp = p.pe * dsp48_count(s["SB"], s["RW"] + 1, s["SB"] + s["RW"] + 1) if mean else 0

    ff = (s["FW"] + s["KW"] + s["NW"] + 1 + 4 + 2 * hpw + hcw + 1 + (2 if mean else 0)
          + p.pe * s["OW"] + (p.pe * s["SB"] if mean else 0) + acc["FF"] + hold["FF"])

    lut = (LUT_PER_ACC_BIT * p.pe * s["AW"]
           + LUT_PER_CTRL_BIT * (p.id_bits + s["FW"] + s["KW"] + s["NW"]) + LUT_BASE)
    if mean:
        lut += LUT_PER_MEAN_BIT * p.pe * (s["SB"] + s["OW"] + 2 + s["CK"])
        if p.k > 1:
            lut += LUT_PER_ROM_BIT * s["RW"] * max(1, 2 ** (s["NW"] - 6))
    if mx:
        lut += LUT_PER_MAX_OUT_BIT * p.pe * s["OW"]
    lut += acc["LUT"] + hold["LUT"]
    return {"LUT": round(lut), "FF": ff, "DSP": dsp, "BRAM18": acc["BRAM18"] + hold["BRAM18"]}
