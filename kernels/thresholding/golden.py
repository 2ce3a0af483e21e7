"""Golden model of ``thresholding_stream``: integers in, integers out, numpy only.

FINN's MultiThreshold (Thresholding layer) on integers: for channel c of an input vector x
(C channels) and the threshold matrix T

    y[c] = bias + #{s in [0, N_STEPS) : x[c] >= T[r(c), s]}

with r(c) = c when T has shape (C, N_STEPS) (per channel) and r(c) = 0 when T has shape
(1, N_STEPS) (one row shared by all channels). A tie x == T counts. The compare is exact
whatever the widths (a threshold outside the input range is never / always reached). FINN's
thresholds are sorted ascending per channel; the count does not need it (the RTL counts the
true compares), :attr:`ThresholdParams.sorted` only reports it. ``bias`` is FINN's ActVal
(e.g. -2^(n-1) for a signed n-bit output with 2^n - 1 steps).

Streams (lane 0 in the least significant bits):

    in0:  per vector C/PE beats, beat f lane j = x[f·PE + j]   (IN_BITS each)
    out0: per vector C/PE beats, beat f lane j = y[f·PE + j]   (OUT_BITS each)

THRESHOLDS (the RTL's packed parameter): row r step s at bits [(r·N_STEPS + s)·T_BITS +:
T_BITS], two's complement, ROWS = 1 (shared) or C rows.

Cycles per vector: C/PE (one beat per cycle, 3 pipeline stages).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels._params import (
    IntStreamTypes,
    KernelParameterError,
    bits,
    divides,
    int_range,
    positive,
)


def threshold(x: np.ndarray, t: np.ndarray, bias: int = 0) -> np.ndarray:
    """y[..., c] = bias + #{s : x[..., c] >= T[r(c), s]}. Shapes: x (B, C) (or (C,)), T (C, N)
    or (1, N) -> like x, int64."""
    x = np.asarray(x).astype(np.int64)
    t = np.asarray(t).astype(np.int64)
    if t.ndim != 2 or t.shape[0] not in (1, x.shape[-1]):
        raise ValueError(f"T must have shape ({x.shape[-1]}, N) or (1, N), got {t.shape}")
    return bias + (x[..., :, None] >= t).sum(axis=-1)


@dataclass(frozen=True)
class ThresholdParams(IntStreamTypes):
    """What one ``thresholding_stream`` instance is built for.

    thresholds: T as a tuple of rows (C rows, or 1 row shared by all channels), N_STEPS each;
    c: channels; pe: channels per beat (divides c); in_bits/in_signed: input datatype; t_bits:
    signed threshold width; bias: FINN's ActVal; out_bits/out_signed: output datatype (must
    hold bias .. bias + N_STEPS).
    """

    thresholds: tuple
    c: int
    pe: int
    in_bits: int
    in_signed: bool = True
    t_bits: int = 8
    bias: int = 0
    out_bits: int = 4
    out_signed: bool = False

    def __post_init__(self):
        rows = tuple(tuple(int(v) for v in row) for row in self.thresholds)
        object.__setattr__(self, "thresholds", rows)
        positive("C", self.c)
        positive("PE", self.pe)
        divides("PE", self.pe, "C", self.c)
        bits("in_bits", self.in_bits, lo=1)
        bits("t_bits", self.t_bits)
        bits("out_bits", self.out_bits, lo=1, hi=30)
        if len(rows) not in (1, self.c) or not rows or not rows[0]:
            raise KernelParameterError(f"thresholds: need 1 or C={self.c} rows of N_STEPS >= 1, "
                                       f"got {len(rows)} rows")
        n = len(rows[0])
        if any(len(r) != n for r in rows):
            raise KernelParameterError("thresholds: all rows need the same N_STEPS")
        lo, hi = int_range(self.t_bits, True)
        if any(not lo <= v <= hi for r in rows for v in r):
            raise KernelParameterError(f"thresholds outside INT{self.t_bits} [{lo}, {hi}]")
        olo, ohi = int_range(self.out_bits, self.out_signed)
        if isinstance(self.bias, bool) or int(self.bias) != self.bias:
            raise KernelParameterError(f"bias={self.bias!r}: must be an integer")
        if not (olo <= self.bias and self.bias + n <= ohi):
            raise KernelParameterError(f"bias={self.bias}, N_STEPS={n}: outputs "
                                       f"{self.bias}..{self.bias + n} do not fit {self.out_datatype}")

    @property
    def n_steps(self) -> int:
        return len(self.thresholds[0])

    @property
    def shared(self) -> bool:
        return len(self.thresholds) == 1 and self.c > 1

    @property
    def rows(self) -> int:
        return len(self.thresholds)

    @property
    def sorted(self) -> bool:
        """Every row ascending (FINN's layout; not required by the RTL)."""
        return all(all(r[i] <= r[i + 1] for i in range(len(r) - 1)) for r in self.thresholds)

    @property
    def fold(self) -> int:
        return self.c // self.pe

    def t_matrix(self) -> np.ndarray:
        return np.array(self.thresholds, dtype=np.int64)

    def expected_cycles(self) -> int:
        """Cycles per vector: C/PE."""
        return self.fold

    def apply(self, x: np.ndarray) -> np.ndarray:
        """threshold() with a range check of x. Shapes (B, C) -> (B, C) int64."""
        x = np.asarray(x).astype(np.int64)
        if x.shape[-1] != self.c:
            raise ValueError(f"x has {x.shape[-1]} channels, want C={self.c}")
        lo, hi = int_range(self.in_bits, self.in_signed)
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"inputs outside {self.in_datatype} [{lo}, {hi}]")
        return threshold(x, self.t_matrix(), self.bias)


def packed_thresholds(p: ThresholdParams) -> int:
    """THRESHOLDS as an integer: row r step s at bits [(r·N_STEPS + s)·T_BITS +: T_BITS]."""
    mask = (1 << p.t_bits) - 1
    word = 0
    k = 0
    for row in p.thresholds:
        for v in row:
            word |= (v & mask) << (k * p.t_bits)
            k += 1
    return word


def hdl_params(p: ThresholdParams) -> dict[str, object]:
    """thresholding_stream's Verilog parameters (THRESHOLDS as a sized hex literal; a negative
    BIAS as the 32-bit two's complement literal ``32'hfffffff8``: Yosys' chparam cannot parse
    ``-8``, and the ``int`` parameter reads the pattern back as -8)."""
    width = p.rows * p.n_steps * p.t_bits
    bias = p.bias if p.bias >= 0 else f"32'h{p.bias & 0xFFFFFFFF:08x}"
    return {"C": p.c, "PE": p.pe, "N_STEPS": p.n_steps, "IN_BITS": p.in_bits,
            "IN_SIGNED": int(p.in_signed), "T_BITS": p.t_bits, "SHARED": int(p.rows == 1),
            "BIAS": bias, "OUT_BITS": p.out_bits, "OUT_SIGNED": int(p.out_signed),
            "THRESHOLDS": f"{width}'h{packed_thresholds(p):x}"}
