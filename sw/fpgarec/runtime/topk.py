"""The project's top-k tie rule, vectorised in numpy: the k largest scores per row, equal
scores ordered by lower index (as ONNX TopK in FINN's execution and the ``topk_select`` kernel).

Every item gets the unique key ``score · N + (N - 1 - i)``, larger is better, so ties need no
special case; the key is exact in the smallest of float32 (below 2^24), float64 (below 2^53) and
int64 that holds it. :func:`select_unseen` is the same rule with a seen-items bitmap
(LabelSelect's ``SeenMode`` 2). Used by the emulation's LabelSelect and by the compile checks.

numpy only (it runs on a PYNQ board's CPU too; numpy 1.x and 2.x alike).
"""

from __future__ import annotations

import functools

import numpy as np

_F32_EXACT = 2 ** 24
_F64_EXACT = 2 ** 53


def exact_dtype(bound: float):
    """float32 / float64 / int64: the cheapest type in which sums up to ``bound`` are exact."""
    return np.float32 if bound < _F32_EXACT else np.float64 if bound < _F64_EXACT else np.int64


def _key_dtype(max_abs: float, n: int):
    """Smallest dtype holding every key s·n + (n-1-i) exactly."""
    return exact_dtype((max_abs + 1) * n + n)


@functools.lru_cache(maxsize=16)
def _tie_breaker(n: int, dtype: str) -> np.ndarray:
    """N - 1 - i for i in [0, N): the part of the key that orders equal scores."""
    out = (n - 1 - np.arange(n)).astype(dtype)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def _group_count(n: int, k: int) -> int:
    """Number of strided groups: a divisor of n near 2·sqrt(n·k) (no padding), at least k."""
    target = max(k, int(2 * np.sqrt(n * k)))
    divs = [d for d in range(k, n + 1) if n % d == 0]
    return min(divs, key=lambda d: abs(d - target)) if divs else n


def _top_columns(x: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest entries of each row of x (entries unique), ascending.

    ``np.partition`` finds each row's k-th largest value; exactly k entries reach it.
    """
    b, c = x.shape
    if k >= c:
        return np.broadcast_to(np.arange(c), (b, c))
    tau = np.partition(x, c - k, axis=1)[:, c - k:c - k + 1]
    return np.nonzero(x >= tau)[1].reshape(b, k)


def tie_rule_topk(scores: np.ndarray, k: int, max_abs: float | None = None, overwrite: bool = False) -> np.ndarray:
    """Indices of the k largest scores per row; equal scores: lower index first.

    Shapes: scores (B, N) integer-valued -> (B, k) int64. ``max_abs``: a bound on |score| if
    known (else computed); ``overwrite``: the scores array may be reused as scratch.

    Every item gets the unique key ``s_i · N + (N - 1 - i)`` (larger = better; exact in the
    chosen float/int dtype), so the tie rule is plain ordering by key. To avoid a partial sort
    over all N keys, items are split into G strided groups (group j = {j, j+G, j+2G, ...}):
    the k best items lie in the k groups with the largest maximum key (each of the k best
    group maxima is a distinct item, so the k-th best key is at least the k-th best group
    maximum, and keys are unique). Only those k·N/G candidates are then ordered.
    """
    scores = np.asarray(scores)
    b, n = scores.shape
    k = min(int(k), n)
    if b == 0:
        return np.zeros((0, k), np.int64)
    dt = _key_dtype(float(np.abs(scores).max(initial=0)) if max_abs is None else float(max_abs), n)
    key = scores if (overwrite and scores.dtype == dt and scores.flags.writeable) else scores.astype(dt)
    key *= dt(n)
    key += _tie_breaker(n, np.dtype(dt).str)
    ng = _group_count(n, k)
    g = n // ng
    if g > 1:
        gmax = np.maximum.reduce(key.reshape(b, g, ng), axis=1)  # (B, G)
        groups = _top_columns(gmax, k)
        cand = (np.arange(g)[None, :, None] * ng + groups[:, None, :]).reshape(b, -1)
        ck = key.ravel()[cand + (np.arange(b) * n)[:, None]]
    else:
        cand, ck = np.broadcast_to(np.arange(n), (b, n)), key
    part = _top_columns(ck, k)
    order = np.argsort(-np.take_along_axis(ck, part, axis=1), axis=1)
    return np.take_along_axis(cand, np.take_along_axis(part, order, axis=1), axis=1).astype(np.int64)


def select_unseen(scores: np.ndarray, seen: np.ndarray, k: int, n_valid: int, low: float,
                  max_abs: float) -> np.ndarray:
    """The top-k kernel with a seen-items bitmap (``SeenMode`` 2): the ``k`` best eligible items
    by the tie rule, where item i is eligible iff i < ``n_valid`` and not ``seen[b, i]``; slots
    left when fewer than ``k`` items are eligible hold N (the label count), as the RTL does.

    Shapes: scores (B, N) integers, seen (B, N) bool -> (B, k) int64. ``low``: a value below
    every score (ineligible items are ranked there, then replaced by N)."""
    s = np.array(scores, dtype=np.float64).reshape(len(scores), -1)
    n = s.shape[1]
    eligible = ~np.asarray(seen, dtype=bool).reshape(len(s), n)
    eligible[:, n_valid:] = False
    s[~eligible] = low
    top = tie_rule_topk(s, k, max_abs=max_abs, overwrite=True)
    return np.where(np.take_along_axis(eligible, top, axis=1), top, n)
