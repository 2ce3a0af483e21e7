"""Golden model of ``attention_aggregate``: integers in, integers out, numpy only.

Behaviour-aware attention pooling over the K context items of a user: a drop-in alternative to
``neighbor_aggregate`` (mean) whose weights depend on the items, their behaviour type and their
recency. One query carries K slots; slot j has a vector x_j (D channels, ``in_bits``), an id
(``null_id`` = padding, not an item), a behaviour type t_j in 0..T-1 and a recency bucket r_j in
0..R-1. With the real slots J = {j : id_j != null_id}:

    logit:    l_j = Σ_d q_d · x_{j,d} + b_type[t_j] + b_pos[r_j]           (exact integer, LW bits)
    max:      m = max_{j∈J} l_j,   d_j = m - l_j >= 0
    exp:      y_j = (d_j · M) >> S,   i_j = y_j >> FB,   f_j = y_j mod 2^FB
              e_j = EXP[f_j] >> min(i_j, E+1)   for j ∈ J,   e_j = 0 for the padding
              EXP[f] = round_half_up(2^E · 2^(-f / 2^FB)),  f = 0 .. 2^FB - 1   (EXP[0] = 2^E)
    sum:      Z = Σ_j e_j  (>= 2^E when J is not empty: the max slot has e = 2^E)
    recip.:   rz = floor(2^(E+W+G) / Z)                                     (rz <= 2^(W+G))
    weights:  a_j = (e_j · rz + 2^(E+G-1)) >> (E+G)                         (0 <= a_j <= 2^W)
    output:   u_d = clamp(floor((Σ_j a_j · x_{j,d} + 2^(W-F-1)) / 2^(W-F)))   (F = frac_bits;
              no rounding term when F = W), clamped to ``out_bits`` with the input's signedness
    J empty:  a_j = 0, u_d = 0

i.e. a_j ≈ 2^W · softmax_j(l_j · s_l) with M = round(s_l / ln 2 · 2^(S+FB)) (s_l: the logit's
real scale, chosen on the host at export, :func:`exp_scale`; y_j is d_j · s_l / ln 2 = the
exponent in base 2, in units of 2^-FB, so the 2^FB is folded into M; the golden model takes M
and S as given), and u ≈ the
attention-weighted mean in units of 2^-F, rounded half up like neighbor_aggregate's mean.
Every step is an integer operation of bounded width (``>>`` is floor); ``test_golden`` checks
the properties (weights sum to 2^W within K, permutation equivariance, padding, all-padding
query, equal logits, closeness to a float softmax).

Widths: LW = max(B_q + B_x' - 2 + clog2 D, B_b) + 2 bits signed for l_j (B_x' = in_bits, +1 if
unsigned); d_j · M < 2^(LW + bits(M)); e_j <= 2^E (E+1 bits); Z < (K+1) · 2^E; rz: W+G+1 bits;
a_j: W+1 bits (the optional weight stream); the output accumulator UW = B_x' + W + clog2(K) + 2
bits signed.

Streams (lane 0 in the least significant bits):

    in0 (items): per query K·D/PE beats of PE lanes × in_bits, slot-major (beat j·D/PE + f
                 carries channels f·PE .. f·PE+PE-1 of slot j), like neighbor_aggregate
    in1 (meta):  per query K beats, slot j's word id | t << ID_BITS | r << (ID_BITS + TB),
                 TB = max(1, clog2 T), RB = max(1, clog2 R) (``pack_meta``)
    out0 (u):    per query D/PE beats of PE lanes × out_bits
    out1 (a):    per query K beats of W+1 bits (only when ``emit_weights``)

Expected cycles per query: see :func:`cycles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kernels._params import (
    IntStreamTypes,
    KernelParameterError,
    bits,
    clog2,
    datatype_name,
    divides,
    int_range,
    parse_datatype,
    positive,
)

#: largest K the kernel is built for (counter widths)
MAX_K = 256
#: widest multiplier constant M of the exp
MAX_M_BITS = 24


def _int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or int(value) != value or not lo <= int(value) <= hi:
        raise KernelParameterError(f"{name}={value!r}: must be an integer in {lo}..{hi}")
    return int(value)


def _ints(name: str, values, n: int, n_bits: int) -> tuple[int, ...]:
    values = tuple(values)
    if len(values) != n:
        raise KernelParameterError(f"{name}: {len(values)} values, must be {n}")
    lo, hi = int_range(n_bits, True)
    for i, v in enumerate(values):
        _int(f"{name}[{i}]", v, lo, hi)
    return tuple(int(v) for v in values)


@dataclass(frozen=True)
class AttentionParams(IntStreamTypes):
    """What one ``attention_aggregate`` instance is built for.

    k: slots per query; d: channels; pe: channels per beat (divides d); in_bits/in_signed: the
    items' datatype; n_types (T), n_buckets (R): behaviour types and recency buckets;
    q (D ints of q_bits, signed), b_type (T ints), b_pos (R ints) of bias_bits (signed): the
    learned query and biases; m_mult (M), s_shift (S): the logit-to-log2 scale; fb, e_bits (E):
    the exp table (2^FB entries of 2^E · 2^(-f/2^FB)); w_bits (W), g_bits (G): weight and
    guard bits; frac_bits (F <= W), out_bits: the output (the input's signedness, clamped);
    id_bits, null_id: the padding id; emit_weights: the weight stream out1.
    """

    k: int
    d: int
    pe: int
    in_bits: int
    q: tuple[int, ...]
    b_type: tuple[int, ...]
    b_pos: tuple[int, ...]
    in_signed: bool = True
    q_bits: int = 8
    bias_bits: int = 8
    m_mult: int = 1 << 10
    s_shift: int = 10
    fb: int = 4
    e_bits: int = 15
    w_bits: int = 10
    g_bits: int = 4
    frac_bits: int = 4
    out_bits: int = 8
    id_bits: int = 16
    null_id: int = 0
    emit_weights: bool = False

    def __post_init__(self):
        positive("K", self.k)
        if self.k > MAX_K:
            raise KernelParameterError(f"K={self.k}: at most {MAX_K} slots")
        positive("D", self.d)
        positive("PE", self.pe)
        divides("PE", self.pe, "D", self.d)
        bits("in_bits", self.in_bits)
        bits("q_bits", self.q_bits, 2, 16)
        bits("bias_bits", self.bias_bits, 2, 16)
        object.__setattr__(self, "q", _ints("q", self.q, self.d, self.q_bits))
        if not self.b_type:
            raise KernelParameterError("b_type: at least one behaviour type")
        if not self.b_pos:
            raise KernelParameterError("b_pos: at least one recency bucket")
        object.__setattr__(self, "b_type", _ints("b_type", self.b_type, len(self.b_type), self.bias_bits))
        object.__setattr__(self, "b_pos", _ints("b_pos", self.b_pos, len(self.b_pos), self.bias_bits))
        if len(self.b_type) > 256 or len(self.b_pos) > 256:
            raise KernelParameterError("b_type/b_pos: at most 256 types / buckets")
        _int("m_mult", self.m_mult, 0, (1 << MAX_M_BITS) - 1)
        _int("s_shift", self.s_shift, 0, 40)
        _int("fb", self.fb, 0, 8)
        _int("e_bits", self.e_bits, 2, 24)
        _int("w_bits", self.w_bits, 1, 16)
        _int("g_bits", self.g_bits, 0, 8)
        _int("frac_bits", self.frac_bits, 0, self.w_bits)
        bits("out_bits", self.out_bits, 2, 32)
        bits("id_bits", self.id_bits, 1, 32)
        if not 0 <= self.null_id < (1 << self.id_bits):
            raise KernelParameterError(f"null_id={self.null_id}: not an id of {self.id_bits} bits")
        if self.meta_bits > 48:
            raise KernelParameterError(f"id_bits={self.id_bits}: the meta word needs {self.meta_bits} bits (at most 48)")
        if self.e_bits + self.g_bits < 1:
            raise KernelParameterError("e_bits + g_bits must be >= 1")
        if self.e_bits + self.w_bits + self.g_bits > 48:
            raise KernelParameterError(f"e_bits + w_bits + g_bits = {self.e_bits + self.w_bits + self.g_bits}: at most 48")
        object.__setattr__(self, "in_signed", bool(self.in_signed))
        object.__setattr__(self, "emit_weights", bool(self.emit_weights))

    # ---------------------------------------------------------------- derived sizes
    @property
    def n_types(self) -> int:
        return len(self.b_type)

    @property
    def n_buckets(self) -> int:
        return len(self.b_pos)

    @property
    def type_bits(self) -> int:
        """TB = max(1, clog2 T): the type field of the meta word."""
        return max(1, clog2(self.n_types))

    @property
    def bucket_bits(self) -> int:
        """RB = max(1, clog2 R): the bucket field of the meta word."""
        return max(1, clog2(self.n_buckets))

    @property
    def meta_bits(self) -> int:
        return self.id_bits + self.type_bits + self.bucket_bits

    @property
    def fold(self) -> int:
        """Beats per item vector, D/PE."""
        return self.d // self.pe

    @property
    def x_bits(self) -> int:
        """Signed width holding an input value (in_bits, +1 if unsigned)."""
        return self.in_bits + (0 if self.in_signed else 1)

    @property
    def logit_bits(self) -> int:
        """LW: signed width of l_j; d_j = m - l_j < 2^LW fits LW bits unsigned."""
        return max(self.q_bits + self.x_bits - 2 + clog2(self.d), self.bias_bits) + 2

    @property
    def m_bits(self) -> int:
        return max(1, self.m_mult.bit_length())

    @property
    def weight_bits(self) -> int:
        """W+1: width of a_j (0..2^W) on the weight stream."""
        return self.w_bits + 1

    @property
    def recip_bits(self) -> int:
        """W+G+1: width of rz (<= 2^(W+G))."""
        return self.w_bits + self.g_bits + 1

    @property
    def acc_bits(self) -> int:
        """UW: signed width of Σ_j a_j x_{j,d}."""
        return self.x_bits + self.w_bits + clog2(self.k) + 2

    @property
    def out_signed(self) -> bool:
        return self.in_signed

    @property
    def meta_datatype(self) -> str:
        return datatype_name(self.meta_bits, False)

    @property
    def weight_datatype(self) -> str:
        return datatype_name(self.weight_bits, False)


def exp_table(p: AttentionParams) -> np.ndarray:
    """EXP[f] = round_half_up(2^E · 2^(-f/2^FB)), f = 0..2^FB-1 (EXP[0] = 2^E). Shape (2^FB,) int64.

    Computed with exact rational bounds: 2^(E - f/2^FB) is irrational for 0 < f < 2^FB, so it
    is never a tie, and float64 (53 bits) resolves the rounding for E <= 24."""
    n = 1 << p.fb
    f = np.arange(n, dtype=np.float64)
    return np.floor(np.exp2(p.e_bits - f / n) + 0.5).astype(np.int64)


def exp_scale(s_l: float, s_shift: int, fb: int) -> int:
    """M = round(s_l / ln 2 · 2^(S+FB)): the exp's multiplier for a logit of real scale ``s_l``
    (real logit = s_l · l_j), what the host computes at export."""
    return int(math.floor(s_l / math.log(2) * (1 << (s_shift + fb)) + 0.5))


def unpack_meta(p: AttentionParams, words) -> np.ndarray:
    """(…, K) meta words -> (…, K, 3) [id, type, bucket]."""
    w = np.asarray(words, np.int64)
    return np.stack([w & ((1 << p.id_bits) - 1), (w >> p.id_bits) & ((1 << p.type_bits) - 1),
                     (w >> (p.id_bits + p.type_bits)) & ((1 << p.bucket_bits) - 1)], axis=-1)


def pack_meta(p: AttentionParams, meta) -> np.ndarray:
    """(…, K, 3) [id, type, bucket] -> (…, K) meta words (the in1 stream's beats)."""
    m = np.asarray(meta, np.int64)
    return m[..., 0] | (m[..., 1] << p.id_bits) | (m[..., 2] << (p.id_bits + p.type_bits))


def _check(p: AttentionParams, x, meta) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    meta = np.asarray(meta)
    if x.ndim != 3 or x.shape[1:] != (p.k, p.d):
        raise ValueError(f"x must have shape (B, {p.k}, {p.d}), got {x.shape}")
    if meta.shape != (x.shape[0], p.k, 3):
        raise ValueError(f"meta must have shape ({x.shape[0]}, {p.k}, 3) [id, type, bucket], got {meta.shape}")
    x = x.astype(np.int64)
    meta = meta.astype(np.int64)
    lo, hi = int_range(p.in_bits, p.in_signed)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"item values outside {p.in_datatype} [{lo}, {hi}]")
    real = meta[..., 0] != p.null_id
    for col, n, name in ((1, p.n_types, "type"), (2, p.n_buckets, "bucket")):
        v = meta[..., col][real]
        if v.size and (v.min() < 0 or v.max() >= n):
            raise ValueError(f"{name} outside 0..{n - 1} in a real slot")
    return x, meta


def logits(p: AttentionParams, x, meta) -> np.ndarray:
    """l_j = q . x_j + b_type[t_j] + b_pos[r_j] for every slot (padding too; the padding's type
    and bucket are taken modulo T, R). Shapes: (B, K, D), (B, K, 3) -> (B, K) int64."""
    x, meta = _check(p, x, meta)
    q = np.asarray(p.q, np.int64)
    bt = np.asarray(p.b_type, np.int64)
    bp = np.asarray(p.b_pos, np.int64)
    return x @ q + bt[meta[..., 1] % p.n_types] + bp[meta[..., 2] % p.n_buckets]


def exps(p: AttentionParams, lg: np.ndarray, real: np.ndarray) -> np.ndarray:
    """e_j from the logits lg (B, K) and the real-slot mask (B, K) -> (B, K) int64."""
    lg = np.asarray(lg, np.int64)
    m = np.where(real, lg, np.iinfo(np.int64).min).max(axis=1, keepdims=True)
    d = np.where(real, m - lg, 0)
    y = (d * p.m_mult) >> p.s_shift
    i = np.minimum(y >> p.fb, p.e_bits + 1)
    f = y & ((1 << p.fb) - 1)
    e = exp_table(p)[f] >> i
    return np.where(real, e, 0)


def reciprocal(p: AttentionParams, z: np.ndarray) -> np.ndarray:
    """rz = floor(2^(E+W+G) / Z), 0 for Z = 0 (an all-padding query). (B,) -> (B,) int64."""
    z = np.asarray(z, np.int64)
    num = 1 << (p.e_bits + p.w_bits + p.g_bits)
    return np.where(z > 0, num // np.maximum(z, 1), 0)


def weights_from_exps(p: AttentionParams, e: np.ndarray) -> np.ndarray:
    """a_j = (e_j · rz + 2^(E+G-1)) >> (E+G), rz from Z = Σ e. (B, K) -> (B, K) int64."""
    e = np.asarray(e, np.int64)
    rz = reciprocal(p, e.sum(axis=1))
    sh = p.e_bits + p.g_bits
    a = (e * rz[:, None] + (1 << (sh - 1))) >> sh
    return np.where(rz[:, None] > 0, a, 0)


def pool(p: AttentionParams, x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """u_d = clamp((Σ_j a_j x_{j,d} + 2^(W-F-1)) >> (W-F)). (B, K, D), (B, K) -> (B, D) int64."""
    acc = np.einsum("bk,bkd->bd", np.asarray(a, np.int64), np.asarray(x, np.int64))
    sh = p.w_bits - p.frac_bits
    u = (acc + ((1 << (sh - 1)) if sh else 0)) >> sh
    lo, hi = int_range(p.out_bits, p.out_signed)
    return np.clip(u, lo, hi)


def attend(p: AttentionParams, x, meta) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's outputs for a batch of queries.

    Shapes: x (B, K, D) integers in the input range; meta (B, K, 3) [id, type, bucket] ->
    (u (B, D) int64, a (B, K) int64). Raises ValueError on a shape or range mismatch (types
    and buckets are checked in the real slots only)."""
    x, meta = _check(p, x, meta)
    real = meta[..., 0] != p.null_id
    e = exps(p, logits(p, x, meta), real)
    a = weights_from_exps(p, e)
    return pool(p, x, a), a


def output_range(p: AttentionParams) -> tuple[int, int]:
    return int_range(p.out_bits, p.out_signed)


# ------------------------------------------------------------------ cycles
class Cycles(NamedTuple):
    """per_query: steady-state cycles per query (back to back, no gaps, no back-pressure);
    latency: cycles from the acceptance of a query's last in0 beat to its first out0 beat."""

    per_query: int
    latency: int


def cycles(p: AttentionParams) -> Cycles:
    """Expected cycles of the RTL (rtl/attention_aggregate.sv; checked in simulation).

    The input side takes one in0 beat per cycle (K·D/PE per query) into one of two banks while
    the back end works on the other, on a fixed schedule per query:

        IDLE 1 (latch the bank's max) + EXP K + 2 (d_j, d_j·M, table and shift, Z)
        + DIV W + G + 1 (restoring divider) + WAIT 1 (output FIFOs empty)
        + WSUM K·D/PE + 2 (a_j and the weighted sum) + DONE 1 (release the bank)

    so per_query = max(K·D/PE, K + W + G + K·D/PE + 8) = K + W + G + K·D/PE + 8 (the back end
    is always the slower side). latency = K + W + G + (K-1)·D/PE + 12: the last in0 beat
    (cycle c) -> lane products and adder tree (c+1) -> logit and bank flag (c+2) -> IDLE sees
    the bank (c+3) -> EXP, DIV, WAIT ->
    WSUM reaches the last slot's first beat after (K-1)·D/PE issues, 2 pipeline stages, the
    out0 FIFO and its output register (2)."""
    kf = p.k * p.fold
    back = p.k + p.w_bits + p.g_bits + kf + 8
    return Cycles(per_query=max(kf, back), latency=p.k + p.w_bits + p.g_bits + (p.k - 1) * p.fold + 12)


# ------------------------------------------------------------------ RTL / FINN attributes
def _packed(values, n_bits: int) -> str:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << n_bits) - 1)) << (i * n_bits)
    width = n_bits * len(values)
    return f"{width}'h{word:x}"


