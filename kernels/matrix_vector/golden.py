"""Golden model of ``mvau_stream``: integers in, integers out, numpy only.

FINN's MVAU without activation (``noActivation``): for one input vector x (length MW) and the
weight matrix W of shape (MW, MH) (FINN's MVAU weight layout, W[i, o])

    y[o] = Σ_{i < MW} x[i] · W[i, o],      o in [0, MH)

x is an IN_BITS integer (signed or unsigned), W is W_BITS signed. The RTL's output stream
carries the low ``out_bits`` bits of y as a signed number: exact when every y fits, which
:meth:`MvauParams.min_out_bits` / :func:`min_out_bits` compute from W and the input range
(the caller guarantees it; the tests check it).

Folding: NF = MH/PE output folds, SF = MW/SIMD input folds.

    in0:  per vector SF beats of SIMD lanes, beat s lane j = x[s·SIMD + j]
    out0: per vector NF beats of PE lanes,   beat n lane p = y[n·PE + p]
    weight memory: NF·SF words of PE·SIMD·W_BITS bits; word n·SF + s holds
                   W[s·SIMD + j, n·PE + p] at bits [(p·SIMD + j)·W_BITS +: W_BITS]
                   (two's complement lanes; :func:`weight_words`, :func:`write_weight_mem`)

Cycles per vector in steady state: NF·SF (one weight word per cycle, the input buffer is
double buffered so consecutive vectors run back to back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernels._params import (
    KernelParameterError,
    bits,
    datatype_name,
    divides,
    int_range,
    positive,
)

#: weight ROM implementations (RAM_STYLE = index)
RAM_STYLES = ("auto", "block")


def mvau(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y = x W, exact. Shapes: x (B, MW) or (MW,), W (MW, MH) -> (B, MH) or (MH,), int64."""
    x = np.asarray(x).astype(np.int64)
    w = np.asarray(w).astype(np.int64)
    if w.ndim != 2 or x.shape[-1] != w.shape[0]:
        raise ValueError(f"x {x.shape} and W {w.shape}: W must be (MW, MH) with MW = x.shape[-1]")
    return x @ w


def cycles_per_vector(mw: int, mh: int, pe: int, simd: int) -> int:
    """NF·SF = (MH/PE)·(MW/SIMD): cycles per vector in steady state."""
    return (mh // pe) * (mw // simd)


def sum_range(w: np.ndarray, in_bits: int, in_signed: bool) -> tuple[int, int]:
    """[min, max] of y over all inputs in range: per column o, y[o] is extreme when every
    x[i] sits at the input bound that matches the sign of W[i, o]. Returns the min / max over
    all columns."""
    w = np.asarray(w).astype(np.int64)
    lo, hi = int_range(in_bits, in_signed)
    ymax = np.where(w > 0, w * hi, w * lo).sum(axis=0)
    ymin = np.where(w > 0, w * lo, w * hi).sum(axis=0)
    return int(ymin.min()), int(ymax.max())


def min_out_bits(w: np.ndarray, in_bits: int, in_signed: bool) -> int:
    """The smallest signed width that holds y for every input in range (at least 2)."""
    lo, hi = sum_range(w, in_bits, in_signed)
    n = 2
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@dataclass(frozen=True)
class MvauParams:
    """What one ``mvau_stream`` instance is built for.

    mw, mh: matrix shape (W is (mw, mh)); pe: output lanes per beat (divides mh); simd: input
    lanes per beat (divides mw); in_bits/in_signed: input datatype; w_bits: signed weight
    width; out_bits: signed output width (must hold every y, see :meth:`check_weights`);
    lut_mac: 1 = LUT multipliers, 0 = DSP48E1 allowed; ram_style: the weight ROM's
    implementation (FINN's ram_style): auto (the tool decides; Yosys: LUT logic) or block.
    """

    mw: int
    mh: int
    pe: int
    simd: int
    in_bits: int
    in_signed: bool = True
    w_bits: int = 4
    out_bits: int = 16
    lut_mac: int = 1
    ram_style: str = "auto"

    def __post_init__(self):
        positive("MW", self.mw)
        positive("MH", self.mh)
        positive("PE", self.pe)
        positive("SIMD", self.simd)
        divides("PE", self.pe, "MH", self.mh)
        divides("SIMD", self.simd, "MW", self.mw)
        bits("in_bits", self.in_bits, lo=1)
        bits("w_bits", self.w_bits)
        bits("out_bits", self.out_bits, hi=32)
        if self.lut_mac not in (0, 1):
            raise KernelParameterError(f"lut_mac={self.lut_mac!r}: must be 0 or 1")
        if self.ram_style not in RAM_STYLES:
            raise KernelParameterError(f"ram_style={self.ram_style!r}: one of {', '.join(RAM_STYLES)}")

    @property
    def nf(self) -> int:
        """Output folds MH/PE (output beats per vector)."""
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        """Input folds MW/SIMD (input beats per vector)."""
        return self.mw // self.simd

    @property
    def in_datatype(self) -> str:
        return datatype_name(self.in_bits, self.in_signed)

    @property
    def out_datatype(self) -> str:
        return datatype_name(self.out_bits, True)

    def expected_cycles(self) -> int:
        return cycles_per_vector(self.mw, self.mh, self.pe, self.simd)

    def min_out_bits(self, w: np.ndarray) -> int:
        return min_out_bits(w, self.in_bits, self.in_signed)

    def check_weights(self, w: np.ndarray) -> np.ndarray:
        """W as int64 (mw, mh), refused if the shape, the W_BITS range or out_bits (too narrow
        for the exact sums) does not fit."""
        w = np.asarray(w)
        if w.shape != (self.mw, self.mh):
            raise KernelParameterError(f"W has shape {w.shape}, want ({self.mw}, {self.mh})")
        w = w.astype(np.int64)
        lo, hi = int_range(self.w_bits, True)
        if w.size and (w.min() < lo or w.max() > hi):
            raise KernelParameterError(f"weights outside INT{self.w_bits} [{lo}, {hi}]")
        need = self.min_out_bits(w)
        if need > self.out_bits:
            raise KernelParameterError(f"out_bits={self.out_bits}: the sums need {need} bits")
        return w

    def check_inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).astype(np.int64)
        if x.shape[-1] != self.mw:
            raise ValueError(f"x has {x.shape[-1]} columns, want MW={self.mw}")
        lo, hi = int_range(self.in_bits, self.in_signed)
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"inputs outside {self.in_datatype} [{lo}, {hi}]")
        return x


