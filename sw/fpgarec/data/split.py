"""Evaluation protocols: per-user temporal 80/10/10 split, cold users, and the new-user split.

Protocol (fixed so results compare with RecBole and published tools):

* every rating is an implicit interaction;
* per user, interactions ordered by time are cut 80/10/10 into train/valid/test with RecBole's
  rule (``valid = int(0.1 n)``, ``test = int(0.1 n)``, train gets the rest);
* ranking is over all items, excluding the items the user interacted with in earlier splits;
* "cold" users have at most ``cold_max`` (30) interactions in the whole data set;
* "new" users: a seeded ``new_fraction`` (10 %) of users is left out of training entirely; at
  test time a model sees each new user's first ``new_context`` (5) interactions by time and
  ranks all the others.

What the splits need (:func:`check_splits`, run by :func:`fpgarec.data.prepared.prepare` before
any encoding or training): a user with 4 or more interactions (the 80/10/10 rule then gives it
2 train interactions, one "recent items -> later item" example, plus 1 valid and 1 test; 3
give 1/1/1, 2 give 1/0/1, 1 gives 1/0/0), at least 2 users (the new-user split holds out
max(1, 10 %) and trains on the rest), one such user among those kept in training, and a new
user with more than ``new_context`` interactions (at least 6) to rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgarec.data.dataset import InteractionData
from fpgarec.errors import FpgarecError


@dataclass
class UserSequences:
    """Per-user item lists in time order, stored CSR-style.

    Shapes: ``indptr`` (n_users + 1,), ``items`` (nnz,). User ``u`` owns
    ``items[indptr[u]:indptr[u + 1]]``, oldest first.
    """

    indptr: np.ndarray
    items: np.ndarray

    @classmethod
    def from_pairs(cls, user: np.ndarray, item: np.ndarray, n_users: int) -> UserSequences:
        """Build from (user, item) pairs already sorted by (user, time)."""
        counts = np.bincount(user, minlength=n_users)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr=indptr, items=np.asarray(item, dtype=np.int64))

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def of(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) arrays, one entry per stored interaction."""
        return np.repeat(np.arange(self.n_users), self.lengths()), self.items

    def concat(self, other: UserSequences) -> UserSequences:
        """Per-user concatenation ``self[u] + other[u]`` (earlier split first)."""
        lens = self.lengths() + other.lengths()
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        items = np.empty(indptr[-1], dtype=np.int64)
        for u in range(self.n_users):
            a, b = self.of(u), other.of(u)
            items[indptr[u] : indptr[u] + len(a)] = a
            items[indptr[u] + len(a) : indptr[u + 1]] = b
        return UserSequences(indptr=indptr, items=items)


@dataclass
class Split:
    """One train/valid/test cut plus the user groups evaluated on it.

    ``train``, ``valid`` and ``test`` hold every user (empty lists where a user has none).
    ``eval_users`` are the users whose test metrics are averaged; ``cold_users`` a subset.
    ``new_users`` is empty except in the new-user protocol, where ``train``/``valid`` are empty
    for them and ``test`` holds what they are ranked on, ``context`` their few known items.
    """

    n_users: int
    n_items: int
    train: UserSequences
    valid: UserSequences
    test: UserSequences
    cold_users: np.ndarray
    new_users: np.ndarray
    context: UserSequences

    def known_before_test(self) -> UserSequences:
        """Train + valid: what is excluded from test ranking (and what inductive models may use)."""
        return self.train.concat(self.valid)


def _ratio_counts(n: np.ndarray, ratios=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, np.ndarray]:
    """RecBole's ``_calcu_split_ids``: counts of (valid, test) per user of length n."""
    valid = (ratios[1] * n).astype(np.int64)
    test = (ratios[2] * n).astype(np.int64)
    train = n - valid - test
    # RecBole moves one interaction out of train when a part would get 0 < ratio * n < 1
    for part, r in ((test, ratios[2]), (valid, ratios[1])):
        bump = (train > 1) & (r * n > 0) & (r * n < 1)
        part += bump
        train -= bump
    return valid, test


def cold_users(data: InteractionData, cold_max: int = 30) -> np.ndarray:
    """Users with at most ``cold_max`` interactions in the whole data set."""
    counts = np.bincount(data.user, minlength=data.n_users)
    return np.flatnonzero(counts <= cold_max)


