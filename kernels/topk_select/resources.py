"""Resource estimate of the ``topk_select`` RTL on 7-series (what FINN's ``LabelSelect_rtl``
reports), pure Python.

A structural count of rtl/topk_select.sv (README "Resources" describes where its cells go),
with S = PE/L sorters, E = 1 + IN_BITS + P list-entry bits (P = clog2(N/PE) + clog2(L)
position bits), D = max(2, clog2 S) merge levels, RW = 1 + IN_BITS + clog2(N/PE) + clog2(S)
+ clog2(L) merge-record bits:

- per sorter: K·E insert/shift selects (one LUT per list bit), K compares of IN_BITS + 1 bits
  (about half a LUT per bit, the carry chain does the rest), the head mux (K + D words of E
  bits, about E·(K + D)/4 LUTs);
- the lane select in front of the sorters (L:1 of IN_BITS + 1 bits, L > 1);
- the merge tree: 2^D - 1 nodes, one LUT per record bit;
- the seen filter's RAM (SEEN_MODE 1: two read ports, 2: one): 2·N/PE words of PE bits in
  RAM32M / RAM64M.

The sum is scaled by :data:`LUT_SCALE` (control, counters and Yosys' mapping): within 10 % of
Yosys 0.70 (``synth_xilinx -family xc7``, LUT + LUTRAM) on the README's four configurations
(demo ids / bitmap: 8301 / 8427; small ids / bitmap: 232 / 197). FF: ``register_bits`` (the
sorter lists and the shadow bank) plus the candidate registers, the merge-tree records and
control. No block RAM, no DSP.
"""

from __future__ import annotations

import math

from kernels._params import clog2
from kernels.topk_select.golden import TopkParams, merge_levels, register_bits

#: structural LUT count -> Yosys LUT + LUTRAM (fitted to the README's four configurations)
LUT_SCALE, LUT_BASE = 1.2, 10
#: flip-flops of counters, pointers and flags besides the listed registers
FF_CONTROL = 50


def estimate(p: TopkParams) -> dict[str, int]:
    """LUT (incl. distributed RAM), FF, DSP, BRAM18 of one instance."""
    s, k, lanes = p.sorters, p.k, p.lanes_per_sorter
    entry = 1 + p.in_bits + clog2(p.beats) + clog2(lanes)
    d = merge_levels(p)
    record = 1 + p.in_bits + clog2(p.beats) + clog2(s) + clog2(lanes)
    per_sorter = k * entry + k * math.ceil((p.in_bits + 1) / 2) + entry * math.ceil((k + d) / 4)
    lane_select = s * (p.in_bits + 1) * math.ceil((lanes - 1) / 3) if lanes > 1 else 0
    merge = ((1 << d) - 1) * record
    ram = 0
    if p.seen_mode:
        bits_per_ram = 6 if 2 * p.beats <= 32 else 3  # RAM32M: 32 x 6, RAM64M: 64 x 3 (4 LUTs)
        ram = 4 * math.ceil(p.pe / bits_per_ram) * (2 if p.seen_mode == 1 else 1)
    lut = LUT_SCALE * (s * per_sorter + lane_select + merge + ram) + LUT_BASE
    ff = register_bits(p) + s * (p.in_bits + 1) + ((1 << d) - 1) * record + FF_CONTROL
    return {"LUT": round(lut), "FF": ff, "DSP": 0, "BRAM18": 0}
