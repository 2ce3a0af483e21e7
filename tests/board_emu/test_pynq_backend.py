"""The PYNQ backend on the real pynq 4.0.0 package with an emulated PYNQ-Z2 (``.venv-pynq``).

What runs as on a board: pynq's device registry, ``Overlay`` (metadata parsing of the generated
``.hwh``, ``.bit`` header parsing, IP driver binding), ``allocate`` / ``PynqBuffer`` with
flush/invalidate, ``MMIO`` register access and ``Clocks`` (Zynq-7000 SLCR divisors). What is
emulated: the device underneath (``emulated_device.py``).

The committed bundle has a seen-items input: two input DMAs (``idma0`` ids, ``idma1`` the seen
bitmap) and one output DMA; ``single_input_bundle`` is the same design without it (one input
DMA, as bundles built without ``--exclude-seen``). ``weights_bundle`` (built by
``build_bundles.py``) is a small attention design with the weight stream: two input and two
output DMAs (``odma1``: each query's attention weights).
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

pynq = pytest.importorskip("pynq", reason="pynq 4.0.0 lives in .venv-pynq (requirements/pynq.txt)")


@pytest.fixture
def ids(bundle):
    """150 queries; with null padding every third is a cold-start user (L real items, then the
    null id), one of them without any item."""
    m = bundle.manifest["model"]
    rng = np.random.default_rng(7)
    out = rng.integers(0, m["n_items"], size=(150, m["k"]))
    if bundle.null_id is not None:
        lengths = rng.integers(0, m["k"], size=150)
        cold = (np.arange(150) % 3 == 0)[:, None] & (np.arange(m["k"])[None, :] >= lengths[:, None])
        out[cold] = bundle.null_id
        out[0] = bundle.null_id
    return out


def test_generated_overlay_reads_with_pynqs_parsers(overlay, bundle):
    from pynq.pl_server.embedded_device import bit2bin, parse_bit_header
    from pynqmetadata.frontends import Metadata
    from pynqmetadata.views.runtime import RuntimeMetadataParser

    from fpgarec.runtime.pynq_hwh import EMULATION_MARKER, dma_addresses

    parser = RuntimeMetadataParser(Metadata(input=overlay.hwh))
    assert parser.family_ps == "processing_system7"
    io = bundle.manifest["io"]
    assert bundle.manifest["dma"] == {"input": ["idma0", "idma1"], "output": ["odma0"]}
    assert dma_addresses(bundle.manifest) == {"idma0": 0x4000_0000, "idma1": 0x4000_1000, "odma0": 0x4000_2000}
    # every DMA describes the stream it carries: idma1 the seen bitmap, PE = 48 bits per word
    streams = {"idma0": io["input"], "idma1": io["seen"], "odma0": io["output"]}
    assert {n: x["stream_width_bits"] for n, x in streams.items()} == {"idma0": 224, "idma1": 48, "odma0": 16}
    for name, base in dma_addresses(bundle.manifest).items():
        ip = parser.ip_dict[name]
        assert (ip["phys_addr"], ip["addr_range"]) == (base, 0x1000)
        params = ip["parameters"]
        assert int(params["STREAM_WIDTH_BITS"]) == streams[name]["stream_width_bits"]
        assert params["STREAM_NAME"] == streams[name]["name"]
        regs = ip["registers"]
        assert regs["CTRL"]["address_offset"] == 0x00 and regs["numReps"]["address_offset"] == 0x1C
        assert regs["CTRL"]["fields"]["AP_DONE"]["bit_offset"] == 1
    assert parser.clock_dict[0]["enable"] == 1 and parser.clock_dict[0]["divisor0"] == 10
    header = parse_bit_header(overlay.bit.read_bytes())
    assert EMULATION_MARKER in header["design"] and header["part"] == "7z020clg400"
    assert len(bit2bin(overlay.bit.read_bytes())) % 4 == 0
    assert "GENERATED FOR EMULATION" in overlay.hwh.read_text()[:400]
    sidecar = json.loads(overlay.sidecar.read_text())
    assert sidecar["generated_for_emulation"] is True
    assert sidecar["streams"] == {"idma0": "ids", "idma1": "seen", "odma0": "topk"}
    assert not bundle.bitstream_built  # the bundle itself never claims a bitstream


def test_board_present_follows_pynqs_registry(make_device):
    from fpgarec.runtime.pynq_backend import board_present

    assert not board_present()  # pynq imports, but finds no device
    make_device()
    assert board_present()


def test_backend_is_bit_exact_with_emulation_and_drives_dmas_like_finn(device, overlay, bundle, ids):
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.pynq_backend import PynqBackend

    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=64, timeout_s=2.0) as backend:
        out = backend.run(ids)  # seen: by default each query's context ids
        info = backend.info()
        ibuf, sbuf, obuf = (backend._ibuf.device_address, backend._sbuf.device_address,
                            backend._obuf.device_address)
    emu = EmulationBackend(bundle)
    assert out.dtype == np.int64 and out.shape == (150, bundle.manifest["model"]["top_k"])
    np.testing.assert_array_equal(out, emu.run(ids))
    assert device.batches == [64, 64, 22] and not device.errors
    # one flush per input buffer and batch, one invalidate of the output buffer per batch
    assert device.downloads == 1 and device.flushes == 6 and device.invalidates == 3
    assert info["emulated"] and info["seen_on_chip"]
    assert info["dma"] == {"idma0": 0x4000_0000, "idma1": 0x4000_1000, "odma0": 0x4000_2000}
    assert info["streams"] == {"idma0": "ids", "idma1": "seen", "odma0": "topk"}
    assert len({ibuf, sbuf, obuf}) == 3
    # every batch: FINN's execute_on_buffers order, odma armed before the input DMAs, then
    # idma0 (ids) and idma1 (seen bitmap), each address / numReps / ap_start
    seq = [("odma0", obuf), ("idma0", ibuf), ("idma1", sbuf)]
    for rows, batch in zip((64, 64, 22), range(3), strict=True):
        assert device.writes[12 * batch: 12 * batch + 12] == [
            (name, reg, value) for name, addr in seq for reg, value in ((0x10, addr), (0x14, 0), (0x1C, rows), (0x00, 1))]
    assert len(device.writes) == 36
    # what reached the fabric in the last batch: the ids, and the bitmap of each query's context
    np.testing.assert_array_equal(device.inputs["idma0"], ids[128:])
    np.testing.assert_array_equal(device.inputs["idma1"].astype(bool), emu.seen_bitmap(ids[128:]))
    context = (out[:, :, None] == ids[:, None, :]).any(axis=2)
    assert not context.any()  # no query gets back an item of its own context


def test_single_query_and_empty_batch(device, overlay, bundle, ids):
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.pynq_backend import PynqBackend

    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=8) as backend:
        np.testing.assert_array_equal(backend.run(ids[0]), EmulationBackend(bundle).run(ids[:1]))
        assert backend.run(ids[:0]).shape == (0, bundle.manifest["model"]["top_k"])
        with pytest.raises(ValueError, match="lie in"):
            backend.run(np.full((1, ids.shape[1]), bundle.max_id + 1))


def test_zynq_clock_through_pynq_clocks(device, overlay, bundle):
    from fpgarec.runtime.pynq_backend import PynqBackend

    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=4) as backend:
        assert backend.fclk0_mhz == pytest.approx(100.0)  # the .hwh's FCLK0, set on download
    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=4, clock_mhz=50.0) as backend:
        assert backend.fclk0_mhz == pytest.approx(50.0)
    ctrl = int(device.slcr[0x170 // 4])  # FPGA0_CLK_CTRL: IO PLL 1000 MHz / (DIVISOR0 * DIVISOR1)
    assert ((ctrl >> 8) & 0x3F) * ((ctrl >> 20) & 0x3F) == 20
    assert pynq.Clocks.fclk0_mhz == pytest.approx(50.0)


def test_hang_raises_timeout_with_register_state(make_device, overlay, bundle, ids):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import DmaTimeoutError, PynqBackend

    make_device(mode="hang")
    backend = PynqBackend(bundle, bitfile=overlay.bit, batch_size=16, timeout_s=0.2)
    t0 = time.monotonic()
    with pytest.raises(DmaTimeoutError) as err:
        backend.run(ids[:16])
    assert 0.2 <= time.monotonic() - t0 < 5
    msg = str(err.value)
    assert isinstance(err.value, FpgarecError) and "\n" not in msg
    assert "odma0 did not finish a batch of 16 queries within 0.2 s" in msg
    assert "odma0 ctrl=0x00000001 (ap_start)" in msg and "count=16" in msg
    assert "idma0 ctrl=0x00000001 (ap_start)" in msg and "idma1 ctrl=0x00000001 (ap_start)" in msg
    regs = err.value.registers
    assert list(regs) == ["odma0", "idma0", "idma1"]
    assert regs["odma0"]["addr"] == backend._obuf.device_address and regs["idma0"]["count"] == 16
    assert regs["idma1"]["addr"] == backend._sbuf.device_address and regs["idma1"]["count"] == 16
    assert not regs["odma0"]["ctrl"] & 0x2
    with pytest.raises(FpgarecError, match="not idle before start"):
        backend.run(ids[:1])  # the design is still busy: refused, with the registers
    backend.close()


@pytest.mark.parametrize("buffer, dma", [("_ibuf", "idma0"), ("_sbuf", "idma1")])
def test_dma_pointed_outside_any_buffer_stalls_and_times_out(device, overlay, bundle, ids, buffer, dma):
    from fpgarec.runtime.pynq_backend import DmaTimeoutError, PynqBackend

    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=4, timeout_s=0.1) as backend:
        getattr(backend, buffer).device_address = 0x1F00_0000  # the DMA reads where no buffer lies
        with pytest.raises(DmaTimeoutError, match=f"{dma} ctrl=0x00000001 .ap_start. addr=0x1f000000"):
            backend.run(ids[:4])
    assert any("BusError" in e for e in device.errors)


def test_altered_emulation_files_are_refused_by_name(device, overlay, bundle, tmp_path):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend

    for victim in ("hwh", "bit"):
        copy = tmp_path / victim
        copy.mkdir()
        for f in (overlay.bit, overlay.hwh, overlay.sidecar):
            shutil.copy2(f, copy / f.name)
        path = copy / getattr(overlay, victim).name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))
        with pytest.raises(FpgarecError, match=f"{path.name}: sha256 differs"):
            PynqBackend(bundle, bitfile=copy / overlay.bit.name)
    assert device.downloads == 0


def test_placeholder_never_loads_on_a_device_that_is_not_emulated(make_device, overlay, bundle):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend

    device = make_device(emulated=False)
    with pytest.raises(FpgarecError, match="generated for emulation; refusing"):
        PynqBackend(bundle, bitfile=overlay.bit)
    assert device.downloads == 0


def test_bundle_without_bitstream_and_bad_options_are_refused(device, bundle, overlay):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend

    with pytest.raises(FpgarecError, match="has no bitstream .*Vivado not found"):
        PynqBackend(bundle)
    with pytest.raises(FpgarecError, match="unknown option"):
        PynqBackend(bundle, bitfile=overlay.bit, bogus=1)
    with pytest.raises(FpgarecError, match="batch_size"):
        PynqBackend(bundle, bitfile=overlay.bit, batch_size=0)


@pytest.mark.filterwarnings("ignore:No devices found")
def test_no_device_is_a_one_line_error(bundle, overlay):
    import emulated_device

    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend

    emulated_device.uninstall()
    with pytest.raises(FpgarecError, match="no PYNQ device found"):
        PynqBackend(bundle, bitfile=overlay.bit)


def test_reuse_of_a_loaded_bitstream_without_download(device, overlay, bundle, ids):
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.pynq_backend import PynqBackend

    PynqBackend(bundle, bitfile=overlay.bit, batch_size=32).close()
    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=32, download=False) as backend:
        np.testing.assert_array_equal(backend.run(ids[:40]), EmulationBackend(bundle).run(ids[:40]))
    assert device.downloads == 1


def test_a_built_bundles_bitstream_is_hash_checked_then_opened_by_pynq(device, built_bundle):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.bundle import load_bundle
    from fpgarec.runtime.pynq_backend import PynqBackend
    from fpgarec.runtime.pynq_overlay import resolve_bitstream

    bit, hwh, emulated = resolve_bitstream(load_bundle(built_bundle))
    assert (bit.name, hwh.name, emulated) == ("finn-accel.bit", "finn-accel.hwh", False)
    # pynq parses the bundle's .hwh; the emulated device then refuses to program a real bitstream
    with pytest.raises(FpgarecError, match="finn-accel.bit: download failed .*not an fpgarec emulation"):
        PynqBackend(built_bundle)
    assert device.downloads == 0
    loaded = load_bundle(built_bundle)
    (built_bundle / "bitfile" / "finn-accel.hwh").write_text("<EDKSYSTEM/>")  # swapped after loading
    with pytest.raises(FpgarecError, match="finn-accel.hwh: sha256 differs from the manifest"):
        PynqBackend(loaded)


def test_download_false_needs_the_design_already_loaded(device, overlay, bundle):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend

    with pytest.raises(FpgarecError, match="cannot map the registers of idma0 .*is the design loaded"):
        PynqBackend(bundle, bitfile=overlay.bit, download=False)  # pynq itself deems it loaded


def test_explicit_seen_bitmaps_match_the_emulation(device, overlay, bundle, ids):
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.pynq_backend import PynqBackend

    m = bundle.manifest["model"]
    n_items, n_labels, top_k = m["n_items"], m["n_labels"], m["top_k"]
    emu = EmulationBackend(bundle)
    rng = np.random.default_rng(11)
    ids = ids[:40]
    sparse = rng.random((40, n_items)) < 0.05
    # dense: every item seen but 0 .. top_k - 1 of them per query
    left = rng.integers(0, top_k, size=40)
    left[:2] = 0, top_k - 1
    dense = np.ones((40, n_items), dtype=bool)
    for b in range(40):
        dense[b, rng.choice(n_items, left[b], replace=False)] = False
    padded = np.zeros((40, n_labels), dtype=bool)  # (B, N): the padding labels' bits ride along
    padded[:, :n_items] = sparse[::-1]
    padded[:, n_items:] = rng.random((40, n_labels - n_items)) < 0.5
    as_ints = (rng.random((40, n_items)) < 0.2).astype(np.uint8)  # 0/1 integers are bools too
    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=16) as backend:
        outs = {}
        for name, seen in (("sparse", sparse), ("dense", dense), ("padded", padded), ("ints", as_ints),
                           ("nothing", np.zeros((40, n_items), dtype=bool))):
            outs[name] = backend.run(ids, seen=seen)
            np.testing.assert_array_equal(outs[name], emu.run(ids, seen=seen), err_msg=name)
            # the last batch's bitmap as the fabric decoded it from DDR
            np.testing.assert_array_equal(device.inputs["idma1"].astype(bool), emu.seen_bitmap(ids[32:], seen[32:]),
                                          err_msg=name)
    assert not device.errors and device.batches == [16, 16, 8] * 5
    assert not np.take_along_axis(sparse, outs["sparse"], axis=1).any()
    # fewer than top_k items left: exactly those (best first), then N in the empty slots
    dense_out = outs["dense"]
    np.testing.assert_array_equal((dense_out < n_labels).sum(axis=1), left)
    assert np.all(dense_out[0] == n_labels) and dense_out[1, -1] == n_labels
    for b in range(40):
        assert set(dense_out[b, : left[b]]) == set(np.flatnonzero(~dense[b]))
        assert np.all(dense_out[b, left[b]:] == n_labels)
    # nothing seen: the context's items may come back, where the default drops them
    assert (outs["nothing"][:, :, None] == ids[:, None, :]).any()


def test_a_seen_bitmap_of_a_wrong_shape_is_a_one_line_error(device, overlay, bundle, ids):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.pynq_backend import PynqBackend, SeenBitmapError

    n_items, n_labels = bundle.manifest["model"]["n_items"], bundle.manifest["model"]["n_labels"]
    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=8) as backend:
        writes = len(device.writes)
        for bad in (np.zeros((4, 100), dtype=bool), np.zeros((5, n_items), dtype=bool),
                    np.zeros(n_items, dtype=bool), np.zeros((4, n_items, 1), dtype=bool),
                    np.zeros((4, n_labels + 1), dtype=bool)):
            with pytest.raises(SeenBitmapError) as err:
                backend.run(ids[:4], seen=bad)
            msg = str(err.value)
            assert "\n" not in msg and isinstance(err.value, FpgarecError) and isinstance(err.value, ValueError)
            assert msg.startswith(f"seen bitmap of shape {bad.shape}: expected (4, {n_items}) bool"), msg
            assert f"(4, {n_labels})" in msg
        assert len(device.writes) == writes and not device.batches  # refused before any DMA starts


def test_a_bundle_with_one_input_dma_runs_as_before(single_input_bundle, ids, tmp_path):
    import emulated_device

    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.pynq_backend import PynqBackend, SeenBitmapError
    from fpgarec.runtime.pynq_hwh import write_emulation_overlay

    bundle = single_input_bundle
    assert "seen" not in bundle.manifest["io"] and bundle.manifest["dma"]["input"] == ["idma0"]
    ov = write_emulation_overlay(bundle, tmp_path)
    assert "idma1" not in ov.hwh.read_text()
    device = emulated_device.install(bundle)
    try:
        with PynqBackend(bundle, bitfile=ov.bit, batch_size=64, timeout_s=2.0) as backend:
            out = backend.run(ids)
            info = backend.info()
            ibuf, obuf = backend._ibuf.device_address, backend._obuf.device_address
            assert backend._sbuf is None and not backend.seen_on_chip
            with pytest.raises(SeenBitmapError, match="no seen-items input"):
                backend.run(ids[:2], seen=np.zeros((2, bundle.manifest["model"]["n_items"]), dtype=bool))
    finally:
        emulated_device.uninstall()
    np.testing.assert_array_equal(out, EmulationBackend(bundle).run(ids))
    assert device.batches == [64, 64, 22] and not device.errors and set(device.inputs) == {"idma0"}
    assert device.flushes == 3 and device.invalidates == 3
    assert info["dma"] == {"idma0": 0x4000_0000, "odma0": 0x4000_1000} and not info["seen_on_chip"]
    assert device.writes[:8] == [
        ("odma0", 0x10, obuf), ("odma0", 0x14, 0), ("odma0", 0x1C, 64), ("odma0", 0x00, 1),
        ("idma0", 0x10, ibuf), ("idma0", 0x14, 0), ("idma0", 0x1C, 64), ("idma0", 0x00, 1),
    ]
    assert len(device.writes) == 24


def test_accelerator_recommend_sends_each_querys_seen_items_through_the_pynq_backend(device, overlay, bundle):
    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.pynq_backend import PynqBackend

    n_items = bundle.manifest["model"]["n_items"]
    rng = np.random.default_rng(5)
    items = [rng.choice(n_items, size=int(n), replace=False).tolist() for n in rng.integers(1, 60, size=24)]
    want = Accelerator(bundle, backend="emulation").recommend_indices(items=items)
    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=16) as backend:
        got = Accelerator(bundle, backend=backend).recommend_indices(items=items)
        seen = np.zeros((8, bundle.manifest["model"]["n_labels"]), dtype=bool)
        for b, row in enumerate(items[16:]):
            seen[b, row] = True
        np.testing.assert_array_equal(device.inputs["idma1"].astype(bool), seen)  # all given items, not only K
    np.testing.assert_array_equal(got, want)
    assert not any(set(row) & set(seen_items) for row, seen_items in zip(got.tolist(), items, strict=True))


def _meta_words(bundle, n: int, seed: int) -> np.ndarray:
    """(n, K) meta words of an attention design: random ids (a third of the queries null-padded
    cold-start users, query 0 all padding), behaviour types and recency buckets."""
    agg, m = bundle.attention, bundle.manifest["model"]
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, m["n_items"], size=(n, m["k"]))
    lengths = rng.integers(0, m["k"], size=n)
    ids[(np.arange(n) % 3 == 0)[:, None] & (np.arange(m["k"])[None, :] >= lengths[:, None])] = bundle.null_id
    ids[0] = bundle.null_id
    types = rng.integers(0, agg["n_types"], size=ids.shape)
    buckets = rng.integers(0, agg["n_buckets"], size=ids.shape)
    ib, tb = agg["id_bits"], agg["type_bits"]
    return ids | types << ib | buckets << (ib + tb)


def test_the_weight_stream_comes_back_through_a_second_output_dma(weights_bundle, tmp_path):
    """An attention design built with ``--exclude-seen --emit-weights``: both output DMAs are
    armed before the inputs, the batch ends when both are done, and the top-k and the weights
    read from DDR equal the emulation's, batch after batch (150 queries in batches of 64)."""
    import emulated_device

    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.pynq_backend import PynqBackend
    from fpgarec.runtime.pynq_hwh import write_emulation_overlay

    bundle = weights_bundle
    assert bundle.manifest["dma"] == {"input": ["idma0", "idma1"], "output": ["odma0", "odma1"]}
    ov = write_emulation_overlay(bundle, tmp_path)
    assert 'INSTANCE="odma1"' in ov.hwh.read_text()
    words = _meta_words(bundle, 150, seed=3)
    want_top, want_w = EmulationBackend(bundle).run_with_weights(words)
    device = emulated_device.install(bundle)
    try:
        with PynqBackend(bundle, bitfile=ov.bit, batch_size=64, timeout_s=2.0) as backend:
            top, weights = backend.run_with_weights(words)
            assert np.array_equal(backend.run(words[:70]), want_top[:70])  # run drains the weights too
            info = backend.info()
            obufs = [buf.device_address for buf in backend._obufs]
    finally:
        emulated_device.uninstall()
    np.testing.assert_array_equal(top, want_top)
    np.testing.assert_array_equal(weights, want_w)
    assert weights.shape == (150, 4) and weights.dtype == np.int64 and (weights[0] == 0).all()
    real = (words & 255) != bundle.null_id  # id_bits 8
    assert ((weights == 0) | real).all() and weights.max() <= 1 << bundle.attention["weight_bits"]
    assert weights[real.any(axis=1)].sum(axis=1).min() > 1000 and real.any(axis=1).sum() > 100
    assert device.batches == [64, 64, 22, 64, 6] and not device.errors
    assert info["weights_output"] == "weights" and info["streams"]["odma1"] == "weights"
    assert info["dma"] == {"idma0": 0x4000_0000, "idma1": 0x4000_1000, "odma0": 0x4000_2000, "odma1": 0x4000_3000}
    starts = [(name, value) for name, reg, value in device.writes if reg == 0x00]
    assert starts[:4] == [("odma0", 1), ("odma1", 1), ("idma0", 1), ("idma1", 1)]
    assert ("odma1", 0x10, obufs[1]) in device.writes


