"""Small designs compiled by the real flow (tests/small_design.py: 200 items, D=16, K=4, 4 bit)
and simulated as a whole in Verilator: FIFO sizing, a seen-items bitmap dropping items on chip
(``--exclude-seen``), the emulation and the RTL agreeing bit for bit on both."""

from __future__ import annotations

import numpy as np
import pytest

from fpgarec.hwsim.simulate import Simulator, generate_queries, generate_seen, simulate
from fpgarec.runtime.bundle import load_bundle
from fpgarec.runtime.emulation import EmulationBackend

pytestmark = pytest.mark.rtlsim


def test_seen_manifest_and_emulation(seen_bundle):
    m = load_bundle(seen_bundle).manifest
    last = m["layers"][-1]
    assert last["attrs"]["SeenMode"] == 2 and last["inputs"][1] == "seen"
    assert m["io"]["seen"]["shape_normal"] == [1, last["attrs"]["Labels"]]
    emu = EmulationBackend(seen_bundle)
    ids = generate_queries(200, 4, 200, 200, seed=1)
    top, scores = emu.run_with_scores(ids)
    # default seen = the query's own context items: none of them is returned
    for row, ctx in zip(top, ids, strict=True):
        assert not set(row.tolist()) & set(ctx[ctx < 200].tolist())
    # the same as ranking the scores with the seen items removed, by the tie rule
    key = scores.astype(np.float64) * 1000 - np.arange(200)
    for b in range(len(ids)):
        k = key[b].copy()
        k[ids[b][ids[b] < 200]] = -np.inf
        assert np.array_equal(top[b], np.argsort(-k, kind="stable")[: top.shape[1]])


def test_seen_input_in_finns_graph(seen_bundle):
    """FINN's graph has the seen bitmap too (a second input into LabelSelect_rtl, SeenMode 2):
    FINN's execution with the emulation's bitmaps (histories from empty to almost everything)
    equals the emulation."""
    from fpgarec.compile.verify import FinnBackend

    finn = FinnBackend(seen_bundle)
    assert finn.has_seen_input and [i.name for i in finn.model.graph.input] == ["ids", "seen"]
    emu = EmulationBackend(seen_bundle)
    ids = generate_queries(40, 4, 200, 200, seed=5)
    seen = emu.seen_bitmap(ids, generate_seen(ids, 200, 200, seed=5))
    top, scores = finn.run_with_scores(ids, seen=seen)
    want_top, want_scores = emu.run_with_scores(ids, seen=seen)
    assert np.array_equal(scores, want_scores) and np.array_equal(top, want_top)


def test_seen_design_rtl_bit_exact(seen_bundle, repo):
    """The seen design in Verilator against the emulation, with histories from empty to
    almost everything (fewer than top_k items left: the empty slots hold N)."""
    res = simulate(seen_bundle, queries=400, cache=repo / "build" / "rtlsim", seed=2)
    assert res.mismatches == 0, res.first_mismatch
    emu = EmulationBackend(seen_bundle)
    ids = generate_queries(400, 4, 200, 200, seed=2)
    top = emu.run(ids, seen=generate_seen(ids, 200, 200, seed=2))
    n_labels = emu.layers[-1]["attrs"]["Labels"]
    assert (top == n_labels).any(), "no query with fewer than top_k unseen items: the test lost its edge case"


def test_history_beyond_the_context_is_dropped(seen_bundle, repo):
    """Items of a user's history that are not among the K context ids are dropped too (the
    bitmap carries the whole history), in the emulation and in the RTL."""
    bundle = load_bundle(seen_bundle)
    sim = Simulator(bundle, repo / "build" / "rtlsim", default_depth=8)
    ids = generate_queries(30, 4, 200, 200, seed=4)
    ctx_only = sim.emulation.run(ids)
    seen = np.zeros((30, 200), dtype=bool)
    seen[np.arange(30), ctx_only[:, 0]] = True  # the best unseen item becomes "seen"
    seen[np.nonzero(ids < 200)[0], ids[ids < 200]] = True
    got = sim.topk(sim.run(ids, seen), 30)
    assert np.array_equal(got, sim.emulation.run(ids, seen=seen))
    assert not np.any(got[:, 0] == ctx_only[:, 0])