def hdl_params(p: AttentionParams) -> dict[str, object]:
    """attention_aggregate's Verilog parameters for p (Q, B_TYPE, B_POS, EXP_TABLE packed,
    element i at bits [i*width +: width], two's complement)."""
    return {"K": p.k, "D": p.d, "PE": p.pe, "IN_BITS": p.in_bits, "IN_SIGNED": int(p.in_signed),
            "T": p.n_types, "R": p.n_buckets, "Q_BITS": p.q_bits, "BIAS_BITS": p.bias_bits,
            "Q": _packed(p.q, p.q_bits), "B_TYPE": _packed(p.b_type, p.bias_bits),
            "B_POS": _packed(p.b_pos, p.bias_bits), "M_MULT": p.m_mult, "S_SHIFT": p.s_shift,
            "FB": p.fb, "E": p.e_bits, "EXP_TABLE": _packed(exp_table(p), p.e_bits + 1),
            "W": p.w_bits, "G": p.g_bits, "FRAC_BITS": p.frac_bits, "OUT_BITS": p.out_bits,
            "ID_BITS": p.id_bits, "NULL_ID": p.null_id, "EMIT_WEIGHTS": int(p.emit_weights)}


#: FINN / QONNX node attributes of the learned constants and settings -> AttentionParams field
ATTRS = {"Query": "q", "TypeBias": "b_type", "PosBias": "b_pos", "QueryBits": "q_bits",
         "BiasBits": "bias_bits", "ExpMult": "m_mult", "ExpShift": "s_shift", "ExpFracBits": "fb",
         "ExpBits": "e_bits", "WeightBits": "w_bits", "GuardBits": "g_bits", "FracBits": "frac_bits",
         "OutBits": "out_bits", "NullId": "null_id", "EmitWeights": "emit_weights"}