def test_explanations_read_the_weights_the_board_wrote(weights_bundle, tmp_path):
    """``Accelerator.explain_queries_indices`` on the PYNQ backend: the same top-k and weights
    as on the emulation backend, the seen items going out through idma1."""
    import emulated_device

    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.pynq_backend import PynqBackend
    from fpgarec.runtime.pynq_hwh import write_emulation_overlay

    bundle = weights_bundle
    ov = write_emulation_overlay(bundle, tmp_path)
    rng = np.random.default_rng(11)
    n_items = bundle.manifest["model"]["n_items"]
    queries = [rng.choice(n_items, size=int(n), replace=False).tolist() for n in rng.integers(1, 9, size=20)]
    want = Accelerator(bundle, backend="emulation").explain_queries_indices(queries)
    emulated_device.install(bundle)
    try:
        with PynqBackend(bundle, bitfile=ov.bit, batch_size=8) as backend:
            acc = Accelerator(bundle, backend=backend)
            assert acc.emits_weights
            got = acc.explain_queries_indices(queries)
    finally:
        emulated_device.uninstall()
    for key in ("top", "items", "types", "buckets", "weights"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert (got["weights"][got["items"] >= 0] > 0).any()


def test_run_with_weights_is_refused_where_the_design_has_no_weight_stream(device, overlay, bundle, ids):
    from fpgarec.runtime.pynq_backend import PynqBackend, PynqBackendError

    with PynqBackend(bundle, bitfile=overlay.bit, batch_size=16) as backend:
        assert backend.weights_output is None and backend.info()["weights_output"] is None
        with pytest.raises(PynqBackendError, match="no attention-weight output.*--emit-weights"):
            backend.run_with_weights(ids[:2])
        assert not device.batches


def test_a_weight_dma_that_never_finishes_times_out_naming_it(weights_bundle, tmp_path):
    """The top-k DMA finishes, the weight DMA does not (its ap_done never shows): the batch
    times out naming odma1 only, with every DMA's registers."""
    import emulated_device

    from fpgarec.runtime.pynq_backend import DmaTimeoutError, PynqBackend
    from fpgarec.runtime.pynq_hwh import write_emulation_overlay

    bundle = weights_bundle
    ov = write_emulation_overlay(bundle, tmp_path)
    device = emulated_device.install(bundle)
    device.dmas_never_done = {"odma1"}
    try:
        with PynqBackend(bundle, bitfile=ov.bit, batch_size=8, timeout_s=0.2) as backend:
            with pytest.raises(DmaTimeoutError) as err:
                backend.run(_meta_words(bundle, 8, seed=1))
    finally:
        emulated_device.uninstall()
    msg = str(err.value)
    assert "output DMA odma1 did not finish a batch of 8 queries" in msg and "odma0," not in msg
    assert list(err.value.registers) == ["odma0", "odma1", "idma0", "idma1"]
