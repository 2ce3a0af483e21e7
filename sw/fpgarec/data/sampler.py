"""Neighbour sampling: the K items a user is represented by (host side of the co-design split).

A user is represented by its K most recent interacted items. A user with fewer than K items
(a cold-start user with 3 interactions) fills the K slots in one of two ways:

- ``null`` padding (``null_id`` given, what the aggregation kernel expects): the L = min(len, K)
  real items first, then K - L slots holding ``null_id``, which the kernel does not count, so
  its mean is the exact mean over the L real items (kernels/neighbor_aggregate);
- cyclic repetition (``null_id`` None; the float teacher and bundles built before the kernel):
  slots = s[-L:][arange(K) mod L], exact for a mean only when L divides K.

The first L slots are the same in both schemes (:func:`null_to_cyclic` converts).

Everything here is O(K) per query and vectorised over a batch.
"""

from __future__ import annotations

import numpy as np

from fpgarec.data.split import UserSequences


def context_slots(starts: np.ndarray, ends: np.ndarray, k: int, n_recent: int | None = None) -> np.ndarray:
    """Flat positions of the K context slots for sequences ``items[starts[b]:ends[b]]``.

    With ``n_recent`` = None (or >= K) the slots are the K most recent items. Otherwise a
    sequence longer than K gives its ``n_recent`` most recent items plus K - n_recent items
    evenly spaced over its older part (long-term interest), deterministic and O(K):

        older_j = start + floor(j * (L - n_recent) / (K - n_recent)),  j = 0 .. K - n_recent - 1

    Sequences of at most K items are repeated cyclically as described in the module docstring.

    Shapes: starts, ends (B,) with ends > starts -> (B, K) int64 positions into the flat array.
    """
    total = ends - starts
    length = np.minimum(total, k)
    if np.any(length <= 0):
        raise ValueError("a user with no history cannot be represented by its neighbours")
    first = ends - length
    pos = first[:, None] + (np.arange(k)[None, :] % length[:, None])
    if n_recent is not None and n_recent < k:
        long = total > k
        n_old = k - n_recent
        older = starts[long, None] + (np.arange(n_old)[None, :] * (total[long, None] - n_recent)) // n_old
        recent = ends[long, None] - n_recent + np.arange(n_recent)[None, :]
        pos[long] = np.concatenate([older, recent], axis=1)
    return pos


