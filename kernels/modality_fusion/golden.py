"""Golden model of ``modality_fusion``: integers in, integers out, numpy only.

Fuses M per-item feature streams (id embedding, text vector, image/audio vectors, all quantized
to B_in-bit integers with their own scales s_m) into one B_out-bit node feature, a gated sum
with learned per-modality weights:

    y_d = clip( (Σ_m W_m · x_{m,d} + r) >> F,  out_min, out_max ),   r = 2^(F-1) if F > 0 else 0

W_m = round(α_m · s_m / s_y · 2^F) are signed ``w_bits``-bit integers (α = softmax of the
student's gate, s_y the output scale), so the real fused feature is s_y · y_d; ``>>`` is the
arithmetic shift, so halves round up (towards +inf). The weights are what an explanation reads:
modality m's share of channel d is W_m x_{m,d} / Σ_m' W_m' x_{m',d}
(:func:`contributions`).

Streams (lane 0 in the least significant bits):

    in0 .. in{M-1}: per item D/PE beats of PE lanes × B_in bits (channels f·PE .. f·PE+PE-1)
    out0:           per item D/PE beats of PE lanes × B_out bits

Expected cycles per item: D/PE (all M inputs consumed together, one beat per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels._params import (
    IntStreamTypes,
    KernelParameterError,
    bits,
    clog2,
    divides,
    int_range,
    parse_datatype,
    positive,
)

MAX_MODALITIES = 8


@dataclass(frozen=True)
class FusionParams(IntStreamTypes):
    """What one ``modality_fusion`` instance is built for.

    weights: W_m, one signed integer per modality (M = len(weights)); w_bits: their width;
    frac_bits: F; d/pe: channels and channels per beat; in_bits/in_signed: every input's
    datatype; out_bits/out_signed: the output datatype (saturating).
    """

    weights: tuple[int, ...]
    d: int
    pe: int
    in_bits: int
    in_signed: bool = True
    w_bits: int = 8
    frac_bits: int = 0
    out_bits: int = 8
    out_signed: bool = True

    def __post_init__(self):
        object.__setattr__(self, "weights", tuple(int(w) for w in self.weights))
        if not 1 <= len(self.weights) <= MAX_MODALITIES:
            raise KernelParameterError(f"weights: {len(self.weights)} modalities, must be 1..{MAX_MODALITIES}")
        positive("D", self.d)
        positive("PE", self.pe)
        divides("PE", self.pe, "D", self.d)
        bits("in_bits", self.in_bits)
        bits("w_bits", self.w_bits, 2, 18)
        bits("out_bits", self.out_bits)
        if isinstance(self.frac_bits, bool) or int(self.frac_bits) != self.frac_bits or not 0 <= self.frac_bits <= 24:
            raise KernelParameterError(f"frac_bits={self.frac_bits!r}: must be 0..24")
        lo, hi = int_range(self.w_bits, True)
        for m, w in enumerate(self.weights):
            if not lo <= w <= hi:
                raise KernelParameterError(f"weights[{m}]={w}: outside INT{self.w_bits} [{lo}, {hi}]")
        if self.acc_bits > 48:
            raise KernelParameterError(f"the accumulator needs {self.acc_bits} bits (at most 48)")

    @property
    def m(self) -> int:
        return len(self.weights)

    @property
    def acc_bits(self) -> int:
        """Signed width of Σ_m W_m x_m (+ rounding constant)."""
        return self.in_bits + (0 if self.in_signed else 1) + self.w_bits + clog2(self.m) + 1

    @property
    def fold(self) -> int:
        return self.d // self.pe

    def expected_cycles(self, items: int = 1) -> int:
        """Cycles for ``items`` items: items · D/PE."""
        return items * self.fold


def fuse(p: FusionParams, xs) -> np.ndarray:
    """The kernel's output. Shapes: xs (M, ..., D) integers (a sequence of M arrays works too)
    -> (..., D) int64. Raises ValueError on a shape or range mismatch."""
    x = np.asarray(xs).astype(np.int64)
    if x.shape[0] != p.m or x.shape[-1] != p.d:
        raise ValueError(f"inputs must have shape ({p.m}, ..., {p.d}), got {x.shape}")
    lo, hi = int_range(p.in_bits, p.in_signed)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"input values outside {p.in_datatype} [{lo}, {hi}]")
    w = np.asarray(p.weights, dtype=np.int64).reshape((p.m,) + (1,) * (x.ndim - 1))
    acc = (w * x).sum(axis=0)
    if p.frac_bits:
        acc = (acc + (1 << (p.frac_bits - 1))) >> p.frac_bits
    olo, ohi = int_range(p.out_bits, p.out_signed)
    return np.clip(acc, olo, ohi)


def contributions(p: FusionParams, xs) -> np.ndarray:
    """W_m · x_{m,d} / 2^F per modality, before rounding and saturation: what each modality
    added to each channel (explanations). Shapes: (M, ..., D) -> (M, ..., D) float64."""
    x = np.asarray(xs).astype(np.int64)
    w = np.asarray(p.weights, dtype=np.int64).reshape((p.m,) + (1,) * (x.ndim - 1))
    return (w * x).astype(np.float64) / (1 << p.frac_bits)


def params_from_attrs(get) -> FusionParams:
    """FusionParams from node attributes (``get(name)``); refuses unbuildable ones."""
    in_bits, in_signed = parse_datatype("inputDataType", get("inputDataType"))
    out_bits, out_signed = parse_datatype("outputDataType", get("outputDataType"))
    return FusionParams(weights=tuple(get("Weights")), d=get("NumChannels"), pe=get("PE"), in_bits=in_bits,
                        in_signed=in_signed, w_bits=get("WeightBits"), frac_bits=get("FracBits"),
                        out_bits=out_bits, out_signed=out_signed)


def layer_function(attrs: dict):
    """The batched function of a bundle layer with node attributes ``attrs`` (what the
    runtime's emulation runs): x_1 .. x_M (B, ..., D) integers -> (B, ..., D) int64."""
    p = params_from_attrs(lambda a: attrs[a])
    return lambda *xs: fuse(p, np.stack([np.asarray(x, np.int64) for x in xs]))
