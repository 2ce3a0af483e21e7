"""Click-through evaluation: AUC and log-loss of click prediction, next to the ranking metrics.

A ranking model gives scores, not click probabilities. The protocol, the same for every model:

* **examples**: for every user with a non-empty target set, each held-out positive (u, i) is
  paired with one negative (u, j), j drawn uniformly (seeded) from the items the user never
  interacted with in the whole data set; the model scores both from the user's history.
* **calibration** (for the log-loss only): the scores are mapped to probabilities by Platt
  scaling, p = σ(a · z + b) with z the score standardised by the calibration set's mean and
  standard deviation, (a, b) fitted by Newton's method on the *validation* examples
  (history = train, positives = valid items). The test set never influences (a, b).
* **metrics** on the *test* examples (history = everything before test):

      AUC     = P(s(u, i) > s(u', j)) + ½ P(=)  over all positive/negative pairs (pooled,
                Mann-Whitney U with average ranks for ties);
      GAUC    = the same per user, averaged over users (each user has equal weight);
      logloss = -mean( y log p + (1 - y) log(1 - p) ),  p clipped to [1e-7, 1 - 1e-7].

With one negative per positive, a model that knows nothing has AUC 0.5 and log-loss ln 2
≈ 0.693.

Shapes: a model's ``score(users (B,), history)`` returns (B, I) floats.
"""

from __future__ import annotations

import numpy as np

from fpgarec.data.split import Split, UserSequences

EPS = 1e-7


def _examples(truth: UserSequences, forbidden: list[np.ndarray], n_items: int, rng: np.random.Generator):
    """(users, items, labels) of every truth positive plus one sampled negative per positive.

    ``forbidden[u]``: items that may not be drawn as user u's negatives.
    """
    users, items, labels = [], [], []
    for u in np.flatnonzero(truth.lengths() > 0):
        pos = truth.of(u)
        allowed = np.setdiff1d(np.arange(n_items), forbidden[u], assume_unique=False)
        if len(allowed) == 0:
            continue
        neg = rng.choice(allowed, size=len(pos), replace=len(allowed) < len(pos))
        users.append(np.full(2 * len(pos), u))
        items.append(np.concatenate([pos, neg]))
        labels.append(np.concatenate([np.ones(len(pos)), np.zeros(len(pos))]))
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(users), np.concatenate(items), np.concatenate(labels)


def _scores_of(model, users: np.ndarray, items: np.ndarray, history: UserSequences, batch: int = 512):
    """s(u, i) for each example, scoring each distinct user once. Shapes: (E,), (E,) -> (E,)."""
    out = np.empty(len(users), dtype=np.float64)
    distinct = np.unique(users)
    for start in range(0, len(distinct), batch):
        ub = distinct[start : start + batch]
        s = np.asarray(model.score(ub, history), dtype=np.float64)
        row = np.searchsorted(ub, users)
        sel = (row < len(ub)) & (ub[np.minimum(row, len(ub) - 1)] == users)
        out[sel] = s[row[sel], items[sel]]
    return out


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Pooled ROC AUC by the Mann-Whitney U statistic with average ranks for ties."""
    from scipy.stats import rankdata

    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def grouped_auc(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Mean over groups (users) of each group's AUC (groups with one class only are skipped)."""
    values = []
    order = np.argsort(groups, kind="stable")
    g, s, y = groups[order], scores[order], labels[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(g)], strict=True):
        v = auc(s[a:b], y[a:b])
        if not np.isnan(v):
            values.append(v)
    return float(np.mean(values)) if values else float("nan")


def fit_platt(scores: np.ndarray, labels: np.ndarray, iters: int = 50) -> tuple[float, float, float, float]:
    """(a, b, mean, std) of p = σ(a (s - mean) / std + b), fitted by Newton's method on the
    log-loss (with a tiny ridge on (a, b) so separable data stays finite)."""
    mean = float(scores.mean()) if len(scores) else 0.0
    std = float(scores.std()) or 1.0
    z = (scores - mean) / std
    x = np.stack([z, np.ones_like(z)], axis=1)
    w = np.zeros(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - labels) + 1e-6 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1]), mean, std


def log_loss(p: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def evaluate_ctr(model, split: Split, seed: int = 0) -> dict[str, float]:
    """AUC, GAUC and log-loss of click prediction on the test period of a temporal split.

    See the module docstring for the protocol. Returns
    ``{"auc", "gauc", "logloss", "test_examples", "calibration": {"a", "b"}}``.
    """
    rng = np.random.default_rng(seed)
    everything = split.known_before_test().concat(split.test)
    forbidden = [everything.of(u) for u in range(split.n_users)]
    vu, vi, vy = _examples(split.valid, forbidden, split.n_items, rng)
    tu, ti, ty = _examples(split.test, forbidden, split.n_items, rng)
    if len(tu) == 0:
        return {"auc": float("nan"), "gauc": float("nan"), "logloss": float("nan"), "test_examples": 0}
    v_scores = _scores_of(model, vu, vi, split.train)
    a, b, mean, std = fit_platt(v_scores, vy) if len(vu) else (0.0, 0.0, 0.0, 1.0)
    t_scores = _scores_of(model, tu, ti, split.known_before_test())
    p = 1.0 / (1.0 + np.exp(-(a * (t_scores - mean) / std + b)))
    return {
        "auc": auc(t_scores, ty),
        "gauc": grouped_auc(t_scores, ty, tu),
        "logloss": log_loss(p, ty),
        "test_examples": int(len(ty)),
        "calibration": {"a": a, "b": b},
    }
