"""The attention weight stream as a second design output (``emit_weights``, issue 15 item 3):
export, flow and bundle carry it, the emulation, FINN's execution and the Brevitas student
compute the same weights, and the option is refused where it cannot apply."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from small_design import (
    build_attention_weights_design,
    make_attention_student,
    make_student,
    small_build_config,
)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return make_attention_student(tmp_path_factory.mktemp("weights_student"))


@pytest.fixture(scope="module")
def weights_bundle(tmp_path_factory, student):
    """The small attention design (tests/small_design.py) built with ``emit_weights``."""
    return build_attention_weights_design(student[1], tmp_path_factory.mktemp("weights_build"))


def test_bundle_has_the_weights_output(weights_bundle):
    """The AttentionAggregate_rtl layer has EmitWeights 1 and a second output 'weights', a graph
    output of FINN's final model ((1, K) UINT(W+1)) that no layer reads; the manifest says so."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgarec.compile._finn import register_kernels
    from fpgarec.runtime.bundle import load_bundle

    m = load_bundle(weights_bundle).manifest
    agg = m["model"]["aggregation"]
    assert agg["emit_weights"] is True and agg["weight_bits"] == 10
    att = next(layer for layer in m["layers"] if layer["op"] == "AttentionAggregate")
    assert att["impl"] == "rtl" and att["attrs"]["EmitWeights"] == 1 and att["outputs"][1] == "weights"
    assert not any("weights" in layer["inputs"] for layer in m["layers"])
    assert m["io"]["weights"]["datatype"] == "UINT11" and m["io"]["weights"]["shape_normal"] == [1, 4]
    register_kernels()
    model = ModelWrapper(str(weights_bundle / "model" / "dataflow.onnx"))
    assert [o.name for o in model.graph.output] == ["topk", "weights"]
    assert model.get_tensor_shape("weights") == [1, 4] and model.get_tensor_datatype("weights") == DataType["UINT11"]


