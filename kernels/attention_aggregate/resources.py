"""Resource estimate of the ``attention_aggregate`` RTL on 7-series (what FINN's op reports).

A structural count of rtl/attention_aggregate.sv as Yosys 0.70 ``synth_xilinx -family xc7``
maps it, pure Python (no numpy):

- memories (``neighbor_aggregate.resources.memory``: depth <= 32 RAM32M, <= 64 RAM64M, deeper
  block RAM): the item buffer (2·K·D/PE words of PE·in_bits), the logits (2K words of LW+1),
  e_j (K words of E+1), the accumulators (2^clog2(D/PE) words of PE·UW), the out0 FIFO
  (max(D/PE, 2) words of PE·out_bits), the out1 FIFO (max(K, 2) words of W+1, if emitted).
- DSP48E1: per lane q_d·x_d and a_j·x_d (none with ``LUT_MUL`` = 1), plus d_j·M and e_j·rz
  (mul2dsp split as ``neighbor_aggregate.resources.dsp48_count``).
- FF: the registers of the .sv file (pipeline, counters, output registers); the accepted beat
  and the item buffer's read register sit in the lane DSPs' input registers (or in the block RAM)
  unless ``LUT_MUL``.
- logic LUTs: per lane the adder tree, accumulator, rounding and clamp (1.08 per bit of
  LW + UW + out_bits), the scalar datapath (exp, divider, weights: 0.62 per bit), control
  (counters and addresses: 5.1 per bit), the LUT multipliers when ``LUT_MUL`` (1.07 per bit of
  the shift-and-add terms); fitted to the Yosys figures in the README.
- d_j·M is a product by the constant M, and with D/PE = 1 each lane's q_d·x_d by the constant q_d:
  no DSP48 for a constant 0 or ±2^n (a shift).
"""

from __future__ import annotations

from kernels._params import clog2
from kernels.neighbor_aggregate.resources import dsp48_count, memory

LUT_PER_LANE_BIT = 1.08      # adder tree + accumulate + round/clamp, per lane bit
LUT_PER_SCALAR_BIT = 0.62    # exp / divider / weight datapath, per bit
LUT_PER_CTRL_BIT = 5.1       # counters, addresses and their compares, per bit
LUT_PER_MUL_BIT = 1.07       # LUT_MUL: shift-and-add adders, per bit per x bit


def _is_shift(v: int) -> bool:
    """A product by the constant v is a shift (v = 0 or ±2^n)."""
    return (abs(v) & (abs(v) - 1)) == 0


def sizes(p) -> dict[str, int]:
    """The RTL's derived widths (the same names as the localparams in the .sv file)."""
    fold = p.d // p.pe
    kf = p.k * fold
    ew = p.e_bits + 1
    qw = p.w_bits + p.g_bits + 1
    return {
        "FOLD": fold, "KF": kf, "XB": p.x_bits, "LW": p.logit_bits, "MB": p.m_bits, "EW": ew,
        "ZW": p.e_bits + 1 + clog2(p.k + 1), "QW": qw, "AW": p.w_bits + 1, "UW": p.acc_bits,
        "PPW": p.q_bits + p.x_bits, "FW": clog2(fold) if fold > 1 else 1, "KW": clog2(p.k) if p.k > 1 else 1,
        "XAW": clog2(2 * kf), "HD": max(fold, 2), "WD": max(p.k, 2), "CW": clog2(kf + p.k + qw + 8),
        "MQW": 1 + p.type_bits + p.bucket_bits,
    }


def estimate(p, lut_mul: bool = False) -> dict[str, int]:
    """LUT (incl. distributed RAM), FF, DSP (DSP48E1), BRAM18 of one instance for golden
    ``AttentionParams`` p (``lut_mul``: the Verilog parameter LUT_MUL = 1)."""
    s = sizes(p)
    mems = [memory(2 * s["KF"], p.pe * p.in_bits), memory(2 * p.k, s["LW"] + 1), memory(p.k, s["EW"]),
            memory(1 << s["FW"], p.pe * s["UW"]), memory(s["HD"], p.pe * p.out_bits)]
    if p.emit_weights:
        mems.append(memory(s["WD"], s["AW"]))
    xbuf_bram = mems[0]["BRAM18"] > 0

    # q_d·x_d: with D/PE = 1 each lane multiplies by one constant (0 or ±2^n: no DSP48)
    q_lanes = sum(1 for v in p.q if not _is_shift(v)) if s["FOLD"] == 1 else p.pe
    lane_dsp = 0 if lut_mul else (q_lanes * dsp48_count(p.q_bits, s["XB"])
                                  + p.pe * dsp48_count(s["AW"] + 1, s["XB"]))
    dsp = (lane_dsp + (0 if _is_shift(p.m_mult) else dsp48_count(s["LW"] + 1, s["MB"] + 1, s["LW"] + s["MB"]))
           + dsp48_count(s["EW"] + 1, s["QW"] + 1, s["EW"] + s["QW"]))

    scalar = 4 * s["LW"] + 3 * s["ZW"] + 2 * s["QW"] + 2 * s["EW"] + p.id_bits + s["MB"]
    ff = (p.pe * p.out_bits + (s["AW"] if p.emit_weights else 0)
          + (p.pe * p.in_bits if (lut_mul or lane_dsp == 0) else 0)      # the accepted beat
          + (p.pe * p.in_bits if lut_mul and not xbuf_bram else 0)        # item buffer read register
          + 7 * s["LW"] + 2 * s["ZW"] + s["QW"] + s["AW"] + 5 * s["MQW"] + s["KW"]
          + s["FW"] * 3 + s["KW"] * 4 + s["XAW"] * 3 + s["CW"] + 3 + 2 * clog2(s["HD"]) + clog2(s["HD"] + 1)
          + (2 * clog2(s["WD"]) + clog2(s["WD"] + 1) + 1 if p.emit_weights else 0)
          + sum(m["FF"] for m in mems))

    ctrl = s["CW"] + 3 * s["XAW"] + 4 * s["KW"] + 3 * s["FW"]
    lut = (LUT_PER_LANE_BIT * p.pe * (s["LW"] + s["UW"] + p.out_bits) + LUT_PER_SCALAR_BIT * scalar
           + LUT_PER_CTRL_BIT * ctrl)
    if lut_mul:
        lut += LUT_PER_MUL_BIT * p.pe * (s["XB"] - 1) * (s["PPW"] + s["UW"])
    lut += sum(m["LUT"] for m in mems)
    return {"LUT": round(lut), "FF": ff, "DSP": dsp, "BRAM18": sum(m["BRAM18"] for m in mems)}
