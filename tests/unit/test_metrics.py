"""Ranking metrics, the top-k tie rule and ``evaluate_users`` against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fpgarec.data.split import UserSequences
from fpgarec.train.evaluate import METRIC_NAMES, evaluate_users
from fpgarec.train.metrics import hits_matrix, ndcg_at_k, recall_at_k, top_k

INF = np.inf


# --------------------------------------------------------------------------- recall / ndcg


def test_recall_and_ndcg_hand_computed():
    hits = np.array([[1, 0, 1]], dtype=bool)
    # |T| = 2, k = 3: recall = 2 hits / 2 = 1.0
    assert recall_at_k(hits, np.array([2]), 3)[0] == pytest.approx(1.0)
    # DCG  = 1/log2(2) + 0/log2(3) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG = 1/log2(2) + 1/log2(3)             = 1 + 0.63093 = 1.63093   (min(k, |T|) = 2 terms)
    # NDCG = 1.5 / 1.63093 = 0.91972
    assert ndcg_at_k(hits, np.array([2]), 3)[0] == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(hits, np.array([2]), 3)[0] == pytest.approx(0.919720, abs=1e-6)

    # |T| = 5, k = 3: recall = 2 / 5 = 0.4
    assert recall_at_k(hits, np.array([5]), 3)[0] == pytest.approx(0.4)
    # IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.13093 (3 terms, k < |T|); NDCG = 1.5 / 2.13093 = 0.70392
    assert ndcg_at_k(hits, np.array([5]), 3)[0] == pytest.approx(1.5 / (1.5 + 1 / math.log2(3)))

    # k = 1 uses only the first column: hit at rank 1 -> recall 1/2, NDCG 1/1 = 1
    assert recall_at_k(hits, np.array([2]), 1)[0] == pytest.approx(0.5)
    assert ndcg_at_k(hits, np.array([2]), 1)[0] == pytest.approx(1.0)


def test_metrics_batch_rows_independent():
    hits = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=bool)
    n_truth = np.array([1, 3, 4])
    # row 0: hit at rank 2 -> DCG = 1/log2(3); IDCG (|T|=1) = 1 -> NDCG = 0.63093; recall = 1
    # row 1: no hit -> 0, 0
    # row 2: all 4 relevant in 4 slots -> perfect: NDCG 1, recall 1
    np.testing.assert_allclose(recall_at_k(hits, n_truth, 4), [1.0, 0.0, 1.0])
    np.testing.assert_allclose(ndcg_at_k(hits, n_truth, 4), [1 / math.log2(3), 0.0, 1.0])


def test_hits_matrix():
    topk = np.array([[2, 0, 1], [1, 2, 0]])
    truth = np.array([[True, False, False], [False, False, True]])
    np.testing.assert_array_equal(
        hits_matrix(topk, truth), [[False, True, False], [False, True, False]]
    )


# --------------------------------------------------------------------------- top_k tie rule


def test_top_k_orders_by_score():
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 3, 2]])
    assert top_k(scores, 3).dtype == np.int64


def test_top_k_ties_lower_index_first():
    # equal scores -> lower item index first, also across the k-th boundary
    scores = np.array(
        [
            [1.0, 3.0, 3.0, 2.0],  # 1, 2 tie at the top
            [5.0, 1.0, 1.0, 1.0],  # 1, 2, 3 tie for places 2..4; k=2 takes index 1
            [0.0, 0.0, 0.0, 0.0],  # all tied
            [1.0, 2.0, 1.0, 2.0],  # pairs tied
        ]
    )
    np.testing.assert_array_equal(top_k(scores, 2), [[1, 2], [0, 1], [0, 1], [1, 3]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 2, 3], [0, 1, 2], [0, 1, 2], [1, 3, 0]])


def test_top_k_ties_at_boundary_in_long_row():
    # 50 items all scored 1 except a few: stable order must not depend on argpartition
    rng = np.random.default_rng(0)
    scores = np.ones((3, 50))
    for row in range(3):
        scores[row, rng.choice(50, 10, replace=False)] = 0.5  # not tied
    scores[:, 40] = 2.0  # the single best item
    out = top_k(scores, 10)
    for row in range(3):
        expected = [40] + [i for i in range(50) if scores[row, i] == 1.0][:9]
        np.testing.assert_array_equal(out[row], expected)


def test_top_k_minus_inf_never_before_finite():
    scores = np.array(
        [
            [-INF, -1e300, -INF, -5.0],  # finite ones first, -inf after in index order
            [-INF, -INF, 0.0, -INF],
            [-INF, -INF, -INF, -INF],  # all excluded: index order
        ]
    )
    np.testing.assert_array_equal(top_k(scores, 1), [[3], [2], [0]])
    np.testing.assert_array_equal(top_k(scores, 3), [[3, 1, 0], [2, 0, 1], [0, 1, 2]])


def test_top_k_k_larger_than_items():
    scores = np.array([[0.2, 0.3]])
    np.testing.assert_array_equal(top_k(scores, 10), [[1, 0]])


# --------------------------------------------------------------------------- evaluate_users

N_ITEMS = 25  # >= max(KS) = 20


class _HandScorer:
    """Scores fixed by hand, one rule per user.

    user 0: item i scores -i          (prefers low indices: ranking 0, 1, 2, ...)
    user 1: item i scores +i          (ranking 24, 23, ...)
    user 2: all zeros                 (pure tie: ranking by index 0, 1, 2, ...)
    user 3: all zeros (has no truth, must be skipped)
    """

    def __init__(self):
        self.calls: list[list[int]] = []

    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        self.calls.append([int(u) for u in users])
        rows = []
        for u in users:
            if u == 0:
                rows.append(-np.arange(N_ITEMS, dtype=float))
            elif u == 1:
                rows.append(np.arange(N_ITEMS, dtype=float))
            else:
                rows.append(np.zeros(N_ITEMS))
        return np.stack(rows)


def _seqs(per_user: list[list[int]]) -> UserSequences:
    user = np.repeat(np.arange(len(per_user)), [len(s) for s in per_user])
    item = np.asarray([i for s in per_user for i in s], dtype=np.int64)
    return UserSequences.from_pairs(user, item, len(per_user))


def _expected() -> dict[str, float]:
    """Hand computation for the setup in ``test_evaluate_users_hand_computed``.

    user 0: exclude {0}; ranking 1, 2, ..., truth {1, 11}
        item 1 at rank 1, item 11 at rank 11
        R@10 = 1/2, R@20 = 2/2
        IDCG (|T| = 2) = 1 + 1/log2(3)
        N@10 = 1 / IDCG ; N@20 = (1 + 1/log2(12)) / IDCG
    user 1: exclude {24, 23}; ranking 22, 21, ..., truth {20, 0}
        item 20 at rank 3; item 0 is last (rank 23) -> never in top 20
        R@10 = R@20 = 1/2
        N@10 = N@20 = (1/log2(4)) / (1 + 1/log2(3))
    user 2: no exclusion, all scores tied -> ranking 0, 1, 2, ..., truth {3}
        rank 4 -> R@10 = R@20 = 1, N@10 = N@20 = 1/log2(5)
    user 3: empty truth -> not averaged.
    mean over users 0, 1, 2.
    """
    idcg2 = 1 + 1 / math.log2(3)
    u0 = {
        "recall@10": 0.5,
        "recall@20": 1.0,
        "ndcg@10": 1 / idcg2,
        "ndcg@20": (1 + 1 / math.log2(12)) / idcg2,
    }
    u1 = {"recall@10": 0.5, "recall@20": 0.5, "ndcg@10": 0.5 / idcg2, "ndcg@20": 0.5 / idcg2}
    u2 = {
        "recall@10": 1.0,
        "recall@20": 1.0,
        "ndcg@10": 1 / math.log2(5),
        "ndcg@20": 1 / math.log2(5),
    }
    return {m: (u0[m] + u1[m] + u2[m]) / 3 for m in METRIC_NAMES}


@pytest.mark.parametrize("batch_size", [512, 1, 2])
def test_evaluate_users_hand_computed(batch_size):
    history = _seqs([[5], [6], [], []])
    exclude = _seqs([[0], [24, 23], [], [7]])
    truth = _seqs([[1, 11], [20, 0], [3], []])
    scorer = _HandScorer()
    got = evaluate_users(scorer, np.arange(4), history, exclude, truth, N_ITEMS, batch_size)
    assert set(got) == set(METRIC_NAMES)
    want = _expected()
    for m in METRIC_NAMES:
        assert got[m] == pytest.approx(want[m], abs=1e-12), m
    # user 3 has no truth: it is never scored
    assert sorted(u for call in scorer.calls for u in call) == [0, 1, 2]
    assert max(len(c) for c in scorer.calls) <= batch_size


def test_evaluate_users_no_truth_gives_nan():
    empty = _seqs([[], []])
    got = evaluate_users(_HandScorer(), np.arange(2), empty, empty, empty, N_ITEMS)
    assert all(math.isnan(v) for v in got.values())


def test_evaluate_users_does_not_modify_scores():
    fixed = np.zeros((1, N_ITEMS))

    class Fixed:
        def score(self, users, history):
            return fixed

    evaluate_users(Fixed(), np.array([0]), _seqs([[]]), _seqs([[0, 1]]), _seqs([[2]]), N_ITEMS)
    assert np.all(fixed == 0)


def test_evaluate_users_fewer_items_than_k():
    # 5 items < k = 10, 20. Scores -i: ranking 0, 1, 2, 3, 4; truth {1} at rank 2
    # -> recall@10 = recall@20 = 1, ndcg@10 = ndcg@20 = 1/log2(3)
    class Desc:
        def score(self, users, history):
            return np.tile(-np.arange(5, dtype=float), (len(users), 1))

    got = evaluate_users(Desc(), np.array([0]), _seqs([[]]), _seqs([[]]), _seqs([[1]]), 5)
    assert got["recall@10"] == pytest.approx(1.0)
    assert got["ndcg@20"] == pytest.approx(1 / math.log2(3))
