"""The committed design as a whole in RTL: stitched, built with Verilator, 1,000 generated queries
streamed with random gaps and back-pressure, every top-k list compared with the CPU emulation;
measured latency and cycles per query against the layer cycles; stall and missing-backend errors.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fpgarec.errors import FpgarecError
from fpgarec.hwsim import verilator as vl
from fpgarec.hwsim.simulate import Simulator, generate_queries, simulate
from fpgarec.hwsim.stitch import stitch
from fpgarec.runtime.bundle import Bundle, load_bundle
from fpgarec.runtime.emulation import EmulationBackend

pytestmark = pytest.mark.rtlsim


@pytest.fixture(scope="module")
def bundle_dir(repo):
    return repo / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture(scope="module")
def cache(repo):
    return repo / "build" / "rtlsim"


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(0)
    for lanes, bits, signed in ((20, 11, False), (64, 4, True), (1, 16, False), (3, 33, True)):
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        v = rng.integers(lo, hi + 1, size=(50, lanes))
        words = vl.pack_beats(v, lanes, bits)
        assert words.shape == (50, -(-lanes * bits // 32))
        assert np.array_equal(vl.unpack_beats(words, lanes, bits, signed), v)


def test_generated_queries_are_distinct_and_padded():
    ids = generate_queries(400, 20, 1682, 1682, seed=3)
    assert ids.shape == (400, 20)
    for row in ids:
        real = row[row != 1682]
        assert len(set(real.tolist())) == len(real)
        n = len(real)
        assert np.all(row[n:] == 1682)  # real items first, then padding
    n_real = (ids != 1682).sum(axis=1)
    assert (n_real == 20).mean() > 0.5 and (n_real == 0).any() and ((n_real > 0) & (n_real < 20)).any()


def test_whole_design_bit_exact_1000_queries(bundle_dir, cache):
    """The CI run of the whole design: 0 mismatches on 1,000 queries (random pass + steady
    pass + isolated pass), cycles per query not below the slowest layer's."""
    res = simulate(bundle_dir, queries=1000, cache=cache, seed=0)
    print("\n" + json.dumps(res.summary()))
    assert res.mismatches == 0, res.first_mismatch
    slowest = max(res.layer_cycles.values())
    # a dataflow design cannot beat its slowest layer, and sized FIFOs keep it close to it
    assert slowest <= res.cycles_per_query <= 1.25 * slowest, (res.cycles_per_query, res.layer_cycles)
    # a query passes every layer: at least the slowest layer's cycles, at most their sum + slack
    assert slowest < res.latency_cycles <= sum(res.layer_cycles.values()) + 200, res.latency_cycles


def test_outputs_differ_from_a_wrong_reference(bundle_dir, cache):
    """The comparison can fail: the RTL's answers differ from another design's (the emulation
    with other fusion weights) on most queries."""
    bundle = load_bundle(bundle_dir)
    sim = Simulator(bundle, cache, bundle.manifest.get("rtl", {}).get("fifo_depths"))
    ids = generate_queries(100, 20, 1682, 1682, seed=5)
    got = sim.topk(sim.run(ids), len(ids))
    emu = EmulationBackend(bundle)
    assert np.array_equal(got, emu.run(ids))
    other = emu.with_layer_attrs("ModalityFusion", Weights=[265, 194]).run(ids)
    assert np.mean(np.any(got != other, axis=1)) > 0.5


def test_stall_names_the_blocked_layer(bundle_dir, cache):
    """An output that never accepts: the testbench stops after the stall limit and the error
    names the full FIFOs and the layer that stopped, instead of hanging."""
    bundle = load_bundle(bundle_dir)
    sim = Simulator(bundle, cache, bundle.manifest.get("rtl", {}).get("fifo_depths"))
    ids = generate_queries(40, 20, 1682, 1682, seed=6)
    with pytest.raises(vl.SimulationError, match=r"stalled.*LabelSelect.*full"):
        sim.run(ids, backpressure=1.0, stall_cycles=3000)


def test_layer_without_rtl_backend_exits_2(bundle_dir, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    m = json.loads((broken / "manifest.json").read_text())
    m["layers"][5]["op"] = "GlobalAccPool"
    (broken / "manifest.json").write_text(json.dumps(m))
    # stitching names the layer without an RTL backend (the manifest handed in directly: loading
    # the edited bundle is refused before, by the bundle checks)
    good = load_bundle(bundle_dir)
    with pytest.raises(FpgarecError, match="Thresholding_rtl_0 .op GlobalAccPool. has no RTL backend"):
        stitch(Bundle(good.root, m, good.arrays))
    out = subprocess.run([sys.executable, "-m", "fpgarec.cli", "sim", str(broken), "--queries", "10"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert "manifest.json" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_the_demo_fifo_depths_file_fits_the_committed_designs(repo):
    """hw/folding/student_w4.fifo_depths.json (what the demo's simulation uses instead of its
    own sizing run) names exactly the FIFOs of both committed designs, with their sized depths;
    a depths dict for another design is reported as stale."""
    from fpgarec.hwsim.simulate import stale_depths

    depths = json.loads((repo / "hw" / "folding" / "student_w4.fifo_depths.json").read_text())
    for board in ("pynq-z2", "aup-zu3"):
        bundle = load_bundle(repo / "bitstreams" / f"student_w4_{board}")
        assert stale_depths(bundle, depths) is None
        assert depths == bundle.manifest["rtl"]["fifo_depths"]
        stale = stale_depths(bundle, {**depths, "x->y": 2})
        assert stale is not None and "x->y" in stale
        missing = dict(depths)
        gone = next(iter(missing))
        missing.pop(gone)
        assert gone in stale_depths(bundle, missing)


def test_the_top_names_no_random_tensor(bundle_dir):
    """FINN names the tensors between layers at random, so two builds of one student differ in
    them; the stitched top (the key of the Verilator and Yosys caches) must not carry them, or
    every rebuild simulates and synthesizes again (the w4 attention design was synthesized twice,
    7 min each). Names of the top's inputs and outputs (ids, seen, weights) are stable."""
    design = stitch(load_bundle(bundle_dir))
    between_layers = [f.tensor for f in design.fifos if ":" not in f.producer + f.consumer]
    assert len(between_layers) >= 5 and not [t for t in between_layers if t in design.top_sv]
