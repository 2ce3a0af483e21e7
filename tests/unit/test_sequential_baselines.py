"""GRU4Rec and SASRec, the standard sequential baselines (issue 15, item 5): shapes, causality,
training windows, and learning a trivially predictable pattern (tiny synthetic data; fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fpgarec.data.split import Split, UserSequences
from fpgarec.models.gru4rec import GRU4Rec, recent_tokens
from fpgarec.models.sasrec import SASRec
from fpgarec.train.evaluate import evaluate_test
from fpgarec.train.sequential_baselines import (
    GRID,
    SeqBaselineSettings,
    build,
    train_point,
    window_ends,
    windows,
)

N_ITEMS, L = 20, 8


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is fastest (and the test machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _seqs(rows: list[list[int]]) -> UserSequences:
    users = np.concatenate([[u] * len(r) for u, r in enumerate(rows)]).astype(np.int64)
    return UserSequences.from_pairs(users, np.concatenate(rows).astype(np.int64), len(rows))


def _models():
    return [GRU4Rec(N_ITEMS, dim=16, hidden=16, max_len=L), SASRec(N_ITEMS, dim=16, blocks=2, heads=2, max_len=L)]


def test_recent_tokens_left_padded_latest_last():
    h = _seqs([[3, 4, 5], list(range(12)), []])
    tok = recent_tokens(h, np.array([0, 1, 2]), L).numpy()
    np.testing.assert_array_equal(tok[0], [0, 0, 0, 0, 0, 4, 5, 6])
    np.testing.assert_array_equal(tok[1], np.arange(4, 12) + 1)
    np.testing.assert_array_equal(tok[2], np.zeros(L))


@pytest.mark.parametrize("model", _models(), ids=["gru4rec", "sasrec"])
def test_shapes_and_score_masks_nothing(model):
    h = _seqs([[3, 4, 5], list(range(12)), [7]])
    model.eval()
    z = model.encode(recent_tokens(h, np.arange(3), L))
    assert z.shape == (3, L, 16)
    s = model.score(np.array([0, 2]), h)
    assert s.shape == (2, N_ITEMS) and s.dtype == np.float64
    assert np.isfinite(s).all()  # the history (3, 4, 5) is not masked by the model
    loss = model((recent_tokens(h, np.arange(3), L), recent_tokens(h, np.arange(3), L)))
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("model", _models(), ids=["gru4rec", "sasrec"])
def test_causal_later_items_do_not_change_earlier_positions(model):
    model.eval()
    torch.manual_seed(1)
    tok = torch.randint(1, N_ITEMS + 1, (4, L))
    tok[0, :3] = 0  # a left-padded row
    base = model.encode(tok)
    for t in range(L - 1):
        changed = tok.clone()
        changed[:, t + 1 :] = torch.randint(1, N_ITEMS + 1, (4, L - t - 1))
        out = model.encode(changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_window_ends_and_windows_cover_every_target_once():
    assert window_ends(1, 3, 2) == []
    assert window_ends(7, 3, 3) == [7, 4]
    assert window_ends(7, 3, 1) == [7, 6, 3]
    h = _seqs([list(range(10)), [3, 4], [5]])
    for seed in range(5):
        x, y = windows(h, 3, np.random.default_rng(seed))
        assert x.shape == y.shape and x.shape[1] == 3
        # every item but a user's first is a target exactly once (tokens = item + 1)
        assert sorted(y[y > 0].tolist()) == sorted([i + 1 for i in range(1, 10)] + [5])
        # a target follows its input in the user's sequence
        nxt = {a + 1: b + 1 for r in ([*range(10)], [3, 4]) for a, b in zip(r, r[1:], strict=False)}
        assert all(nxt[a] == b for a, b in zip(x[y > 0], y[y > 0], strict=True))


def _cycle_split(n_users: int = 24, length: int = 14) -> Split:
    """Users walk the catalogue upwards from a random start: next item = current + 1 (mod N)."""
    rng = np.random.default_rng(0)
    rows = [((rng.integers(N_ITEMS) + np.arange(length)) % N_ITEMS).tolist() for _ in range(n_users)]
    train, valid, test = (_seqs([r[a:b] for r in rows]) for a, b in ((0, 12), (12, 13), (13, 14)))
    empty = _seqs([[] for _ in rows])
    return Split(n_users, N_ITEMS, train, valid, test, np.arange(4), np.zeros(0, np.int64), empty)


@pytest.mark.parametrize("name", ["gru4rec", "sasrec"])
def test_learns_next_is_current_plus_one(name):
    torch.manual_seed(0)
    split = _cycle_split()
    st = SeqBaselineSettings(lr=1e-2, dim=16, hidden=32, dropout=0.0, max_len=L, batch=8, epochs=20,
                             patience=20, max_seconds=60.0, layers=1 if name == "gru4rec" else 2)
    model, hist = train_point(name, split, st)
    assert hist.best_valid_ndcg10 > 0.9
    res = evaluate_test(model, split)  # input train + valid, history masked by the evaluation
    assert res["all"]["recall@10"] > 0.9 and res["all"]["ndcg@10"] > 0.8


def test_grid_points_build():
    for name, grid in GRID.items():
        for st in grid:
            assert build(name, N_ITEMS, dataclasses.replace(st, max_len=L)).n_items == N_ITEMS
    with pytest.raises(ValueError):
        build("caser", N_ITEMS, SeqBaselineSettings())


def test_entry_tunes_trains_both_splits_and_evaluates_all_cold_new():
    from fpgarec.train.sequential_baselines import sequential_baseline_entry

    standard = _cycle_split()
    new_users = np.arange(20, 24)
    rows = [standard.train.of(u).tolist() + standard.valid.of(u).tolist() + standard.test.of(u).tolist()
            for u in range(24)]
    keep = [r if u not in new_users else [] for u, r in enumerate(rows)]
    new = Split(24, N_ITEMS, _seqs([r[:12] for r in keep]), _seqs([r[12:13] for r in keep]),
                _seqs([r[5:] if u in new_users else [] for u, r in enumerate(rows)]),
                np.zeros(0, np.int64), new_users, _seqs([r[:5] if u in new_users else [] for u, r in enumerate(rows)]))
    grid = (SeqBaselineSettings(lr=1e-2, dim=16, hidden=16, max_len=L, batch=8, epochs=2, max_seconds=10.0),) * 2
    out = sequential_baseline_entry("gru4rec", standard, new, grid=grid)
    assert set(out["metrics"]) == {"all", "cold", "new"}
    assert all(set(m) == {"ndcg@10", "recall@10"} for m in out["metrics"].values())
    assert len(out["chosen"]["grid"]) == 2 and out["seconds"]["total"] >= 0
