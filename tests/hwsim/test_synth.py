"""Yosys synthesis of a whole stitched design: cells attributed to the layers they implement,
per-layer totals adding up to the design's, a logic-depth figure per layer."""

from __future__ import annotations

import pytest

from fpgarec.hwsim.stitch import stitch
from fpgarec.hwsim.synth import MAX_LUT_LEVELS, family_of, synthesize
from fpgarec.runtime.bundle import load_bundle

pytestmark = pytest.mark.rtlsim


def test_family_of_parts():
    assert family_of("xc7z020clg400-1") == "xc7"
    assert family_of("xczu3eg-sfvc784-2-e") == "xcup"
    with pytest.raises(Exception, match="no Yosys family"):
        family_of("ice40up5k")


def test_small_design_synthesis_per_layer(seen_bundle, rtl_cache):
    bundle = load_bundle(seen_bundle)
    design = stitch(bundle, default_depth=4)
    res = synthesize(design, bundle.manifest["part"], rtl_cache)
    names = {r.name for r in design.layers}
    assert set(res.layers) == names | {"streams"}
    for key in ("LUT", "FF", "BRAM18", "DSP"):
        assert sum(layer[key] for layer in res.layers.values()) == res.total[key], key
    ops = {r.name: r.op for r in design.layers}
    for name, layer in res.layers.items():
        if ops.get(name) in ("MVAU", "LabelSelect", "Thresholding"):
            assert layer["LUT"] > 50, (name, layer)  # compute layers are not attributed elsewhere
        if ops.get(name) == "Lookup":
            assert layer["BRAM18"] >= 1, (name, layer)
    # every layer with logic has a depth figure; the FIFOs and converters are shallow
    for name in names:
        assert name in res.depth, name
    assert res.depth["streams"]["lut_levels"] <= MAX_LUT_LEVELS
    # cached: the second call does not run Yosys again
    again = synthesize(design, bundle.manifest["part"], rtl_cache)
    assert again.cached and again.total == res.total