def test_weights_agree_emulation_finn_brevitas(weights_bundle, student):
    """fpgarec verify on 2,004 queries (2,000 random, a third of them null-padded cold-start users;
    then all-equal ids, id 0, the last id and all padding; random types and buckets): emulation == FINN's execution == the Brevitas student, top-k,
    scores and weights; the weights are 0 on padding slots and sum to about 2^W elsewhere."""
    from fpgarec.compile import checks
    from fpgarec.compile.verify import compare
    from fpgarec.runtime.emulation import EmulationBackend

    out = compare(weights_bundle, student[0], n_queries=2004, finn_queries=2004, progress=False)
    for key in ("emulation_vs_finn", "emulation_vs_brevitas"):
        assert out[key] == {"topk": 0, "scores": 0, "weights": 0, "any": 0}, out
    emu = EmulationBackend(weights_bundle)
    words = checks.sample_inputs(emu.bundle.manifest["model"], 200, 4, 2000)  # what compare drew
    top, w = emu.run_with_weights(words)
    assert np.array_equal(top, emu.run(words)) and w.shape == (2004, 4) and w.dtype == np.int64
    pad = checks.unpack_meta_words(words, emu.bundle.attention)[..., 0] == 200
    assert pad.all(axis=1).sum() == 1 and 500 < pad.any(axis=1).sum() < 1000
    assert (w[pad] == 0).all() and (w[pad.all(axis=1)] == 0).all()
    real = ~pad.all(axis=1)
    n = (~pad).sum(axis=1)[real]
    total = w[real].sum(axis=1)
    assert w.max() <= 1024 and ((total >= 1024 - n) & (total <= 1024 + n // 2 + 1)).all()


def test_schema_refuses_a_weights_record_that_disagrees(weights_bundle):
    from fpgarec.runtime.bundle_schema import SchemaError, check_manifest, check_weights_stream

    m = json.loads((weights_bundle / "manifest.json").read_text())
    att = next(i for i, layer in enumerate(m["layers"]) if layer["op"] == "AttentionAggregate")
    for edit, match in ((lambda m: m["model"]["aggregation"].update(emit_weights=False), "emit_weights"),
                        (lambda m: m["model"]["aggregation"].update(weight_bits=9), "WeightBits"),
                        (lambda m: (m["io"].pop("weights"), m["dma"]["output"].pop()), "io.weights"),
                        (lambda m: m["io"].pop("weights"), "dma.output .*expected a list of 1"),
                        (lambda m: m["dma"]["output"].pop(), "dma.output .*expected a list of 2"),
                        (lambda m: m["layers"][att]["outputs"].pop(), "second output"),
                        (lambda m: m["layers"][att + 1]["inputs"].append("weights"), "2 inputs"),
                        (lambda m: m["io"]["weights"].update(datatype="UINT10"), "UINT11")):
        bad = copy.deepcopy(m)
        edit(bad)
        with pytest.raises(SchemaError, match=match):
            check_manifest(bad)
    bad = copy.deepcopy(m)  # a reader the layer checks let through would still be refused
    bad["layers"][att + 1]["inputs"] = ["weights"]
    with pytest.raises(SchemaError, match="read by layer"):
        check_weights_stream(bad["model"], bad["layers"], bad["io"])


def test_emit_weights_is_refused_without_attention(tmp_path):
    """A mean student (export and build) and its QONNX file are refused with one line; a bundle
    without the weight stream refuses run_with_weights."""
    from pathlib import Path

    from qonnx.core.modelwrapper import ModelWrapper

    from fpgarec.compile.export import add_weights_output, export_qonnx
    from fpgarec.compile.flow import build
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.bundle import BundleError
    from fpgarec.runtime.emulation import EmulationBackend

    mean_student, path = make_student(tmp_path)
    with pytest.raises(FpgarecError, match="needs an attention student") as err:
        build(path, small_build_config(tmp_path, design="mean_weights", emit_weights=True))
    assert "\n" not in str(err.value)
    qonnx = ModelWrapper(str(export_qonnx(mean_student, tmp_path / "mean.onnx")))
    with pytest.raises(FpgarecError, match="needs an attention student"):
        add_weights_output(qonnx)
    demo = Path(__file__).resolve().parents[2] / "bitstreams" / "student_w4_pynq-z2"
    emu = EmulationBackend(demo)
    assert emu.weights_output is None
    with pytest.raises(BundleError, match="no attention weight output"):
        emu.run_with_weights(np.zeros((2, 20), np.int64))


def test_cli_flag(tmp_path):
    from fpgarec.cli import build_parser
    from fpgarec.cli_support import build_config

    args = build_parser().parse_args(["build", "x.safetensors", "--emit-weights", "--print-config"])
    assert build_config(args).emit_weights is True
    args = build_parser().parse_args(["build", "x.safetensors"])
    assert build_config(args).emit_weights is False


def test_design_metrics_of_an_attention_design_read_types_and_recency(weights_bundle):
    """The design's own output on an attention design is scored with each slot's behaviour type
    and recency bucket (it was scored with every slot a view in bucket 0): the runtime
    sampler's meta words equal the training side's (recent_items_meta, packed), the NDCG is
    the offline ranking of those scores with the known items masked, and no types is an error."""
    import numpy as np

    from fpgarec.compile.checks import pack_meta_words
    from fpgarec.compile.design_metrics import design_ranking_metrics
    from fpgarec.data.sampler import recent_items_meta
    from fpgarec.data.split import UserSequences
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.train.metrics import hits_matrix, ndcg_at_k, top_k

    emu = EmulationBackend(weights_bundle)
    m = emu.bundle.manifest["model"]
    agg, n = m["aggregation"], int(m["n_items"])
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 3 * m["k"], 40)
    users = np.repeat(np.arange(40), lengths)
    known = UserSequences.from_pairs(users, rng.integers(0, n, len(users)), 40)
    truth = UserSequences.from_pairs(np.arange(40), rng.integers(0, n, 40), 40)
    types = rng.integers(0, int(agg["n_types"]), len(known.items))
    got = design_ranking_metrics(weights_bundle, np.arange(40), known, known, truth, types=types)
    meta = recent_items_meta(known, types, np.arange(40), m["k"], m.get("n_recent"),
                             null_id=m["padding"]["null_id"], n_buckets=len(agg["bucket_edges"]),
                             per_octave=int(agg.get("per_octave", 1)))
    scores = emu.scores(pack_meta_words(meta, agg)).astype(np.float64)
    mask = np.zeros_like(scores, dtype=bool)
    for u in range(40):
        scores[u, known.of(u)] = -np.inf
        mask[u, truth.of(u)] = True
    want = float(ndcg_at_k(hits_matrix(top_k(scores, m["top_k"]), mask), mask.sum(axis=1), m["top_k"]).mean())
    assert got["ndcg@10"] == pytest.approx(want, abs=1e-12) and got["users"] == 40
    with pytest.raises(FpgarecError, match="behaviour type"):
        design_ranking_metrics(weights_bundle, np.arange(40), known, known, truth)
