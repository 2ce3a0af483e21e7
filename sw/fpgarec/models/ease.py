"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a strong
item-item reference for the new-user protocol.

    G = XᵀX,  P = (G + λI)^-1,  B = -P / diag(P) (column-wise),  diag(B) = 0,  s_u = x_u B

X (U, N) binary train interactions, x_u the user's input history (for a new user: its first
five items), so EASE serves users unseen in training without any per-user parameter. It is a
reference in the demo (`fpgarec.train.fewshot`): it answers how far an item-item model gets on the new-user
protocol, where popularity is strong (docs/results.md).

A second reference, :class:`FewShotRidge`, is fitted on the protocol's own task: from the first
``c`` items of every training user, predict the rest of that user's training items,

    W = argmin ||Y - X_c W||² + λ ||W||²  = (X_cᵀX_c + λI)^-1 X_cᵀ (Y - ȳ),   s_u = x_u W + ȳ

(X_c: first-c indicator rows, Y: the later items, ȳ: their mean row, which is popularity
among later items). It bounds what a linear model of a new user's first items reaches here.

    fpgarec study ease          # new-user NDCG@10: popularity vs EASE vs few-shot ridge
"""

from __future__ import annotations

import numpy as np

from fpgarec.data.split import UserSequences


class EASE:
    """Scorer with ``score(users, history) -> (B, N)``. Shapes: B (N, N) float64."""

    def __init__(self, train: UserSequences, n_items: int, lam: float = 500.0):
        users, items = train.pairs()
        x = np.zeros((train.n_users, n_items))
        x[users, items] = 1.0
        gram = x.T @ x + lam * np.eye(n_items)
        p = np.linalg.inv(gram)
        self.weights = -p / np.diag(p)[None, :]
        np.fill_diagonal(self.weights, 0.0)

    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        x = np.zeros((len(users), self.weights.shape[0]))
        for row, u in enumerate(np.asarray(users)):
            x[row, history.items[history.indptr[u]:history.indptr[u + 1]]] = 1.0
        return x @ self.weights


class FewShotRidge:
    """Scorer ``score(users, history) -> (B, N)`` fitted from first-``context`` items to the rest."""

    def __init__(self, train: UserSequences, n_items: int, lam: float = 50.0, context: int = 5):
        lens = train.lengths()
        users = np.flatnonzero(lens > context)
        x = np.zeros((len(users), n_items))
        y = np.zeros((len(users), n_items))
        for row, u in enumerate(users):
            seq = train.of(u)
            x[row, seq[:context]] = 1.0
            y[row, seq[context:]] = 1.0
        self.mean = y.mean(axis=0)
        self.weights = np.linalg.solve(x.T @ x + lam * np.eye(n_items), x.T @ (y - self.mean))

    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        x = np.zeros((len(users), self.weights.shape[0]))
        for row, u in enumerate(np.asarray(users)):
            x[row, history.items[history.indptr[u]:history.indptr[u + 1]]] = 1.0
        return x @ self.weights + self.mean
