"""Golden model of ``neighbor_aggregate``: integers in, integers out, numpy only.

One query reduces the K neighbour vectors x_1..x_K (D channels each) of a user to one vector.
Padding scheme: a query always carries K neighbour ids; a slot whose id equals ``null_id`` (the
host pads a user with fewer than K items with it, and the lookup tables hold a zero row there)
is not a neighbour. With the real neighbours R = {k : id_k != null_id} and n = |R|:

    sum:   y_d = Σ_{k∈R} x_{k,d}
    mean:  y_d = (S_d · Rcp[n] + C) >> SH,   S_d = Σ_{k∈R} x_{k,d}
           Rcp[n] = ceil(2^(SH+P) / n),  SH = 2·c + B_in + 2,  C = 2^(SH-1) + 2^(SH-2-c),  c = clog2(K)
    max:   y_d = max_{k∈R} x_{k,d}
    n = 0: y_d = 0 in every mode

``>>`` is the arithmetic shift (floor). The mean is exactly floor(S_d · 2^P / n + 1/2), the
mean in units of 2^-P rounded half up (P = ``frac_bits``). Proof: Rcp[n] = 2^(SH+P)/n + e with
0 <= e < 1 and |S_d| < n·2^B_in, so the product's error err = S_d·e/2^SH has
|err| < n·2^B_in/2^SH = n/(4·4^c) <= 1/(4·2^c); with the extra 2^(SH-2-c) in C, i.e. δ = 1/(4·2^c),
0 <= err + δ < 1/(2·2^c) <= 1/(2n), smaller than the 1/(2n) step of S_d 2^P/n + 1/2, so the floor
is not moved. ``test_golden`` checks it exhaustively on small cases.

Output datatypes (never overflow, no saturation needed):

    sum:  B_in + clog2(K) bits;   mean: B_in + P bits;   max: B_in bits;   signedness of the input

Streams (what the RTL and FINN's packing see; lane 0 in the least significant bits):

    in0 (features): per query K·D/PE beats of PE lanes × B_in bits, neighbour-major
                    (beat k·D/PE + f carries channels f·PE .. f·PE+PE-1 of neighbour k)
    in1 (ids):      per query K beats of ``id_bits`` bits (the same ids the lookups read)
    out0:           per query D/PE beats of PE lanes × B_out bits

Expected cycles per query: K·D/PE (one input beat per cycle; the output of a query streams out
while the next query accumulates).
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

MODES = ("sum", "mean", "max")
#: largest K the kernel is built for (counter widths, reciprocal table size)
MAX_K = 1024


@dataclass(frozen=True)
class AggregateParams(IntStreamTypes):
    """What one ``neighbor_aggregate`` instance is built for.

    k: neighbours per query; d: channels; pe: channels per beat (divides d);
    in_bits/in_signed: input datatype; mode: sum | mean | max; frac_bits: P (mean only);
    id_bits: width of the id stream; null_id: the padding id (not a neighbour).
    """

    k: int
    d: int
    pe: int
    in_bits: int
    in_signed: bool = True
    mode: str = "mean"
    frac_bits: int = 0
    id_bits: int = 16
    null_id: int = 0

    def __post_init__(self):
        positive("K", self.k)
        if self.k > MAX_K:
            raise KernelParameterError(f"K={self.k}: at most {MAX_K} neighbours")
        positive("D", self.d)
        positive("PE", self.pe)
        divides("PE", self.pe, "D", self.d)
        bits("in_bits", self.in_bits)
        if self.mode not in MODES:
            raise KernelParameterError(f"mode={self.mode!r}: must be one of {', '.join(MODES)}")
        if isinstance(self.frac_bits, bool) or int(self.frac_bits) != self.frac_bits or not 0 <= self.frac_bits <= 8:
            raise KernelParameterError(f"frac_bits={self.frac_bits!r}: must be 0..8")
        if self.mode != "mean" and self.frac_bits:
            raise KernelParameterError(f"frac_bits={self.frac_bits}: only the mean has fractional bits")
        bits("id_bits", self.id_bits, 1, 32)
        if not 0 <= self.null_id < (1 << self.id_bits):
            raise KernelParameterError(f"null_id={self.null_id}: not an id of {self.id_bits} bits")
        bits("out_bits", self.out_bits, 2, 32)
        if self.mode == "mean" and self.product_bits > 62:
            raise KernelParameterError(
                f"K={self.k}, in_bits={self.in_bits}, frac_bits={self.frac_bits}: the mean's "
                f"product needs {self.product_bits} bits (at most 62)")

    @property
    def product_bits(self) -> int:
        """Signed width of S_d · Rcp[n] in the mean (sum width + reciprocal width)."""
        return (self.in_bits + clog2(self.k) + 1) + (self.shift + self.frac_bits + 1)

    @property
    def out_bits(self) -> int:
        if self.mode == "sum":
            return self.in_bits + clog2(self.k)
        if self.mode == "mean":
            return self.in_bits + self.frac_bits
        return self.in_bits

    @property
    def out_signed(self) -> bool:
        return self.in_signed

    @property
    def shift(self) -> int:
        """SH of the mean's reciprocal multiplication."""
        return 2 * clog2(self.k) + self.in_bits + 2

    @property
    def rounding(self) -> int:
        """C of the mean: 2^(SH-1) + 2^(SH-2-clog2 K)."""
        return (1 << (self.shift - 1)) + (1 << (self.shift - 2 - clog2(self.k)))

    @property
    def fold(self) -> int:
        """Beats per neighbour vector, D/PE."""
        return self.d // self.pe

    def expected_cycles(self) -> int:
        """Cycles per query in steady state: K·D/PE."""
        return self.k * self.fold


