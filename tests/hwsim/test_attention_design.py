"""The small attention design (tests/small_design.py's student with ``aggregation="attention"``,
built by the real flow) simulated as a whole in Verilator: the AttentionAggregate_rtl layer
(kernels/attention_aggregate/rtl) fed by the fused vectors and the meta words, the Lookups
reading the words' id field, bit exact with the emulation; cycles per query = the kernel's."""

from __future__ import annotations

import pytest

from fpgarec.hwsim.layers import rtl_layers
from fpgarec.hwsim.simulate import simulate
from fpgarec.runtime.bundle import load_bundle
from small_design import make_attention_student, small_build_config

pytestmark = pytest.mark.rtlsim


@pytest.fixture(scope="module")
def attention_bundle(tmp_path_factory):
    from fpgarec.compile.flow import build

    tmp = tmp_path_factory.mktemp("attention_design")
    _, path = make_attention_student(tmp)
    return build(path, small_build_config(tmp, design="attention"))


def test_attention_layers_have_rtl(attention_bundle):
    layers = {r.op: r for r in rtl_layers(load_bundle(attention_bundle))}
    att = layers["AttentionAggregate"]
    assert att.module == "attention_aggregate" and [p.bits for p in att.inputs] == [4, 13]
    assert att.params["EMIT_WEIGHTS"] == 0 and att.cycles == 34
    assert layers["Lookup"].params["ID_BITS"] == 8 and layers["Lookup"].inputs[0].used_bits == 8


def test_attention_design_rtl_bit_exact(attention_bundle, repo):
    """400 queries (a quarter null-padded, some all padding; random types and buckets) with
    random input gaps and back-pressure, then back to back: 0 mismatches against the emulation,
    34 cycles per query (the attention layer, K + W + G + K·D/PE + 8 at PE 8)."""
    res = simulate(attention_bundle, queries=400, cache=repo / "build" / "rtlsim", seed=3)
    assert res.mismatches == 0, res.first_mismatch
    assert res.cycles_per_query == pytest.approx(34, abs=0.5)
