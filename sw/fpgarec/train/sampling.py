"""Batch sources for the training loop."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fpgarec.data.split import UserSequences


class NegativeDraw:
    """Uniform negatives among the items a user has not interacted with in train: one redraw
    round for collisions, then any item (collisions are below 0.1 % on MovieLens)."""

    def __init__(self, train: UserSequences, n_items: int):
        self.n_items = n_items
        self.seen = np.zeros((train.n_users, n_items), dtype=bool)
        users, items = train.pairs()
        self.seen[users, items] = True

    def __call__(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One negative per user. Shapes: (B,) -> (B,) int64."""
        n = rng.integers(0, self.n_items, size=len(users))
        clash = self.seen[users, n]
        n[clash] = rng.integers(0, self.n_items, size=int(clash.sum()))
        return n


def bpr_batches(train: UserSequences, n_items: int, batch_size: int):
    """Epochs of (user, positive item, negative item) triples for the BPR loss.

    Every train interaction appears once per epoch in a seeded random order; negatives are
    drawn uniformly among items the user has not interacted with in train (one redraw round,
    then any item: collisions are below 0.1 % on MovieLens).
    """
    users, items = train.pairs()
    negatives = NegativeDraw(train, n_items)

    def source(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        perm = rng.permutation(len(users))
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            u, p = users[idx], items[idx]
            n = negatives(u, rng)
            yield torch.from_numpy(u), torch.from_numpy(p), torch.from_numpy(n)

    return source


def next_item_batches(
    train: UserSequences, n_items: int, k: int, horizon: int, batch_size: int, long_prob: float = 0.0,
    n_recent: int | None = None, null_id: int | None = None, types: np.ndarray | None = None,
    n_buckets: int | None = None, per_octave: int = 1,
):
    """Epochs of (user, context (B, K), positive, negative) for models that read recent items.

    See :func:`fpgarec.data.sampler.next_item_examples` (contexts null-padded when ``null_id``
    is given; (B, K, 3) [id, behaviour type, recency bucket] when ``types``, aligned with
    ``train.items``, is given, for the attention student); negatives as in :func:`bpr_batches`.
    """
    from fpgarec.data.sampler import next_item_examples

    negatives = NegativeDraw(train, n_items)

    def source(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        extra = {} if types is None else {"types": types, "per_octave": per_octave} | (
            {} if n_buckets is None else {"n_buckets": n_buckets})
        users, ctx, pos = next_item_examples(train, k, horizon, rng, long_prob=long_prob, n_recent=n_recent,
                                             null_id=null_id, **extra)
        perm = rng.permutation(len(users))
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            u = users[idx]
            n = negatives(u, rng)
            yield (torch.from_numpy(u), torch.from_numpy(ctx[idx]), torch.from_numpy(pos[idx]), torch.from_numpy(n))

    return source
