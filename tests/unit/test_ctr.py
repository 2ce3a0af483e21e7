"""Click-through metrics against hand-computed values, and the protocol on a tiny split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fpgarec.data.split import Split, UserSequences
from fpgarec.train.ctr import auc, evaluate_ctr, fit_platt, grouped_auc, log_loss


def test_auc_by_hand():
    # positives 0.9, 0.4; negatives 0.5, 0.1 -> pairs (0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1) = 3/4
    assert auc(np.array([0.9, 0.4, 0.5, 0.1]), np.array([1, 1, 0, 0])) == pytest.approx(0.75)
    # a tie counts one half
    assert auc(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_grouped_auc_weights_users_equally():
    s = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.4])
    y = np.array([1, 0, 1, 0, 1, 0])
    g = np.array([0, 0, 1, 1, 1, 1])
    # user 0: 1.0; user 1: positives 0.2, 0.3 vs negatives 0.8, 0.4 -> 0/4
    assert grouped_auc(s, y, g) == pytest.approx(0.5)


def test_log_loss_by_hand():
    p = np.array([0.8, 0.3])
    y = np.array([1, 0])
    assert log_loss(p, y) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)


def test_platt_recovers_a_logistic_relation():
    rng = np.random.default_rng(0)
    s = rng.normal(size=20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(2.0 * s - 0.5)))).astype(float)
    a, b, mean, std = fit_platt(s, y)
    # p = σ(a (s - mean)/std + b) = σ(2 s - 0.5)
    assert a / std == pytest.approx(2.0, rel=0.05)
    assert b - a * mean / std == pytest.approx(-0.5, abs=0.05)


class _Oracle:
    """Scores 1 for the items in ``truth`` of the user, 0 elsewhere."""

    def __init__(self, truth, n_items):
        self.truth, self.n = truth, n_items

    def score(self, users, history):
        out = np.zeros((len(users), self.n))
        for r, u in enumerate(users):
            out[r, self.truth[u]] = 1.0
        return out


def _split(n_users=6, n_items=30):
    rng = np.random.default_rng(1)
    seqs = [rng.choice(n_items, 9, replace=False) for _ in range(n_users)]

    def part(a, b):
        u = np.repeat(np.arange(n_users), b - a)
        return UserSequences.from_pairs(u, np.concatenate([s[a:b] for s in seqs]), n_users)

    return Split(n_users, n_items, part(0, 5), part(5, 7), part(7, 9), np.zeros(0, np.int64),
                 np.zeros(0, np.int64), part(0, 0)), seqs


def test_ctr_protocol_separates_an_oracle_from_a_constant():
    split, seqs = _split()
    both = {u: np.concatenate([s[5:9]]) for u, s in enumerate(seqs)}  # valid + test items
    oracle = evaluate_ctr(_Oracle(both, split.n_items), split)
    assert oracle["auc"] == pytest.approx(1.0)
    assert oracle["logloss"] < 0.1
    assert oracle["test_examples"] == 2 * 2 * split.n_users

    class Constant:
        def score(self, users, history):
            return np.zeros((len(users), split.n_items))

    flat = evaluate_ctr(Constant(), split)
    assert flat["auc"] == pytest.approx(0.5)
    assert flat["logloss"] == pytest.approx(math.log(2), abs=1e-6)
