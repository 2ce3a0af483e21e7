"""Ranking metrics and the tie rule shared by every path.

Tie rule (followed by torch evaluation, the CPU emulation and the hardware's top-k): items are
ordered by score, highest first; among equal scores the lower item index comes first.

For one user with ground-truth set ``T`` and ranked list ``r_1 .. r_k``:

    Recall@k = |{r_1..r_k} ∩ T| / |T|
    DCG@k    = sum_{j=1..k} [r_j ∈ T] / log2(j + 1)
    IDCG@k   = sum_{j=1..min(k, |T|)} 1 / log2(j + 1)
    NDCG@k   = DCG@k / IDCG@k

Metrics are averaged over users with a non-empty ``T`` (RecBole's definitions).
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items per row under the tie rule.

    Shapes: scores (B, N) -> (B, k) int64. Excluded items should carry ``-inf``.
    """
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    # a partial selection first (cheap), then an exact stable ordering of the candidates that
    # includes every item tied with the k-th best score
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.min(np.take_along_axis(scores, part, axis=1), axis=1, keepdims=True)
    out = np.empty((scores.shape[0], k), dtype=np.int64)
    for b in range(scores.shape[0]):
        cand = np.flatnonzero(scores[b] >= kth[b])
        order = np.lexsort((cand, -scores[b, cand]))
        out[b] = cand[order[:k]]
    return out


def hits_matrix(topk: np.ndarray, truth_mask: np.ndarray) -> np.ndarray:
    """hits[b, j] = True where the j-th recommendation of row b is relevant.

    Shapes: topk (B, k) int, truth_mask (B, N) bool -> (B, k) bool.
    """
    return np.take_along_axis(truth_mask, topk, axis=1)


def recall_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@k. Shapes: hits (B, >=k) bool, n_truth (B,) > 0 -> (B,)."""
    return hits[:, :k].sum(axis=1) / n_truth


def ndcg_at_k(hits: np.ndarray, n_truth: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k. Shapes: hits (B, >=k) bool, n_truth (B,) > 0 -> (B,)."""
    k = min(k, hits.shape[1])  # fewer items than k: the list is as long as the catalogue
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discount).sum(axis=1)
    ideal_len = np.minimum(n_truth, k)
    idcg = np.cumsum(discount)[ideal_len - 1]
    return dcg / idcg