def params_from_attrs(get, d: int | None = None, pe: int | None = None) -> AttentionParams:
    """AttentionParams from node attributes (``get(name)``); refuses unbuildable ones. The meta
    stream's datatype is derived (id bits from ``idDataType``)."""
    in_bits, in_signed = parse_datatype("inputDataType", get("inputDataType"))
    id_bits, id_signed = parse_datatype("idDataType", get("idDataType"))
    if id_signed:
        raise KernelParameterError(f"idDataType={get('idDataType')}: ids must be unsigned")
    kw = {field: get(attr) for attr, field in ATTRS.items()}
    for f in ("q", "b_type", "b_pos"):
        kw[f] = tuple(int(v) for v in kw[f])
    return AttentionParams(k=get("K"), d=get("NumChannels") if d is None else d,
                           pe=get("PE") if pe is None else pe, in_bits=in_bits, in_signed=in_signed,
                           id_bits=id_bits, **kw)


def node_attrs(p: AttentionParams) -> dict[str, object]:
    """The node attributes of p (inverse of :func:`params_from_attrs`, without shapes/PE)."""
    out = {attr: getattr(p, field) for attr, field in ATTRS.items()}
    out["Query"], out["TypeBias"], out["PosBias"] = list(p.q), list(p.b_type), list(p.b_pos)
    out["EmitWeights"] = int(p.emit_weights)
    return {**out, "K": p.k, "inputDataType": p.in_datatype, "idDataType": datatype_name(p.id_bits, False)}


def layer_function(attrs: dict):
    """The batched function of a bundle layer with node attributes ``attrs`` (what the
    runtime's emulation runs): items (B, K·D or K, D), meta words (B, K) -> u (B, D) int64, or
    the tuple (u, a (B, K)) when the layer emits its weights (two outputs)."""
    p = params_from_attrs(lambda a: attrs[a])

    def run(x, words):
        x = np.asarray(x, np.int64).reshape(len(x), p.k, p.d)
        u, a = attend(p, x, unpack_meta(p, np.asarray(words, np.int64).reshape(len(x), p.k)))
        return (u, a) if p.emit_weights else u

    return run
