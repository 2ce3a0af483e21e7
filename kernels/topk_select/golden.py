"""Golden model of ``topk_select``: integers in, indices out, numpy only.

FINN's LabelSelect with the project's tie rule (``fpgarec.runtime.topk.tie_rule_topk``)
plus an optional "seen items" filter. One query has N integer scores s_0..s_{N-1}
(signed, ``in_bits``); the output is the indices of the K best *eligible* items, best first:

    a is better than b   <=>   s_a > s_b,  or  s_a == s_b and a < b   (lower index wins ties)

    eligible(i)  <=>   i < N_VALID  and  not seen(i)

    seen(i)      SEEN_MODE 0: never
                 SEEN_MODE 1: i ∈ {c_1..c_{K_CTX}}, the query's context ids
                 SEEN_MODE 2: bit i of the query's N-bit history bitmap

c_1..c_{K_CTX} are the query's context ids (the items the user has already seen); an id value
>= N_VALID (e.g. the null padding id) and duplicates exclude nothing more. The bitmap (mode 2)
excludes any number of items (a user's whole history). Items N_VALID..N-1 are padding (the
score vector is padded to a multiple of PE) and never appear. When a query has fewer than K
eligible items, the remaining output slots (after its eligible items, best first) carry the
value N; OUT_BITS must then hold N (always in mode 2; in mode 1 when N_VALID - K_CTX < K, in
mode 0 when N_VALID < K).

Equivalently, with the unique key  key_i = s_i · N + (N - 1 - i)  (and -inf when not eligible),
the output is the K indices of the largest keys in decreasing key order: equal scores differ by
N - 1 - i < N, so the key orders first by score and then by lower index.

Streams (what the RTL sees; lane 0 in the least significant bits):

    in0 (scores): per query N/PE beats of PE lanes × IN_BITS bits (two's complement);
                  beat b lane j = s_{b·PE + j}
    in1:          SEEN_MODE 1: per query K_CTX beats of ID_BITS bits (unsigned), one context
                  id per beat; SEEN_MODE 2: per query N/PE beats of PE bits, bit j of beat b =
                  item b·PE + j is excluded; SEEN_MODE 0: ID_BITS wide, accepted and ignored
    out0:         per query K beats of OUT_BITS bits (unsigned), the indices best first

Cycles (see :func:`cycles` and the RTL header): the kernel takes one in0 beat every L cycles
(L = ``lanes_per_sorter``), so a query streams in N/PE · L cycles; its K outputs leave
within 2K + D + 1 cycles after its last in0 beat (D = max(2, clog2(PE/L)), the merge tree's
levels), while the next query already streams in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kernels._params import KernelParameterError, bits, clog2, divides, int_range, positive

#: largest N the kernel is built for (index widths; the demo has N = 1792)
MAX_N = 1 << 16


@dataclass(frozen=True)
class TopkParams:
    """What one ``topk_select`` instance is built for.

    n: labels per query (padded length, a multiple of pe); n_valid: real labels (<= n);
    pe: scores per in0 beat; in_bits: signed score width; k: outputs per query;
    out_bits: width of an output index beat; k_ctx: context ids per query (mode 1);
    id_bits: context id width (mode 1); lanes_per_sorter: L, the lanes one insertion sorter
    serialises (divides pe; one in0 beat every L cycles); seen_mode: 0 no filter, 1 context
    ids, 2 history bitmap. exclude_seen: the older boolean alias (True = mode 1, False = mode 0),
    used only when seen_mode is not given (as the RTL's EXCLUDE_SEEN: SEEN_MODE wins); after
    construction both are set, exclude_seen = (seen_mode != 0). Neither given: mode 1.
    """

    n: int
    n_valid: int
    pe: int
    in_bits: int
    k: int
    out_bits: int = 16
    exclude_seen: bool | None = None
    k_ctx: int = 1
    id_bits: int = 16
    lanes_per_sorter: int = 1
    seen_mode: int | None = None

    def __post_init__(self):
        if self.exclude_seen not in (None, 0, 1, True, False):
            raise KernelParameterError(f"EXCLUDE_SEEN={self.exclude_seen!r}: must be 0 or 1")
        mode = self.seen_mode
        if mode is None:  # the alias (default: the ids filter, as before SEEN_MODE)
            mode = 0 if self.exclude_seen is not None and not self.exclude_seen else 1
        if isinstance(mode, bool) or mode not in (0, 1, 2):
            raise KernelParameterError(f"SEEN_MODE={mode!r}: must be 0, 1 or 2")
        object.__setattr__(self, "seen_mode", int(mode))
        object.__setattr__(self, "exclude_seen", mode != 0)
        positive("N", self.n)
        if self.n > MAX_N:
            raise KernelParameterError(f"N={self.n}: at most {MAX_N} labels")
        positive("PE", self.pe)
        divides("PE", self.pe, "N", self.n)
        positive("N_VALID", self.n_valid)
        if self.n_valid > self.n:
            raise KernelParameterError(f"N_VALID={self.n_valid}: must be <= N={self.n}")
        bits("IN_BITS", self.in_bits)
        positive("K", self.k)
        if self.k > self.n:
            raise KernelParameterError(f"K={self.k}: must be <= N={self.n}")
        positive("LANES_PER_SORTER", self.lanes_per_sorter)
        divides("LANES_PER_SORTER", self.lanes_per_sorter, "PE", self.pe)
        bits("OUT_BITS", self.out_bits, 1, 32)
        positive("K_CTX", self.k_ctx)
        bits("ID_BITS", self.id_bits, 1, 32)
        top = self.n if self.short else self.n - 1
        if (1 << self.out_bits) <= top:
            why = " (the empty-slot value N: fewer than K items may be eligible)" if self.short else ""
            raise KernelParameterError(
                f"OUT_BITS={self.out_bits}: cannot hold the values 0..{top}{why}")

    @property
    def short(self) -> bool:
        """A query may have fewer than K eligible items (its last slots then carry N):
        always with the bitmap, with ids when N_VALID - K_CTX < K, without a filter when
        N_VALID < K."""
        if self.seen_mode == 2:
            return True
        return self.n_valid - (self.k_ctx if self.seen_mode == 1 else 0) < self.k

    @property
    def in1_bits(self) -> int:
        """in1 TDATA width: PE bits in bitmap mode, else ID_BITS."""
        return self.pe if self.seen_mode == 2 else self.id_bits

    @property
    def in1_beats(self) -> int:
        """in1 beats per query the kernel reads (mode 0: none are needed, any are ignored)."""
        return {0: 0, 1: self.k_ctx, 2: self.beats}[self.seen_mode]

    @property
    def sorters(self) -> int:
        """S = PE / L parallel insertion sorters."""
        return self.pe // self.lanes_per_sorter

    @property
    def beats(self) -> int:
        """in0 beats per query, N / PE."""
        return self.n // self.pe

    @property
    def in_range(self) -> tuple[int, int]:
        return int_range(self.in_bits, True)

    @property
    def null_id(self) -> int:
        """An id that excludes nothing (the largest ID_BITS value if >= N_VALID, else none)."""
        return (1 << self.id_bits) - 1


class Cycles(NamedTuple):
    """per_query: steady-state cycles per query without gaps or back-pressure;
    latency: cycles from the cycle the last in0 beat of a query is accepted to the cycle its
    last out0 beat is accepted (both as transfer cycles; no back-pressure)."""

    per_query: int
    latency: int


def cycles(p: TopkParams) -> Cycles:
    """Expected cycles of the RTL.

    per_query = max(N/PE · L, 2K + D, K_CTX if SEEN_MODE 1, N/PE if SEEN_MODE 2),
    D = max(2, clog2(S)) the levels of the merge tree (S = PE/L sorters):
      N/PE · L  one in0 beat every L cycles (each sorter inserts one candidate per cycle);
      2K + D    the shadow bank is busy 2K + D - 2 cycles per query (the tree fills in D - 1,
                then K root pops of 2 cycles), plus 2 cycles for a query's last candidate,
                which waits for a free shadow bank - only for tiny N;
      K_CTX     one id per cycle into a 2-query id buffer (a query starts when all its ids are
                in, a buffer slot is freed by the query's last beat) - only for tiny N;
      N/PE      one bitmap word per cycle into a 2-query bitmap buffer (never above N/PE · L).
    latency = 2K + D + 1: last beat accepted (cycle c) -> inserted (c+1, the lists go to the
    shadow bank at that edge) -> the tree's level h fires first in cycle c+1+h, the root (level D)
    then every 2 cycles -> out stage -> the j-th output beat (j = 1..K) is valid at
    c + D + 1 + 2j.
    """
    d = merge_levels(p)
    per_query = max(p.beats * p.lanes_per_sorter, 2 * p.k + d, p.in1_beats)
    return Cycles(per_query=per_query, latency=2 * p.k + d + 1)


def merge_levels(p: TopkParams) -> int:
    """D = max(2, clog2(S)): levels of the RTL's merge tree (one compare per level and cycle)."""
    return max(2, clog2(p.sorters))


def eligible(n: int, n_valid: int, ctx_ids: np.ndarray | None, batch: int,
             seen: np.ndarray | None = None) -> np.ndarray:
    """Eligibility mask (B, N) bool: index < n_valid, not among the row's context ids
    (ids outside [0, n_valid) are ignored) and not set in the row's bitmap.
    ctx_ids: (B, K_CTX) integers or None; seen: (B, N) bool (or 0/1) or None."""
    ok = np.broadcast_to(np.arange(n) < n_valid, (batch, n)).copy()
    if seen is not None:
        bm = np.asarray(seen)
        if bm.shape != (batch, n):
            raise ValueError(f"seen must have shape ({batch}, {n}), got {bm.shape}")
        ok &= ~bm.astype(bool)
    if ctx_ids is not None:
        ids = np.asarray(ctx_ids, dtype=np.int64)
        if ids.ndim != 2 or ids.shape[0] != batch:
            raise ValueError(f"ctx_ids must have shape ({batch}, K_CTX), got {ids.shape}")
        rows = np.broadcast_to(np.arange(batch)[:, None], ids.shape)
        real = (ids >= 0) & (ids < n_valid)
        ok[rows[real], ids[real]] = False
    return ok


def topk(scores: np.ndarray, k: int, n_valid: int, ctx_ids: np.ndarray | None = None,
         seen: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best eligible items per query, best first (the rule in the module doc).

    Shapes: scores (B, N) integers, ctx_ids (B, K_CTX) integers or None, seen (B, N) bool or
    None (both may be given) -> (B, k) int64.
    key_i = s_i · N + (N - 1 - i) for eligible i, else -2^62 (below every key); the output is the
    k largest keys in decreasing order. A query with fewer than k eligible items gets the value
    N in its remaining slots.
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (B, N), got {s.shape}")
    b, n = s.shape
    if not 0 < k <= n or not 0 < n_valid <= n:
        raise ValueError(f"k={k}, n_valid={n_valid}: need 0 < k <= N and 0 < n_valid <= N={n}")
    ok = eligible(n, n_valid, ctx_ids, b, seen)
    x = s.astype(np.int64)
    if x.size and np.abs(x).max() >= (1 << 40):
        raise ValueError("scores must be below 2^40 in magnitude")
    key = x * n + (n - 1 - np.arange(n, dtype=np.int64))
    key = np.where(ok, key, -(1 << 62))  # below every eligible key (|s| < 2^40, N <= 2^16)
    part = np.argpartition(-key, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), (b, n))
    order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1)
    out = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return np.where(np.take_along_axis(ok, out, axis=1), out, n)  # empty slots -> N


def select(p: TopkParams, scores: np.ndarray, seen_input: np.ndarray | None = None) -> np.ndarray:
    """The kernel's output for a batch: :func:`topk` with p's K, N_VALID and the query's filter
    input by p.seen_mode: 0 ignored (may be None); 1 context ids (B, K_CTX) UINT{ID_BITS};
    2 history bitmap (B, N) bool or 0/1 (bit i set = item i excluded). Checks shapes and
    ranges. scores (B, N) -> (B, K) int64 (N in the slots a query has no eligible item for)."""
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[1] != p.n:
        raise ValueError(f"scores must have shape (B, {p.n}), got {s.shape}")
    lo, hi = p.in_range
    if s.size and (s.min() < lo or s.max() > hi):
        raise ValueError(f"scores outside INT{p.in_bits} [{lo}, {hi}]")
    ids = bm = None
    if p.seen_mode == 1:
        if seen_input is None:
            raise ValueError("SEEN_MODE 1 needs the context ids")
        ids = np.asarray(seen_input)
        if ids.shape != (s.shape[0], p.k_ctx):
            raise ValueError(f"ctx_ids must have shape ({s.shape[0]}, {p.k_ctx}), got {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= (1 << p.id_bits)):
            raise ValueError(f"ctx_ids outside UINT{p.id_bits}")
    elif p.seen_mode == 2:
        if seen_input is None:
            raise ValueError("SEEN_MODE 2 needs the bitmap")
        bm = np.asarray(seen_input)
        if bm.shape != s.shape:
            raise ValueError(f"the bitmap must have shape {s.shape}, got {bm.shape}")
        if bm.dtype != bool and bm.size and not np.isin(bm, (0, 1)).all():
            raise ValueError("the bitmap must hold 0/1 values")
    return topk(s, p.k, p.n_valid, ids, bm)


def bitmap_beats(p: TopkParams, seen: np.ndarray) -> list[int]:
    """in1 beats of a (B, N) bitmap in SEEN_MODE 2: per query N/PE words of PE bits, bit j of
    word b = item b·PE + j."""
    bm = np.asarray(seen).astype(bool).reshape(-1, p.pe)
    weights = [1 << j for j in range(p.pe)]
    return [sum(w for w, v in zip(weights, row, strict=True) if v) for row in bm]


def hdl_params(p: TopkParams) -> dict[str, int]:
    """topk_select's Verilog parameters for p."""
    return {"N": p.n, "N_VALID": p.n_valid, "PE": p.pe, "IN_BITS": p.in_bits, "K": p.k,
            "OUT_BITS": p.out_bits, "SEEN_MODE": p.seen_mode, "K_CTX": p.k_ctx,
            "ID_BITS": p.id_bits, "LANES_PER_SORTER": p.lanes_per_sorter}


def register_bits(p: TopkParams) -> int:
    """Flip-flops of the sorter lists and the shadow bank: 2 · S · K · (1 + IN_BITS + P),
    P = clog2(N/PE) + clog2(L) position bits (the sorter number is implicit)."""
    pos = clog2(p.beats) + clog2(p.lanes_per_sorter)
    return 2 * p.sorters * p.k * (1 + p.in_bits + pos)
