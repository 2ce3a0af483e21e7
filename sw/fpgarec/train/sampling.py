"""Batch sources for the training loop."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fpgarec.data.split import UserSequences


def bpr_batches(train: UserSequences, n_items: int, batch_size: int):
    """Epochs of (user, positive item, negative item) triples for the BPR loss.

    Every train interaction appears once per epoch in a seeded random order; negatives are
    drawn uniformly among items the user has not interacted with in train (one redraw round,
    then any item: collisions are below 0.1 % on MovieLens).
    """
    users, items = train.pairs()
    seen = np.zeros((train.n_users, n_items), dtype=bool)
    seen[users, items] = True

    def source(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        perm = rng.permutation(len(users))
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            u, p = users[idx], items[idx]
            n = rng.integers(0, n_items, size=len(idx))
            clash = seen[u, n]
            n[clash] = rng.integers(0, n_items, size=int(clash.sum()))
            yield torch.from_numpy(u), torch.from_numpy(p), torch.from_numpy(n)

    return source


def next_item_batches(
    train: UserSequences, n_items: int, k: int, horizon: int, batch_size: int, long_prob: float = 0.0,
    n_recent: int | None = None, null_id: int | None = None,
):
    """Epochs of (user, context (B, K), positive, negative) for models that read recent items.

    See :func:`fpgarec.data.sampler.next_item_examples` (contexts null-padded when ``null_id``
    is given); negatives as in :func:`bpr_batches`.
    """
    from fpgarec.data.sampler import next_item_examples

    seen = np.zeros((train.n_users, n_items), dtype=bool)
    u_all, i_all = train.pairs()
    seen[u_all, i_all] = True

    def source(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        users, ctx, pos = next_item_examples(train, k, horizon, rng, long_prob=long_prob, n_recent=n_recent,
                                             null_id=null_id)
        perm = rng.permutation(len(users))
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            u = users[idx]
            n = rng.integers(0, n_items, size=len(idx))
            clash = seen[u, n]
            n[clash] = rng.integers(0, n_items, size=int(clash.sum()))
            yield (torch.from_numpy(u), torch.from_numpy(ctx[idx]), torch.from_numpy(pos[idx]), torch.from_numpy(n))

    return source