def weight_words(w: np.ndarray, pe: int, simd: int, w_bits: int) -> list[int]:
    """The weight ROM: NF·SF words, word n·SF + s = Σ_{p, j} (W[s·SIMD + j, n·PE + p] mod
    2^w_bits) << ((p·SIMD + j)·w_bits). W shape (MW, MH)."""
    w = np.asarray(w).astype(np.int64)
    mw, mh = w.shape
    if mh % pe or mw % simd:
        raise KernelParameterError(f"PE={pe} / SIMD={simd} do not divide W's shape {w.shape}")
    nf, sf = mh // pe, mw // simd
    mask = (1 << w_bits) - 1
    # tiles[n, s, p, j] = W[s*simd + j, n*pe + p]
    tiles = (w & mask).reshape(sf, simd, nf, pe).transpose(2, 0, 3, 1).reshape(nf * sf, pe * simd)
    words = []
    for row in tiles:
        word = 0
        for k, v in enumerate(row.tolist()):
            word |= v << (k * w_bits)
        words.append(word)
    return words


def write_weight_mem(path: str | Path, w: np.ndarray, pe: int, simd: int, w_bits: int) -> Path:
    """Write the $readmemh file: one word per line (address order), lower-case hex zero-padded
    to ceil(PE·SIMD·w_bits / 4) digits."""
    digits = -(-(pe * simd * w_bits) // 4)
    path = Path(path)
    path.write_text("".join(f"{word:0{digits}x}\n" for word in weight_words(w, pe, simd, w_bits)))
    return path


def hdl_params(p: MvauParams, weight_file: str) -> dict[str, object]:
    """mvau_stream's Verilog parameters (WEIGHT_FILE as a quoted string literal)."""
    if any(c.isspace() or c == '"' for c in weight_file):
        raise KernelParameterError(f"weight file name {weight_file!r}: no spaces or quotes")
    return {"MW": p.mw, "MH": p.mh, "PE": p.pe, "SIMD": p.simd, "IN_BITS": p.in_bits,
            "IN_SIGNED": int(p.in_signed), "W_BITS": p.w_bits, "OUT_BITS": p.out_bits,
            "WEIGHT_FILE": f'"{weight_file}"', "LUT_MAC": p.lut_mac,
            "RAM_STYLE": RAM_STYLES.index(p.ram_style)}
