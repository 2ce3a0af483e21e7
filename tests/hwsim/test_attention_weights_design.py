"""The small attention design built with ``emit_weights`` simulated as a whole in Verilator: the
attention weights leave the top on out1 (W+1 bits, K beats per query, their own FIFO, random
back-pressure independent of out0), bit exact with EmulationBackend.run_with_weights, and the
design keeps the 34 cycles per query of the design without the weight stream."""

from __future__ import annotations

import numpy as np
import pytest

from fpgarec.hwsim.simulate import Simulator, simulate, stale_depths
from fpgarec.hwsim.stitch import MIN_DEPTH, stitch
from fpgarec.runtime.bundle import load_bundle
from small_design import build_attention_weights_design, make_attention_student

pytestmark = pytest.mark.rtlsim

#: the out1 FIFO's key (producer->consumer)
OUT1_FIFO = "AttentionAggregate_rtl_0->output:weights"


@pytest.fixture(scope="module")
def weights_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attention_weights_design")
    return build_attention_weights_design(make_attention_student(tmp)[1], tmp)


@pytest.fixture(scope="module")
def depths(weights_bundle):
    """Every FIFO at the minimum depth 2: what the sizing run (``fpgarec sim --size-fifos``)
    gives this design, the out1 FIFO included (measured; one Verilator build fewer here)."""
    return {f.key: MIN_DEPTH for f in stitch(load_bundle(weights_bundle)).fifos}


def test_top_has_the_weight_output(weights_bundle, depths):
    design = stitch(load_bundle(weights_bundle))
    assert design.out1 is not None and (design.out1.lanes, design.out1.bits, design.out1.beats) == (1, 11, 4)
    assert "output logic [10:0] out1_V_TDATA" in design.top_sv
    assert OUT1_FIFO in depths and stale_depths(load_bundle(weights_bundle), depths) is None
    missing = {k: v for k, v in depths.items() if k != OUT1_FIFO}
    assert OUT1_FIFO in stale_depths(load_bundle(weights_bundle), missing)


def test_weights_design_rtl_bit_exact(weights_bundle, depths, repo):
    """400 queries (a quarter null-padded, some all padding; random types and buckets) with
    random input gaps and back-pressure on both outputs, then back to back, then one at a
    time: 0 mismatches in top-k and weights, 34 cycles per query (as without the weights)."""
    res = simulate(weights_bundle, queries=400, cache=repo / "build" / "rtlsim", seed=3, depths=depths)
    assert res.mismatches == 0 and res.weight_mismatches == 0, res.first_mismatch
    assert res.cycles_per_query == pytest.approx(34, abs=0.5)
    assert res.summary()["weight_mismatches"] == 0


def test_a_wrong_weight_is_reported(weights_bundle, depths, repo):
    """The comparison has teeth: one altered expected weight is one mismatch, named as such."""
    sim = Simulator(weights_bundle, repo / "build" / "rtlsim", depths)  # the build above, cached
    from fpgarec.hwsim.simulate import _queries

    ids = _queries(sim.bundle, 24, seed=5)
    res = sim.run(ids, backpressure=0.5, seed=9)
    top, w = sim.expected(ids)
    assert sim.mismatches(res, ids, (top, w), "check") == (0, 0, None)
    w = w.copy()
    w[7, 2] += 1
    n, n_w, first = sim.mismatches(res, ids, (top, w), "check")
    assert (n, n_w) == (1, 1) and "query 7" in first and "attention weights" in first
    assert np.array_equal(sim.weights(res, len(ids))[7], w[7] - np.eye(4, dtype=np.int64)[2])
