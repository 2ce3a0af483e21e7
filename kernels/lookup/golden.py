"""Golden model of ``lookup_rom``: integers in, integers out, numpy only.

    y[b, k, d] = T[ids[b, k], d]        ids (B, K) in [0, N), T (N, D) -> y (B, K, D)

The RTL holds T in a ROM loaded from a ``$readmemh`` file (:func:`table_mem_lines`): line i is
row i, entry d at bits [d*BITS +: BITS] (two's complement), written as ceil(D*BITS/4) hex digits.

Streams: in0 one id per beat; out0 D/PE beats of PE lanes per id (beat f lane j = T[id, f*PE+j]).
Expected cycles per query: K * D/PE (one beat per cycle; the ROM read overlaps the previous
id's last beat).
"""

from __future__ import annotations

import numpy as np

from kernels._params import KernelParameterError


def lookup(table: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """T[ids]. Shapes: table (N, D), ids (B, K) -> (B, K, D) int64; an id outside [0, N) is
    refused (the RTL would return an arbitrary row)."""
    table = np.asarray(table, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= len(table)):
        raise KernelParameterError(f"ids must lie in [0, {len(table)})")
    return table[ids]


def pack_rows(values: np.ndarray, bits: int) -> list[int]:
    """Each row of ``values`` (R, L) as one integer, lane l at bits [l*bits +: bits]
    (two's complement)."""
    values = np.asarray(values, dtype=np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << bits) - 1
    if values.size and (values.min() < lo or values.max() > hi):
        raise KernelParameterError(f"values outside {bits} bits")
    mask = (1 << bits) - 1
    words = []
    for row in values.tolist():
        w = 0
        for lane, v in enumerate(row):
            w |= (int(v) & mask) << (lane * bits)
        words.append(w)
    return words


def hex_lines(words: list[int], width: int) -> list[str]:
    """``$readmemh`` lines of ``width``-bit words."""
    digits = max(1, -(-width // 4))
    return [f"{w:0{digits}x}" for w in words]


def table_mem_lines(table: np.ndarray, bits: int) -> list[str]:
    """The ROM file of ``lookup_rom`` for table (N, D) of ``bits``-bit entries."""
    table = np.asarray(table)
    return hex_lines(pack_rows(table, bits), table.shape[1] * bits)
