"""What the committed design delivers, from its own output: with the seen items dropped on chip
its top-10 equals the offline protocol's ranking of the same integer scores with the known items
masked, so its NDCG@10 is the offline figure of those scores; every user gets 10 unseen items."""

from __future__ import annotations

import numpy as np
import pytest

from fpgarec.compile.design_metrics import design_ranking_metrics
from fpgarec.data.dataset import load_interactions
from fpgarec.data.sampler import recent_items
from fpgarec.data.split import temporal_split
from fpgarec.runtime.emulation import EmulationBackend
from fpgarec.train.metrics import hits_matrix, ndcg_at_k, top_k

BUNDLE = "bitstreams/student_w4_pynq-z2"


@pytest.fixture(scope="module")
def split():
    return temporal_split(load_interactions(None))


def test_design_output_equals_offline_masking(split, repo):
    bundle = repo / BUNDLE
    emu = EmulationBackend(bundle)
    m = emu.bundle.manifest["model"]
    known = split.known_before_test()
    users = np.flatnonzero(split.test.lengths() > 0)
    got = design_ranking_metrics(bundle, users, known, known, split.test)
    # the offline way: the design's integer scores, known items at -inf, the tie rule
    ctx = recent_items(known, users, m["k"], m["n_recent"], null_id=m["padding"]["null_id"])
    scores = emu.scores(ctx).astype(np.float64)
    truth = np.zeros_like(scores, dtype=bool)
    for r, u in enumerate(users):
        scores[r, known.of(u)] = -np.inf
        truth[r, split.test.of(u)] = True
    hits = hits_matrix(top_k(scores, 10), truth)
    want = float(ndcg_at_k(hits, truth.sum(axis=1), 10).mean())
    assert got["seen_on_chip"] and got["users"] == len(users)
    assert got["ndcg@10"] == pytest.approx(want, abs=1e-12)
    assert got["share_k_unseen"] == 1.0
    # without the bitmap (context ids only) the design returns items the users already have
    ctx_only = emu.run(ctx)
    has_seen = [np.isin(ctx_only[r], known.of(u)).any() for r, u in enumerate(users)]
    assert np.mean(has_seen) > 0.5
