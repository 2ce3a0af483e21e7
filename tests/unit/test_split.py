"""Evaluation splits on the real MovieLens-100k (read from the installed recbole package)."""

from __future__ import annotations

import numpy as np
import pytest

from fpgarec.data.dataset import load_interactions
from fpgarec.data.split import UserSequences, cold_users, new_user_split, temporal_split


@pytest.fixture(scope="module")
def data():
    return load_interactions()


@pytest.fixture(scope="module")
def split(data):
    return temporal_split(data)


@pytest.fixture(scope="module")
def new_split(data):
    return new_user_split(data, seed=0)


def _starts(data) -> np.ndarray:
    """Offset of each user's first interaction in the (user, timestamp)-sorted data."""
    n = np.bincount(data.user, minlength=data.n_users)
    return np.concatenate([[0], np.cumsum(n)])


def test_data_sorted_by_user_then_time(data):
    assert np.all(np.diff(data.user) >= 0)
    same_user = np.diff(data.user) == 0
    assert np.all(np.diff(data.timestamp)[same_user] >= 0)


def test_temporal_split_counts_follow_recbole_rule(data, split):
    n = np.bincount(data.user, minlength=data.n_users)
    assert n.min() >= 20  # ml-100k: every user has >= 20 ratings, so no RecBole "bump"
    # RecBole: valid = int(0.1 n), test = int(0.1 n), train = the rest. For integer n,
    # int(0.1 * n) == n // 10 (0.1 as a double is slightly above 1/10).
    np.testing.assert_array_equal(split.valid.lengths(), n // 10)
    np.testing.assert_array_equal(split.test.lengths(), n // 10)
    np.testing.assert_array_equal(split.train.lengths(), n - 2 * (n // 10))
    assert (
        split.train.lengths().sum() + split.valid.lengths().sum() + split.test.lengths().sum()
        == 100_000
    )
    assert split.n_users == 943 and split.n_items == 1682
    assert len(split.new_users) == 0


def test_temporal_split_is_temporal_per_user(data, split):
    """Rebuild each part from positions in the sorted data and check the time order."""
    start = _starts(data)
    for u in range(data.n_users):
        lo, hi = start[u], start[u + 1]
        n_tr, n_va = len(split.train.of(u)), len(split.valid.of(u))
        # the three parts are consecutive slices of the user's time-ordered history
        np.testing.assert_array_equal(split.train.of(u), data.item[lo : lo + n_tr])
        np.testing.assert_array_equal(split.valid.of(u), data.item[lo + n_tr : lo + n_tr + n_va])
        np.testing.assert_array_equal(split.test.of(u), data.item[lo + n_tr + n_va : hi])
        ts = data.timestamp
        t_tr, t_va, t_te = (
            ts[lo : lo + n_tr],
            ts[lo + n_tr : lo + n_tr + n_va],
            ts[lo + n_tr + n_va : hi],
        )
        assert t_tr.max() <= t_va.min()
        assert t_va.max() <= t_te.min()


def test_known_before_test_is_train_then_valid(data, split):
    known = split.known_before_test()
    for u in (0, 1, 500, data.n_users - 1):
        np.testing.assert_array_equal(
            known.of(u), np.concatenate([split.train.of(u), split.valid.of(u)])
        )


def test_cold_users(data, split):
    assert len(split.cold_users) == 213
    n = np.bincount(data.user, minlength=data.n_users)
    np.testing.assert_array_equal(split.cold_users, np.flatnonzero(n <= 30))
    np.testing.assert_array_equal(cold_users(data, 30), split.cold_users)


def test_new_user_split(data, split, new_split):
    s = new_split
    new = s.new_users
    assert len(new) == 94  # round(0.1 * 943)
    assert len(np.unique(new)) == 94 and np.all(np.diff(new) > 0)
    assert len(s.cold_users) == 0
    is_new = np.zeros(data.n_users, dtype=bool)
    is_new[new] = True
    start = _starts(data)

    # new users: nothing in train/valid; context = first 5 by time; test = the rest
    assert np.all(s.train.lengths()[new] == 0)
    assert np.all(s.valid.lengths()[new] == 0)
    assert np.all(s.context.lengths()[new] == 5)
    for u in new:
        history = data.item[start[u] : start[u + 1]]
        ctx, test = s.context.of(u), s.test.of(u)
        np.testing.assert_array_equal(ctx, history[:5])
        np.testing.assert_array_equal(test, history[5:])
        assert not set(ctx.tolist()) & set(test.tolist())
        assert sorted(ctx.tolist() + test.tolist()) == sorted(history.tolist())

    # other users: temporal train/valid unchanged, no test, no context
    old = np.flatnonzero(~is_new)
    assert np.all(s.test.lengths()[old] == 0)
    assert np.all(s.context.lengths()[old] == 0)
    np.testing.assert_array_equal(s.train.lengths()[old], split.train.lengths()[old])
    np.testing.assert_array_equal(s.valid.lengths()[old], split.valid.lengths()[old])
    for u in old[:50]:
        np.testing.assert_array_equal(s.train.of(u), split.train.of(u))
        np.testing.assert_array_equal(s.valid.of(u), split.valid.of(u))


def test_new_user_split_is_seeded(data, new_split):
    again = new_user_split(data, seed=0)
    np.testing.assert_array_equal(again.new_users, new_split.new_users)
    other = new_user_split(data, seed=1)
    assert len(other.new_users) == 94
    assert not np.array_equal(other.new_users, new_split.new_users)


def test_user_sequences_helpers():
    # hand-made: user 0 -> [3, 1], user 1 -> [], user 2 -> [2]
    seqs = UserSequences.from_pairs(np.array([0, 0, 2]), np.array([3, 1, 2]), 3)
    np.testing.assert_array_equal(seqs.indptr, [0, 2, 2, 3])
    np.testing.assert_array_equal(seqs.lengths(), [2, 0, 1])
    u, i = seqs.pairs()
    np.testing.assert_array_equal(u, [0, 0, 2])
    np.testing.assert_array_equal(i, [3, 1, 2])
    other = UserSequences.from_pairs(np.array([1, 2]), np.array([7, 8]), 3)
    both = seqs.concat(other)
    assert [both.of(k).tolist() for k in range(3)] == [[3, 1], [7], [2, 8]]
