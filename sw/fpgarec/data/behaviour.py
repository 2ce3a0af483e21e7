"""Behaviour types (view, like, comment) of interactions, and their alignment with histories.

MovieLens-100k logs ratings only, so the behaviour type of an interaction is DERIVED from its
rating level (this is a modelling choice, not information in the data set):

    rating r ∈ {1, 2, 3}  ->  view     (τ = 0)   44.6 % of ML-100k interactions
    rating r = 4          ->  like     (τ = 1)   34.2 %
    rating r = 5          ->  comment  (τ = 2)   21.2 %

Why this mapping:

* engagement is ordered view < like < comment (a comment costs more effort than a like, which
  costs more than watching), and the rating is the only ordinal engagement signal we have;
* 3 is below the average ML-100k rating (3.53), so 1-3 are the "watched, not endorsed"
  interactions: a plain view;
* the resulting volumes fall monotonically (45 / 34 / 21 %), the shape of a real engagement
  funnel, and each type keeps enough interactions (> 21 000) to learn its own embedding and
  time decay;
* the thresholds are global, so a type is a pure function of one rating (no per-user state on
  the serving host). A per-user relative mapping (rating above the user's mean) was not used.

A missing rating (NaN, or a data set without a ``rating`` column) counts as a view, the
weakest behaviour.

:class:`BehaviourLog` holds every user's full time-ordered log (items, types, timestamps).
Every history the models are given by :mod:`fpgarec.data.split` (train, train + valid, a new
user's context) is a PREFIX of the user's log, so attributes are aligned by position and
checked item by item; a history that is an in-order subsequence but not a prefix is aligned
by an O(n) per-user match. Only the attributes of the history's own interactions are returned
(nothing from a later period leaks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgarec.data.dataset import InteractionData
from fpgarec.data.split import UserSequences

#: behaviour type names, indexed by type id τ.
BEHAVIOURS = ("view", "like", "comment")
VIEW, LIKE, COMMENT = 0, 1, 2
#: the smallest rating of each type above ``view``: r >= 4 -> like, r >= 5 -> comment.
RATING_THRESHOLDS = (4.0, 5.0)
#: one line for reports and docs.
MAPPING_TEXT = "derived from ratings: 1-3 -> view, 4 -> like, 5 -> comment"


def behaviour_types(rating: np.ndarray | None, n: int | None = None) -> np.ndarray:
    """Type id τ of each interaction: τ = #{thresholds t : r >= t} (0 view, 1 like, 2 comment).

    Args:
        rating: ratings, shape (n,), or None (then every interaction is a view; ``n`` needed).
        n: the number of interactions when ``rating`` is None.

    Returns:
        int64 array of shape (n,) with values in {0, 1, 2}. NaN ratings map to 0 (view).
    """
    if rating is None:
        if n is None:
            raise ValueError("behaviour_types needs n when there are no ratings")
        return np.zeros(n, dtype=np.int64)
    r = np.nan_to_num(np.asarray(rating, dtype=np.float64), nan=-np.inf)
    return np.searchsorted(np.asarray(RATING_THRESHOLDS), r, side="right").astype(np.int64)


@dataclass
class BehaviourLog:
    """Every user's full log in time order, CSR-style like :class:`UserSequences`.

    Shapes: ``indptr`` (U + 1,); ``items``, ``types`` (int64) and ``timestamp`` (float64, in
    seconds) (nnz,). User ``u`` owns rows ``indptr[u]:indptr[u + 1]``, oldest first.
    """

    indptr: np.ndarray
    items: np.ndarray
    types: np.ndarray
    timestamp: np.ndarray

    @classmethod
    def from_data(cls, data: InteractionData) -> BehaviourLog:
        """The log of a data set (already sorted by user, time, line; types from ratings)."""
        counts = np.bincount(data.user, minlength=data.n_users)
        indptr = np.zeros(data.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            indptr=indptr,
            items=np.asarray(data.item, dtype=np.int64),
            types=behaviour_types(data.rating, data.n_interactions),
            timestamp=np.asarray(data.timestamp, dtype=np.float64),
        )

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def positions(self, history: UserSequences) -> np.ndarray:
        """Row of this log of every interaction of ``history``. Shape (nnz_history,) int64.

        Raises:
            ValueError: if a user's history is not an in-order subsequence of its log.
        """
        if history.n_users != self.n_users:
            raise ValueError(f"history has {history.n_users} users, the log {self.n_users}")
        lengths = history.lengths()
        users = np.repeat(np.arange(history.n_users), lengths)
        pos = np.arange(len(history.items)) - history.indptr[users]
        rows = self.indptr[users] + pos
        log_len = np.diff(self.indptr)
        fits = pos < log_len[users]
        ok = fits.copy()
        ok[fits] = self.items[rows[fits]] == history.items[fits]
        for u in np.unique(users[~ok]):  # not a prefix: match in order
            lo, hi = history.indptr[u], history.indptr[u + 1]
            rows[lo:hi] = self._match(u, history.items[lo:hi])
        return rows

    def _match(self, u: int, items: np.ndarray) -> np.ndarray:
        base, end = int(self.indptr[u]), int(self.indptr[u + 1])
        out = np.empty(len(items), dtype=np.int64)
        j = base
        for n, it in enumerate(items.tolist()):
            while j < end and self.items[j] != it:
                j += 1
            if j == end:
                raise ValueError(
                    f"user {u}: history item {it} is not in order in the behaviour log"
                )
            out[n] = j
            j += 1
        return out

    def aligned(self, history: UserSequences) -> tuple[np.ndarray, np.ndarray]:
        """(types, timestamps) of ``history``'s interactions, aligned with ``history.items``.
        Shapes: (nnz_history,) int64 and float64."""
        rows = self.positions(history)
        return self.types[rows], self.timestamp[rows]
