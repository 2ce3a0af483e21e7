"""The attention student (``aggregation="attention"``) through export (and the flow): the
design input is the packed meta words id | type | bucket, the aggregation the
``attention_aggregate`` kernel."""

from __future__ import annotations

import numpy as np
import pytest

from small_design import make_attention_student


@pytest.fixture(scope="module")
def attention_student(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attention_student")
    return make_attention_student(folder)


def test_export_writes_the_attention_kernel_and_equals_the_student(attention_student, tmp_path):
    """Head: Mod (the id field of the meta words) -> two Gathers -> ModalityFusion ->
    AttentionAggregate(fused, words); qonnx' execution gives the student's attention integers
    and scores on null-padded queries with random types and buckets; an altered type bias is
    caught; the metadata says how to build the meta words."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import get_by_name

    from fpgarec.compile.export import check_export, export_qonnx, read_metadata
    from fpgarec.errors import FpgarecError

    student, _ = attention_student
    p = student.aggregate.kernel_params()
    assert len(set(p.q)) > 4 and len(set(p.b_type)) == 3 and len(set(p.b_pos)) > 4  # not uniform
    model = ModelWrapper(str(export_qonnx(student, tmp_path / "a.onnx")))
    head = [(n.op_type, n.domain) for n in model.graph.node[:7] if n.op_type != "Quant"][:5]
    assert head == [("Mod", ""), ("Gather", ""), ("Gather", ""), ("ModalityFusion", "kernels.qonnx_ops"),
                    ("AttentionAggregate", "kernels.qonnx_ops")]
    att = next(n for n in model.graph.node if n.op_type == "AttentionAggregate")
    assert att.input[1] == "ids"  # the meta words: the graph input itself
    assert model.get_tensor_datatype("ids") == DataType["UINT13"]  # 8 id + 2 type + 3 bucket bits
    meta = read_metadata(model)["aggregation"]
    assert meta["mode"] == "attention" and (meta["n_types"], meta["n_buckets"]) == (3, 8)
    assert (meta["id_bits"], meta["type_bits"], meta["bucket_bits"]) == (8, 2, 3)
    check_export(model, student, n=64, seed=3)
    get_by_name(att.attribute, "TypeBias").ints[1] += 300
    with pytest.raises(FpgarecError, match="differs from the student"):
        check_export(model, student, n=64, seed=3)


def test_input_words_pack_the_context(attention_student):
    from kernels.attention_aggregate.golden import unpack_meta

    from fpgarec.compile.export import check_contexts, input_words, kernel_parameters

    student, _ = attention_student
    ctx = check_contexts(student, 16, seed=1).numpy()
    words = input_words(student, ctx)
    assert words.shape == (16, 4) and words.dtype == np.int64
    assert np.array_equal(unpack_meta(kernel_parameters(student)[1], words), ctx)


@pytest.fixture(scope="module")
def attention_bundle(tmp_path_factory, attention_student):
    """The small attention student's bundle for PYNQ-Z2 (the build checks every step against the
    student's exact integers and the bundle's emulation against FINN's execution)."""
    from fpgarec.compile.flow import build
    from small_design import small_build_config

    tmp = tmp_path_factory.mktemp("attention_build")
    return build(attention_student[1], small_build_config(tmp, design="small_attention"))


def test_bundle_has_the_attention_layer(attention_bundle):
    """The aggregation layer is AttentionAggregate_rtl fed by the fused vectors and the meta
    words (a DuplicateStreams copy of the design input), the Lookups read the id field, the
    model record says how to build the words, and the layer's cycles are the kernel's formula."""
    from kernels.attention_aggregate.golden import cycles, params_from_attrs

    from fpgarec.runtime.bundle import load_bundle

    m = load_bundle(attention_bundle).manifest
    layers = {layer["name"]: layer for layer in m["layers"]}
    att = layers["AttentionAggregate_rtl_0"]
    assert att["impl"] == "rtl" and att["in_dtype"] == "INT4" and att["out_dtype"] == "INT8"
    dup = next(layer for layer in m["layers"] if layer["op"] == "DuplicateStreams")
    assert dup["inputs"] == ["ids"] and att["inputs"][1] in dup["outputs"]
    assert [layer["attrs"]["IdBits"] for layer in m["layers"] if layer["op"] == "Lookup"] == [8, 8]
    agg = m["model"]["aggregation"]
    assert agg["bucket_edges"] == [0, 1, 3, 7, 15, 31, 63, 127] and agg["n_types"] == 3
    assert agg["type_names"] == ["view", "like", "comment"]
    assert m["io"]["input"]["datatype"] == "UINT13"
    p = params_from_attrs(lambda a: att["attrs"][a])
    assert att["cycles"] == cycles(p).per_query == p.k + p.w_bits + p.g_bits + p.k * p.d // p.pe + 8


def test_emulation_finn_and_student_agree(attention_bundle, attention_student):
    """fpgarec verify: emulation == FINN's execution == the Brevitas student on 2,000 queries
    (a third null-padded cold-start users, random types and buckets); FINN on 300 of them."""
    from fpgarec.compile.verify import compare

    out = compare(attention_bundle, attention_student[0], n_queries=2000, finn_queries=300, progress=False)
    assert out["emulation_vs_finn"]["any"] == 0 and out["emulation_vs_brevitas"]["any"] == 0


def test_types_and_buckets_change_the_ranking(attention_bundle):
    """The same ids with other types / buckets give other scores (the meta reaches the kernel),
    and words outside the fields' ranges are refused."""
    from fpgarec.compile import checks
    from fpgarec.runtime.emulation import EmulationBackend

    emu = EmulationBackend(attention_bundle)
    agg = emu.bundle.attention
    ids = np.random.default_rng(1).integers(0, 200, (64, 4))
    zero = checks.pack_meta_words(np.stack([ids, 0 * ids, 0 * ids], -1), agg)
    other = checks.pack_meta_words(np.stack([ids, ids % 3, ids % 8], -1), agg)
    assert (emu.scores(zero) != emu.scores(other)).any(axis=1).mean() > 0.5
    with pytest.raises(ValueError, match="behaviour types"):
        emu.scores(checks.pack_meta_words(np.array([[[0, 3, 0]] * 4]), agg))


def test_schema_refuses_a_record_that_disagrees(attention_bundle):
    import copy
    import json

    from fpgarec.runtime.bundle_schema import SchemaError, check_manifest

    m = json.loads((attention_bundle / "manifest.json").read_text())
    check_manifest(copy.deepcopy(m))
    for edit, match in ((lambda m: m["model"]["aggregation"].update(n_types=4, type_names=list("abcd")), "TypeBias"),
                        (lambda m: m["model"]["aggregation"].update(bucket_edges=[0, 1]), "bucket_edges"),
                        (lambda m: m["model"]["aggregation"].update(type_names=["view"]), "type_names"),
                        (lambda m: m["model"]["aggregation"].update(mode="mean"), "AttentionAggregate layer"),
                        (lambda m: m["layers"][1]["attrs"].update(IdBits=13), "IdBits")):
        bad = copy.deepcopy(m)
        edit(bad)
        with pytest.raises(SchemaError, match=match):
            check_manifest(bad)


def test_host_sampler_builds_the_training_meta_words(attention_bundle):
    """HostSampler.from_manifest gives the words of fpgarec.data.sampler.recent_items_meta
    (types from the history, recency buckets from the record's edges, null slots 0)."""
    from fpgarec.compile import checks
    from fpgarec.data.sampler import recent_items_meta
    from fpgarec.data.split import UserSequences
    from fpgarec.runtime.bundle import load_bundle
    from fpgarec.runtime.sampler import History, HostSampler

    m = load_bundle(attention_bundle).manifest
    rng = np.random.default_rng(2)
    lists = [list(rng.integers(0, 200, n)) for n in (1, 3, 4, 9, 40, 200)]
    types = rng.integers(0, 3, sum(map(len, lists)))
    hist = History.from_lists(lists, 200)
    seqs = UserSequences(hist.indptr, hist.items)
    sampler = HostSampler.from_manifest(m, hist, types=types)
    users = np.arange(len(lists))
    want = recent_items_meta(seqs, types, users, 4, None, 200, 8, 1)
    agg = m["model"]["aggregation"]
    assert np.array_equal(sampler.users(users), checks.pack_meta_words(want, agg))
    got = checks.unpack_meta_words(sampler.items(lists), agg)  # item lists: type 0 (no types sent)
    assert np.array_equal(got[..., [0, 2]], want[..., [0, 2]]) and not got[..., 1].any()


def test_attention_design_with_seen_filter(attention_student, tmp_path):
    """exclude_seen on an attention design: the default seen bitmap is the id field of the
    query's meta words (none of the context items comes back), emulation == FINN == student."""
    from fpgarec.compile import checks
    from fpgarec.compile.flow import build
    from fpgarec.compile.verify import compare
    from fpgarec.runtime.emulation import EmulationBackend
    from small_design import small_build_config

    bundle = build(attention_student[1], small_build_config(tmp_path, design="att_seen", exclude_seen=True))
    emu = EmulationBackend(bundle)
    agg = emu.bundle.attention
    words = checks.sample_inputs(emu.bundle.manifest["model"], 200, 4, 300, seed=4)
    ids = checks.unpack_meta_words(words, agg)[..., 0]
    top = emu.run(words)
    for row, ctx in zip(top, ids, strict=True):
        assert not set(row.tolist()) & set(ctx[ctx < 200].tolist())
    out = compare(bundle, attention_student[0], n_queries=500, finn_queries=60, progress=False)
    assert out["emulation_vs_finn"]["any"] == 0 and out["emulation_vs_brevitas"]["any"] == 0