def reciprocals(p: AggregateParams) -> np.ndarray:
    """Rcp[n] = ceil(2^(SH+P) / n) for n = 0..K (Rcp[0] = 0: an empty query gives 0).
    Shape (K+1,) int64 (``product_bits`` <= 62 is checked)."""
    num = 1 << (p.shift + p.frac_bits)
    n = np.arange(p.k + 1, dtype=np.int64)
    out = np.zeros(p.k + 1, dtype=np.int64)
    out[1:] = -(-num // n[1:])
    return out


def aggregate(p: AggregateParams, feats: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The kernel's output for a batch of queries.

    Shapes: feats (B, K, D) integers in the input range, ids (B, K) -> (B, D) int64.
    Raises ValueError on a shape or range mismatch (the golden model is also a checker).
    """
    feats = np.asarray(feats)
    ids = np.asarray(ids)
    if feats.ndim != 3 or feats.shape[1:] != (p.k, p.d):
        raise ValueError(f"feats must have shape (B, {p.k}, {p.d}), got {feats.shape}")
    if ids.shape != feats.shape[:2]:
        raise ValueError(f"ids must have shape {feats.shape[:2]}, got {ids.shape}")
    lo, hi = int_range(p.in_bits, p.in_signed)
    x = feats.astype(np.int64)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"feature values outside {p.in_datatype} [{lo}, {hi}]")
    real = ids != p.null_id  # (B, K)
    n = real.sum(axis=1)  # (B,)
    if p.mode == "max":
        masked = np.where(real[:, :, None], x, np.iinfo(np.int64).min)
        y = masked.max(axis=1)
        return np.where(n[:, None] > 0, y, 0)
    s = np.where(real[:, :, None], x, 0).sum(axis=1)  # (B, D)
    return finish(p, s, n)


def finish(p: AggregateParams, sums: np.ndarray, n: np.ndarray) -> np.ndarray:
    """sum / mean mode output from the sums over the real neighbours and their count n.
    Shapes: sums (B, D) int64, n (B,) -> (B, D) int64."""
    if p.mode == "sum":
        return sums
    if p.mode != "mean":
        raise ValueError(f"finish() covers sum and mean, not {p.mode}")
    return (sums * reciprocals(p)[n][:, None] + p.rounding) >> p.shift


def count_neighbours(p: AggregateParams, ids: np.ndarray) -> np.ndarray:
    """n per query: the number of ids that are not ``null_id``. Shapes: (B, K) -> (B,)."""
    return (np.asarray(ids) != p.null_id).sum(axis=1)


def output_range(p: AggregateParams) -> tuple[int, int]:
    return int_range(p.out_bits, p.out_signed)


def params_from_attrs(get) -> AggregateParams:
    """AggregateParams from node attributes (``get(name)``); refuses unbuildable ones."""
    in_bits, in_signed = parse_datatype("inputDataType", get("inputDataType"))
    id_bits, id_signed = parse_datatype("idDataType", get("idDataType"))
    if id_signed:
        raise KernelParameterError(f"idDataType={get('idDataType')}: ids must be unsigned")
    mode = get("Mode")
    return AggregateParams(k=get("K"), d=get("NumChannels"), pe=get("PE"), in_bits=in_bits, in_signed=in_signed,
                           mode=mode.decode() if isinstance(mode, bytes) else mode, frac_bits=get("FracBits"),
                           id_bits=id_bits, null_id=get("NullId"))


def layer_function(attrs: dict):
    """The batched function of a bundle layer with node attributes ``attrs`` (what the
    runtime's emulation runs): features (B, K·D or K, D), ids (B, K) -> (B, D) int64."""
    p = params_from_attrs(lambda a: attrs[a])
    return lambda x, ids: aggregate(p, np.asarray(x, np.int64).reshape(len(x), p.k, p.d), np.asarray(ids, np.int64))
