"""The few-shot references of the new-user protocol (docs/protocol.md), fitted without the test set.

The new-user bar is the strongest few-shot method of the same run (popularity, EASE, the ridge
first-c -> rest regression; :mod:`fpgarec.models.ease`). Their regularisation λ is chosen here,
never on the new users' test items:

* EASE: λ with the best validation NDCG@10 of the temporal split (input and exclusion = train,
  truth = valid, :func:`fpgarec.train.evaluate.evaluate_valid`); the new-user run refits that λ
  on the new-user split's training users.
* few-shot ridge: λ with the best NDCG@10 on *pseudo-new* users: a seeded ``share`` of the
  training users (those with more than ``context`` items) is held out, the ridge is fitted on
  the others, and each held-out user's first ``context`` items predict the rest of its items
  (the new-user protocol, played inside the training users).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from fpgarec.data.split import Split, UserSequences
from fpgarec.models.ease import EASE, FewShotRidge
from fpgarec.train.evaluate import evaluate_new, evaluate_test, evaluate_users, evaluate_valid

log = logging.getLogger(__name__)

EASE_GRID = (50.0, 200.0, 500.0, 2000.0)
RIDGE_GRID = (10.0, 50.0, 200.0)


def _subset(seqs: UserSequences, keep: np.ndarray) -> UserSequences:
    """The same users (ids unchanged), with only the ``keep`` users' items."""
    users, items = seqs.pairs()
    mask = keep[users]
    return UserSequences.from_pairs(users[mask], items[mask], seqs.n_users)


def _split_positions(seqs: UserSequences, users: np.ndarray, context: int) -> tuple[UserSequences, UserSequences]:
    """(first ``context`` items, the rest) of ``users`` (other users empty)."""
    u_all, items = seqs.pairs()
    pos = np.arange(len(items)) - seqs.indptr[u_all]
    chosen = np.zeros(seqs.n_users, dtype=bool)
    chosen[users] = True
    first = chosen[u_all] & (pos < context)
    rest = chosen[u_all] & (pos >= context)
    return (UserSequences.from_pairs(u_all[first], items[first], seqs.n_users),
            UserSequences.from_pairs(u_all[rest], items[rest], seqs.n_users))


def pseudo_new_ndcg(known: UserSequences, n_items: int, lam: float, context: int = 5,
                    share: float = 0.1, seed: int = 0) -> float:
    """NDCG@10 of :class:`FewShotRidge` (λ = ``lam``) on held-out training users: fitted on the
    other users, given each held-out user's first ``context`` items, ranking the rest of them."""
    eligible = np.flatnonzero(known.lengths() > context)
    rng = np.random.default_rng(seed)
    held = rng.choice(eligible, size=max(1, int(round(share * len(eligible)))), replace=False)
    keep = np.ones(known.n_users, dtype=bool)
    keep[held] = False
    model = FewShotRidge(_subset(known, keep), n_items, lam, context)
    first, rest = _split_positions(known, held, context)
    return evaluate_users(model, held, first, first, rest, n_items)["ndcg@10"]


def tune_ease(split: Split, grid: tuple[float, ...] = EASE_GRID) -> tuple[float, dict]:
    """(λ, {λ: validation NDCG@10}) of EASE on a temporal split."""
    valid = {lam: evaluate_valid(EASE(split.train, split.n_items, lam), split)["ndcg@10"] for lam in grid}
    return max(valid, key=valid.get), valid


def tune_ridge(known: UserSequences, n_items: int, grid: tuple[float, ...] = RIDGE_GRID,
               context: int = 5, seed: int = 0) -> tuple[float, dict]:
    """(λ, {λ: pseudo-new-user NDCG@10}) of the few-shot ridge on the training users."""
    scores = {lam: pseudo_new_ndcg(known, n_items, lam, context, seed=seed) for lam in grid}
    return max(scores, key=scores.get), scores


def fewshot_references(standard: Split, new: Split, seed: int = 0) -> dict[str, dict]:
    """The report's few-shot entries: ``{"ease": {"all", "cold", "new", "lambda", ...},
    "fewshot_ridge": {"all": None, "cold": None, "new", "lambda", ...}}`` (the ridge serves
    only users it has first items of: the new-user protocol)."""

    t0 = time.perf_counter()
    lam, valid = tune_ease(standard)
    ease = evaluate_test(EASE(standard.train, standard.n_items, lam), standard)
    ease["new"] = evaluate_new(EASE(new.train, new.n_items, lam), new)
    ease |= {"lambda": lam, "valid_ndcg@10_by_lambda": valid, "train_seconds": time.perf_counter() - t0,
             "about": "EASE (Steck 2019), item-item; λ chosen on validation NDCG@10 of the temporal split"}
    t1 = time.perf_counter()
    known = new.train.concat(new.valid)  # everything the training users did (no new user in it)
    r_lam, pseudo = tune_ridge(known, new.n_items, seed=seed)
    ridge = {"all": None, "cold": None,  # it serves new users only (a report model row, new column)
             "new": evaluate_new(FewShotRidge(known, new.n_items, r_lam), new), "lambda": r_lam,
             "pseudo_new_ndcg@10_by_lambda": pseudo, "train_seconds": time.perf_counter() - t1,
             "about": "ridge regression from a user's first 5 items to the rest of its items; λ chosen on "
                      "held-out training users (pseudo-new users); serves new users only"}
    log.info("few-shot references, new users NDCG@10: EASE %.4f (λ %g), ridge %.4f (λ %g)",
             ease["new"]["ndcg@10"], lam, ridge["new"]["ndcg@10"], r_lam)
    return {"ease": ease, "fewshot_ridge": ridge}
