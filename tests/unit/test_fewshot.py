"""The new-user bar's few-shot references: pseudo-new users cut from the training users, and the
bar taken against the strongest few-shot method of the run (not 1.5 x popularity)."""

from __future__ import annotations

import numpy as np

from fpgarec.data.split import UserSequences
from fpgarec.experiment.results import check_bars
from fpgarec.train.fewshot import _split_positions, _subset, pseudo_new_ndcg


def _seqs(lists):
    users = np.concatenate([[u] * len(s) for u, s in enumerate(lists)]).astype(np.int64)
    return UserSequences.from_pairs(users, np.concatenate(lists).astype(np.int64), len(lists))


def test_first_items_and_the_rest_keep_time_order_and_other_users_empty():
    seqs = _seqs([[5, 1, 2, 7], [3, 4, 0, 6, 8, 9], [2, 2]])
    first, rest = _split_positions(seqs, np.array([1]), 2)
    assert first.of(1).tolist() == [3, 4] and rest.of(1).tolist() == [0, 6, 8, 9]
    assert len(first.of(0)) == len(rest.of(0)) == len(first.of(2)) == 0
    kept = _subset(seqs, np.array([True, False, True]))
    assert kept.of(0).tolist() == [5, 1, 2, 7] and len(kept.of(1)) == 0 and kept.of(2).tolist() == [2, 2]


def test_pseudo_new_users_rank_their_later_items_from_their_first_ones():
    """Two kinds of users: first items from {0..4} followed by {5..9}, or from {10..14} followed
    by {15..19}. The ridge learns the mapping from the other users, so a held-out user's later
    items rank near the top: NDCG@10 far above what ranking at random gives (about 0.3)."""
    rng = np.random.default_rng(0)
    lists = []
    for u in range(60):
        base = 0 if u % 2 else 10
        lists.append(np.concatenate([rng.permutation(5) + base, rng.permutation(5) + base + 5]))
    score = pseudo_new_ndcg(_seqs(lists), 20, lam=1.0, context=5, share=0.2, seed=0)
    assert score > 0.95


def _entry(new):
    return {"all": {"ndcg@10": 0.1}, "cold": {"ndcg@10": 0.1}, "new": {"ndcg@10": new}}


def test_the_new_user_bar_is_the_strongest_few_shot_method_of_the_run():
    results = {"popularity": _entry(0.47), "ease": _entry(0.41), "fewshot_ridge": _entry(0.55),
               "student_w4": _entry(0.52)}
    bars = [b for b in check_bars(results) if "new" in b["name"]]
    assert len(bars) == 1
    assert "fewshot_ridge" in bars[0]["name"] and bars[0]["target"] == 1.0
    assert abs(bars[0]["value"] - 0.52 / 0.55) < 1e-12 and not bars[0]["passed"]
    results["student_w4"] = _entry(0.56)
    assert [b for b in check_bars(results) if "new" in b["name"]][0]["passed"]


def test_the_student_is_held_against_the_strongest_sequential_recommender_per_group():
    results = {"student_w4": _entry(0.5), "gru4rec": _entry(0.5), "sasrec": _entry(0.5), "sequence": _entry(0.5)}
    results["student_w4"]["all"]["ndcg@10"], results["student_w4"]["cold"]["ndcg@10"] = 0.17, 0.14
    results["sequence"]["all"]["ndcg@10"], results["gru4rec"]["cold"]["ndcg@10"] = 0.19, 0.16
    bars = {b["name"]: b for b in check_bars(results) if "sequential" in b["name"]}
    assert set(bars) == {"student_w4 / best sequential recommender (sequence) NDCG@10, all",
                         "student_w4 / best sequential recommender (gru4rec) NDCG@10, cold"}
    assert not any(b["passed"] for b in bars.values())


def test_the_attention_student_gets_the_same_bars_and_the_lift_over_the_mean():
    """student_w4_attention is held against the same few-shot and sequential references as
    student_w4, and against 1.10 x the mean student of the run (all and cold)."""
    results = {"student_w4": _entry(0.5), "student_w4_attention": _entry(0.5), "gru4rec": _entry(0.5),
               "fewshot_ridge": _entry(0.55)}
    results["student_w4"]["all"]["ndcg@10"], results["student_w4_attention"]["all"]["ndcg@10"] = 0.16, 0.18
    names = {b["name"]: b for b in check_bars(results)}
    for n in ("student_w4_attention / best few-shot method (fewshot_ridge) NDCG@10, new",
              "student_w4_attention / best sequential recommender (gru4rec) NDCG@10, all",
              "student_w4_attention / best sequential recommender (gru4rec) NDCG@10, cold"):
        assert n in names
    lift = names["student_w4_attention / student_w4 (mean aggregation) NDCG@10, all"]
    assert lift["target"] == 1.10 and abs(lift["value"] - 0.18 / 0.16) < 1e-12 and lift["passed"]
    assert not names["student_w4_attention / student_w4 (mean aggregation) NDCG@10, cold"]["passed"]


def test_student_task_names():
    from fpgarec.experiment.tasks import NODISTILL, TASK_FUNCTIONS, student_spec

    assert student_spec("student_w4") == (4, True, "mean")
    assert student_spec("student_w2_attention") == (2, True, "attention")
    assert student_spec(NODISTILL) == (4, False, "mean")
    assert all(TASK_FUNCTIONS[f"student_w{b}_attention"] is TASK_FUNCTIONS["student_w4"] for b in (8, 4, 2))
