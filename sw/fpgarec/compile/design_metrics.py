"""What the compiled design delivers, measured on its own output.

The offline evaluation (:func:`fpgarec.train.evaluate.evaluate_users`) ranks the student's
float scores with every item a user already has masked. A design ranks on chip: with a
seen-items input (``fpgarec build --exclude-seen``) it drops those items itself, without one it
returns them too. :func:`design_ranking_metrics` runs the design (its bit-exact emulation) on
the same users, context and seen items and scores its top-k list against the test items:

    Recall@k = |top-k ∩ truth| / min(k, |truth|),   NDCG@k = DCG@k / IDCG@k   (k = top_k)

plus the share of users who get k unseen items. Empty slots (fewer than k items left) hold N
and count as misses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgarec.data.split import Split, UserSequences
from fpgarec.runtime.bundle import Bundle, load_bundle
from fpgarec.runtime.emulation import EmulationBackend
from fpgarec.runtime.sampler import History, HostSampler
from fpgarec.train.metrics import hits_matrix, ndcg_at_k, recall_at_k


def _rows(users: np.ndarray, seqs: UserSequences, n_items: int) -> np.ndarray:
    mask = np.zeros((len(users), n_items), dtype=bool)
    for r, u in enumerate(users):
        mask[r, seqs.of(u)] = True
    return mask


def design_ranking_metrics(bundle: Bundle | Path | str, users: np.ndarray, history: UserSequences,
                           exclude: UserSequences, truth: UserSequences, batch: int = 512,
                           types: np.ndarray | None = None) -> dict:
    """The design's Recall@k / NDCG@k over ``users`` with test items, and the share of users
    whose k items are all unseen. ``history``: the context the sampler reads (the K most
    recent items); ``exclude``: the items each user has (the seen bitmap); ``types``: behaviour
    types aligned with ``history.items`` (attention designs only, which read them)."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    m = bundle.manifest["model"]
    n_items, top_k = int(m["n_items"]), int(m["top_k"])
    # the runtime's sampler, as the service uses it: the K slots of each user's history (an
    # attention design: meta words with each slot's behaviour type and recency bucket)
    sampler = HostSampler.from_manifest(bundle.manifest, History(history.indptr, history.items, n_items,
                                                                 source="the split's history", types=types))
    emu = EmulationBackend(bundle)
    users = np.asarray(users, dtype=np.int64)
    users = users[truth.lengths()[users] > 0]
    rec = ndcg = 0.0
    full_unseen = 0
    for start in range(0, len(users), batch):
        ub = users[start:start + batch]
        ctx = sampler.users(ub)
        seen = _rows(ub, exclude, n_items)
        top = emu.run(ctx, seen=seen)[:, :top_k]
        ok = top < n_items
        full_unseen += int(np.all(ok & ~np.take_along_axis(seen, np.where(ok, top, 0), axis=1), axis=1).sum())
        truth_mask = np.concatenate([_rows(ub, truth, n_items), np.zeros((len(ub), 1), bool)], axis=1)
        hits = hits_matrix(np.where(ok, top, n_items), truth_mask)
        n_truth = truth_mask.sum(axis=1)
        rec += float(recall_at_k(hits, n_truth, top_k).sum())
        ndcg += float(ndcg_at_k(hits, n_truth, top_k).sum())
    n = max(1, len(users))
    return {f"recall@{top_k}": rec / n, f"ndcg@{top_k}": ndcg / n, "users": int(len(users)),
            "share_k_unseen": full_unseen / n, "seen_on_chip": emu.seen_input is not None,
            "source": "the design's own top-k list (bit-exact emulation)"}


def design_test_metrics(bundle: Bundle | Path | str, split: Split, types: np.ndarray | None = None) -> dict:
    """:func:`design_ranking_metrics` on the test split, all and cold users, with the offline
    protocol's input and exclusion (everything known before the test period). ``types``:
    behaviour types aligned with ``split.known_before_test().items`` (attention designs)."""
    known = split.known_before_test()
    users = np.arange(split.n_users)
    return {"all": design_ranking_metrics(bundle, users, known, known, split.test, types=types),
            "cold": design_ranking_metrics(bundle, split.cold_users, known, known, split.test, types=types)}