def temporal_split(data: InteractionData, cold_max: int = 30) -> Split:
    """Per-user temporal 80/10/10 split over all users."""
    n = np.bincount(data.user, minlength=data.n_users)
    n_valid, n_test = _ratio_counts(n)
    start = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(n, out=start[1:])
    pos = np.arange(data.n_interactions) - start[data.user]  # position inside the user's history
    n_train = n - n_valid - n_test
    part = np.where(pos < n_train[data.user], 0, np.where(pos < (n_train + n_valid)[data.user], 1, 2))
    seqs = [UserSequences.from_pairs(data.user[part == p], data.item[part == p], data.n_users) for p in range(3)]
    empty = UserSequences.from_pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), data.n_users)
    return Split(
        n_users=data.n_users,
        n_items=data.n_items,
        train=seqs[0],
        valid=seqs[1],
        test=seqs[2],
        cold_users=cold_users(data, cold_max),
        new_users=np.zeros(0, dtype=np.int64),
        context=empty,
    )


def new_user_split(
    data: InteractionData, seed: int = 0, new_fraction: float = 0.1, new_context: int = 5
) -> Split:
    """The new-user protocol.

    A seeded ``new_fraction`` of users is removed from train and valid. Their first
    ``new_context`` interactions (by time) become ``context``; all later ones are ``test``. The
    remaining users keep their temporal train/valid parts (valid drives early stopping) and have
    no test part, so only new users are evaluated.
    """
    base = temporal_split(data)
    rng = np.random.default_rng(seed)
    n_new = max(1, round(new_fraction * data.n_users))
    new = np.sort(rng.choice(data.n_users, size=n_new, replace=False))
    is_new = np.zeros(data.n_users, dtype=bool)
    is_new[new] = True

    def without_new_users(seqs: UserSequences) -> UserSequences:
        u, i = seqs.pairs()
        keep = ~is_new[u]
        return UserSequences.from_pairs(u[keep], i[keep], data.n_users)

    full = UserSequences.from_pairs(data.user, data.item, data.n_users)
    fu, fi = full.pairs()
    start = full.indptr[fu]
    pos = np.arange(len(fu)) - start
    ctx_mask = is_new[fu] & (pos < new_context)
    test_mask = is_new[fu] & (pos >= new_context)
    return Split(
        n_users=data.n_users,
        n_items=data.n_items,
        train=without_new_users(base.train),
        valid=without_new_users(base.valid),
        test=UserSequences.from_pairs(fu[test_mask], fi[test_mask], data.n_users),
        cold_users=np.zeros(0, dtype=np.int64),
        new_users=new,
        context=UserSequences.from_pairs(fu[ctx_mask], fi[ctx_mask], data.n_users),
    )


def _split_problem(split: Split, longest: int) -> str | None:
    """What ``split`` lacks for training and evaluation (None: nothing). Training needs a user
    with at least 2 train interactions (an example "recent items -> a later item"), early
    stopping a validation interaction, the evaluation a test interaction."""
    if split.new_users.size == 0:
        what = "the temporal 80/10/10 split"
        need = ("no user would have 2 train, 1 validation and 1 test interaction: it needs at least one "
                f"user with 4 or more interactions, the longest history here has {longest}")
    else:
        if split.new_users.size == split.n_users:
            return (f"the new-user split holds out max(1, 10 %) of the users and trains on the rest: it "
                    f"needs at least 2 users, the data set has {split.n_users}")
        what = "the new-user split"
        need = ("the users left in training lack train/validation interactions (at least one needs 4 or "
                "more)")
        if split.test.items.size == 0:
            need = (f"no new user has an interaction after its {split.context.lengths().max()} context "
                    "interactions to rank: a new user needs at least 6")
    if (split.train.lengths() >= 2).any() and split.valid.items.size and split.test.items.size:
        return None
    return f"cannot make {what}: {need}"


def check_splits(data: InteractionData, *splits: Split) -> None:
    """Refuse, before any training, a data set whose splits leave nothing to train, stop early
    on or evaluate (one line: what cannot be split and the minimum needed)."""
    longest = int(np.bincount(data.user, minlength=data.n_users).max()) if data.n_interactions else 0
    for split in splits:
        problem = _split_problem(split, longest)
        if problem is not None:
            raise FpgarecError(f"{data.folder} ({data.summary()}): {problem}")
