"""The one evaluation function every model goes through.

A model is anything with ``score(users, history) -> (B, N)`` float scores, where ``history``
(:class:`~fpgarec.data.split.UserSequences`) is what the model may use as input: the train
split for known users, the few context items for new users. Items the user interacted with in
earlier splits get ``-inf`` and are never recommended.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fpgarec.data.split import Split, UserSequences
from fpgarec.train.metrics import hits_matrix, ndcg_at_k, recall_at_k, top_k

KS = (10, 20)
METRIC_NAMES = tuple(f"{m}@{k}" for k in KS for m in ("recall", "ndcg"))


class Scorer(Protocol):
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray: ...


def _mask_rows(users: np.ndarray, seqs: UserSequences, n_items: int) -> np.ndarray:
    mask = np.zeros((len(users), n_items), dtype=bool)
    for r, u in enumerate(users):
        mask[r, seqs.of(u)] = True
    return mask


def evaluate_users(
    model: Scorer,
    users: np.ndarray,
    history: UserSequences,
    exclude: UserSequences,
    truth: UserSequences,
    n_items: int,
    batch_size: int = 512,
) -> dict[str, float]:
    """Mean Recall@{10,20} and NDCG@{10,20} over ``users`` that have a non-empty ``truth``.

    Args:
        history: the model's input per user.
        exclude: items removed from ranking per user.
        truth: relevant items per user.
    """
    users = np.asarray(users, dtype=np.int64)
    users = users[truth.lengths()[users] > 0]
    sums = dict.fromkeys(METRIC_NAMES, 0.0)
    if len(users) == 0:
        return {m: float("nan") for m in METRIC_NAMES}
    kmax = max(KS)
    for start in range(0, len(users), batch_size):
        ub = users[start : start + batch_size]
        scores = np.array(model.score(ub, history), dtype=np.float64, copy=True)
        scores[_mask_rows(ub, exclude, n_items)] = -np.inf
        truth_mask = _mask_rows(ub, truth, n_items)
        n_truth = truth_mask.sum(axis=1)
        hits = hits_matrix(top_k(scores, kmax), truth_mask)
        for k in KS:
            sums[f"recall@{k}"] += recall_at_k(hits, n_truth, k).sum()
            sums[f"ndcg@{k}"] += ndcg_at_k(hits, n_truth, k).sum()
    return {m: float(v / len(users)) for m, v in sums.items()}


def evaluate_valid(model: Scorer, split: Split) -> dict[str, float]:
    """Validation metrics (early stopping): input and exclusion = train, truth = valid."""
    users = np.flatnonzero(split.valid.lengths() > 0)
    return evaluate_users(model, users, split.train, split.train, split.valid, split.n_items)


def evaluate_test(model: Scorer, split: Split) -> dict[str, dict[str, float]]:
    """Test metrics on all users and on cold users of a temporal split.

    Everything known before the test period (train + valid) is the model's input history and
    is excluded from ranking. Models with per-user embeddings use what they were trained on;
    inductive models read the history (as a deployed system reads its live interaction log).
    """
    known = split.known_before_test()
    users = np.arange(split.n_users)
    return {
        "all": evaluate_users(model, users, known, known, split.test, split.n_items),
        "cold": evaluate_users(model, split.cold_users, known, known, split.test, split.n_items),
    }


def evaluate_new(model: Scorer, split: Split) -> dict[str, float]:
    """Test metrics on the new users of a new-user split: input and exclusion = context."""
    return evaluate_users(model, split.new_users, split.context, split.context, split.test, split.n_items)