def pad_with_null(ctx: np.ndarray, lengths: np.ndarray, null_id: int | None) -> np.ndarray:
    """Replace the slots j >= L of each row by ``null_id`` (no-op when it is None).
    Shapes: ctx (B, K), lengths (B,) sequence lengths -> (B, K), modified in place."""
    if null_id is not None:
        ctx[np.arange(ctx.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = null_id
    return ctx


def null_to_cyclic(ctx: np.ndarray, null_id: int) -> np.ndarray:
    """The cyclic form of null-padded contexts (real items first). Shapes: (B, K) -> (B, K).
    A row without any real item is returned unchanged."""
    ctx = np.asarray(ctx)
    length = np.maximum((ctx != null_id).sum(axis=1), 1)
    idx = np.arange(ctx.shape[1])[None, :] % length[:, None]
    return np.take_along_axis(ctx, idx, axis=1)


def recent_items(history: UserSequences, users: np.ndarray, k: int, n_recent: int | None = None,
                 null_id: int | None = None) -> np.ndarray:
    """The K context items of each user (see :func:`context_slots`), null-padded when
    ``null_id`` is given. Shapes: (B,) -> (B, K)."""
    users = np.asarray(users, dtype=np.int64)
    starts, ends = history.indptr[users], history.indptr[users + 1]
    ctx = history.items[context_slots(starts, ends, k, n_recent)]
    return pad_with_null(ctx, ends - starts, null_id)


#: recency buckets R of the attention student (``b_pos``): log-spaced ranks, see :func:`recency_bucket`.
N_RECENCY_BUCKETS = 8


def recency_bucket(rank: np.ndarray, n_buckets: int = N_RECENCY_BUCKETS, per_octave: int = 1) -> np.ndarray:
    """Recency bucket of an interaction ``rank`` places before the end of the context (rank 0:
    the most recent item), log-spaced so recent items are told apart and old ones share one:

        r = min(floor(o · log2(ρ + 1)), R - 1)     (o = ``per_octave`` buckets per doubling)

    o = 1, R = 8: ρ = 0 | 1-2 | 3-6 | 7-14 | 15-30 | 31-62 | 63-126 | >= 127 (the n_recent = 12
    most recent slots fall in buckets 0-3, the evenly spaced older slots of a long history in
    3-7); o = 2 splits each doubling in two (ρ = 0 | - | 1 | 2 | 3-4 | 5-6 | 7-10 | 11-14 | ...,
    bucket 1 unused). Shapes: any -> same, int64."""
    rank = np.maximum(np.asarray(rank, dtype=np.int64), 0)
    r = np.floor(per_octave * np.log2(rank + 1.0) + 1e-9).astype(np.int64)
    return np.minimum(r, n_buckets - 1)


def slot_meta(pos: np.ndarray, ends: np.ndarray, lengths: np.ndarray, types: np.ndarray,
              n_buckets: int = N_RECENCY_BUCKETS, per_octave: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Behaviour types and recency buckets of context slots (what the attention kernel reads
    beside the ids): slot j at flat position pos[b, j] of a sequence ending at ends[b] has

        t_j = types[pos[b, j]],   r_j = recency_bucket(ends[b] - 1 - pos[b, j])

    and null slots (j >= lengths[b], see :func:`pad_with_null`) get type 0, bucket 0 (the
    kernel ignores them). ``types`` is aligned with the flat item array (e.g.
    :meth:`fpgarec.data.behaviour.BehaviourLog.aligned`). Shapes: pos (B, K), ends, lengths
    (B,), types (nnz,) -> (types (B, K), buckets (B, K)) int64."""
    t = np.asarray(types, dtype=np.int64)[pos]
    r = recency_bucket(np.asarray(ends)[:, None] - 1 - pos, n_buckets, per_octave)
    null = np.arange(pos.shape[1])[None, :] >= np.asarray(lengths)[:, None]
    t[null], r[null] = 0, 0
    return t, r


def with_meta(ctx: np.ndarray, types: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """(B, K) ids, types, buckets -> (B, K, 3) [id, type, bucket] (the attention student's input)."""
    return np.stack([ctx, types, buckets], axis=-1).astype(np.int64)


def recent_items_meta(history: UserSequences, types: np.ndarray, users: np.ndarray, k: int,
                      n_recent: int | None = None, null_id: int | None = None,
                      n_buckets: int = N_RECENCY_BUCKETS, per_octave: int = 1) -> np.ndarray:
    """:func:`recent_items` with each slot's behaviour type and recency bucket (:func:`slot_meta`;
    ``types`` aligned with ``history.items``). Shapes: (B,) -> (B, K, 3) [id, type, bucket]."""
    users = np.asarray(users, dtype=np.int64)
    starts, ends = history.indptr[users], history.indptr[users + 1]
    pos = context_slots(starts, ends, k, n_recent)
    lengths = np.minimum(ends - starts, k) if null_id is not None else np.full(len(users), k)
    ctx = pad_with_null(history.items[pos], ends - starts, null_id)
    return with_meta(ctx, *slot_meta(pos, ends, lengths, types, n_buckets, per_octave))


def items_as_context(item_lists: list[np.ndarray], k: int, null_id: int | None = None) -> np.ndarray:
    """K slots from explicit item lists (a request that carries a new user's items)."""
    seqs = UserSequences.from_pairs(
        np.repeat(np.arange(len(item_lists)), [len(x) for x in item_lists]),
        np.concatenate(item_lists) if item_lists else np.zeros(0, np.int64),
        len(item_lists),
    )
    return recent_items(seqs, np.arange(len(item_lists)), k, null_id=null_id)


def example_positions(train: UserSequences, horizon: int, rng: np.random.Generator, min_context: int = 1):
    """Every train interaction at position p >= ``min_context`` of its user as a positive, with
    a gap j ~ U{0, horizon - 1} drawn per example (the context ends at p - j).

    Returns (users, positives, sequence starts, positions p, gaps j), each (E,).
    """
    users, items = train.pairs()
    start = train.indptr[users]
    pos = np.arange(len(users)) - start
    keep = pos >= min_context
    users, items, start, pos = users[keep], items[keep], start[keep], pos[keep]
    return users, items, start, pos, rng.integers(0, horizon, size=len(pos))


def next_item_examples(
    train: UserSequences, k: int, horizon: int, rng: np.random.Generator, min_context: int = 1,
    long_prob: float = 0.0, n_recent: int | None = None, null_id: int | None = None,
    types: np.ndarray | None = None, n_buckets: int = N_RECENCY_BUCKETS, per_octave: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training examples "recent items -> a later item" from the train sequences.

    Every train interaction at position p >= min_context of its user becomes a positive; its
    context is the K items before position e = p - j, j ~ U{0, horizon - 1} (clipped to
    e >= min_context), mimicking the gap between what a model sees and what it must predict.
    With probability ``long_prob`` the gap is instead uniform over everything before p
    (long-range examples: a few early items -> a much later one, as new users are ranked).

    Contexts are null-padded when ``null_id`` is given. With ``types`` (aligned with
    ``train.items``) a context is (K, 3) [id, type, recency bucket] (:func:`slot_meta`).

    Returns (users (E,), contexts (E, K) or (E, K, 3), positives (E,)).
    """
    users, items, start, pos, gap = example_positions(train, horizon, rng, min_context)
    if long_prob > 0:
        long = rng.random(len(pos)) < long_prob
        gap[long] = (rng.random(int(long.sum())) * (pos[long] - min_context + 1)).astype(np.int64)
    end = np.maximum(pos - gap, min_context)
    slots = context_slots(start, start + end, k, n_recent)
    ctx = pad_with_null(train.items[slots], end, null_id)
    if types is not None:
        lengths = np.minimum(end, k) if null_id is not None else np.full(len(end), k)
        ctx = with_meta(ctx, *slot_meta(slots, start + end, lengths, types, n_buckets, per_octave))
    return users, ctx, items
