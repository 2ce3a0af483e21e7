"""The kernels' FINN custom ops: numpy execution == golden model, parameters refused when the op
is created (naming the parameter), expected cycles, and the generated RTL wrapper lints clean
around the core (Verilator -Wall)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

pytest.importorskip("finn")


@pytest.fixture(scope="module", autouse=True)
def registered():
    from fpgarec.compile._finn import register_kernels

    register_kernels()


def _model(node, inputs: dict[str, tuple[list[int], str]], output: tuple[str, list[int]]):
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    graph = helper.make_graph(
        [node], "one_op",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, (s, _) in inputs.items()],
        [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
    )
    model = ModelWrapper(qonnx_make_model(graph))
    for n, (_, dt) in inputs.items():
        model.set_tensor_datatype(n, DataType[dt])
    return model


def _aggregate_node(k=5, d=8, pe=4, dt="INT4", mode="mean", frac=2, id_dt="UINT4", null=15, op="NeighborAggregate"):
    return helper.make_node(op, ["x", "ids"], ["y"], domain="finn.custom_op.fpgadataflow" + (".rtl" if op.endswith("_rtl") else ""),
                            backend="fpgadataflow", name="agg", K=k, NumChannels=d, PE=pe, inputDataType=dt,
                            idDataType=id_dt, Mode=mode, FracBits=frac, NullId=null, numInputVectors=[1])


def _fusion_node(weights=(90, -37), d=8, pe=2, dt="INT4", out="INT4", frac=6, items=5, op="ModalityFusion"):
    ins = [f"x{m}" for m in range(len(weights))]
    return helper.make_node(op, ins, ["y"], domain="finn.custom_op.fpgadataflow" + (".rtl" if op.endswith("_rtl") else ""),
                            backend="fpgadataflow", name="fuse", NumChannels=d, PE=pe, inputDataType=dt,
                            outputDataType=out, Weights=list(weights), WeightBits=8, FracBits=frac,
                            numInputVectors=[1, items])


@pytest.mark.parametrize("mode,dt,frac,pe", [("mean", "INT4", 2, 4), ("mean", "UINT3", 0, 8), ("sum", "INT8", 0, 2),
                                             ("max", "INT5", 0, 1)])
def test_aggregate_op_executes_the_golden_model(mode, dt, frac, pe):
    from finn.core.onnx_exec import execute_onnx
    from kernels.neighbor_aggregate.golden import aggregate
    from qonnx.custom_op.registry import getCustomOp

    node = _aggregate_node(mode=mode, dt=dt, frac=frac, pe=pe)
    model = _model(node, {"x": ([1, 5, 8], dt), "ids": ([1, 5], "UINT4")}, ("y", [1, 8]))
    op = getCustomOp(node)
    p = op.params()
    assert op.get_exp_cycles() == 5 * 8 // pe and op.get_folded_input_shape(0) == (1, 5, 8 // pe, pe)
    lo, hi = (-(1 << (p.in_bits - 1)), (1 << (p.in_bits - 1)) - 1) if p.in_signed else (0, (1 << p.in_bits) - 1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(lo, hi + 1, size=(1, 5, 8))
        ids = rng.integers(0, 16, size=(1, 5))
        y = execute_onnx(model, {"x": x.astype(np.float32), "ids": ids.astype(np.float32)})["y"]
        np.testing.assert_array_equal(y, aggregate(p, x, ids).astype(np.float32))


def test_fusion_op_executes_the_golden_model():
    from finn.core.onnx_exec import execute_onnx
    from kernels.modality_fusion.golden import fuse
    from qonnx.custom_op.registry import getCustomOp

    node = _fusion_node(weights=(90, -37, 5))
    model = _model(node, {f"x{m}": ([1, 5, 8], "INT4") for m in range(3)}, ("y", [1, 5, 8]))
    op = getCustomOp(node)
    assert op.get_exp_cycles() == 5 * 8 // 2
    rng = np.random.default_rng(1)
    xs = rng.integers(-8, 8, size=(3, 1, 5, 8))
    y = execute_onnx(model, {f"x{m}": xs[m].astype(np.float32) for m in range(3)})["y"]
    np.testing.assert_array_equal(y, fuse(op.params(), xs).astype(np.float32))


@pytest.mark.parametrize("kwargs,name", [
    (dict(pe=3), "PE=3 does not divide D=8"), (dict(k=0), "K=0"), (dict(dt="FLOAT32"), "inputDataType"),
    (dict(dt="BIPOLAR"), "inputDataType"), (dict(id_dt="INT4", null=3), "idDataType"),
])
def test_aggregate_op_refuses_unbuildable_parameters_at_creation(kwargs, name):
    from kernels._params import KernelParameterError
    from qonnx.custom_op.registry import getCustomOp

    with pytest.raises(KernelParameterError, match=name):
        getCustomOp(_aggregate_node(**kwargs))


@pytest.mark.parametrize("kwargs,name", [(dict(pe=3), "PE=3 does not divide D=8"), (dict(dt="FLOAT32"), "inputDataType"),
                                         (dict(weights=(1, 300)), r"weights\[1\]=300")])
def test_fusion_op_refuses_unbuildable_parameters_at_creation(kwargs, name):
    from kernels._params import KernelParameterError
    from qonnx.custom_op.registry import getCustomOp

    with pytest.raises(KernelParameterError, match=name):
        getCustomOp(_fusion_node(**kwargs))


@pytest.mark.rtlsim
@pytest.mark.parametrize("which", ["aggregate", "fusion"])
def test_generated_wrapper_lints_clean(which, tmp_path, hw_env):
    """What FINN's code generation writes (wrapper + core) passes verilator -Wall."""
    from qonnx.custom_op.registry import getCustomOp

    from kernels import hwtools

    node = (_aggregate_node(op="NeighborAggregate_rtl", dt="INT4", pe=4, id_dt="UINT11", null=1682)
            if which == "aggregate" else _fusion_node(op="ModalityFusion_rtl", weights=(300 // 3, -45, 7)))
    op = getCustomOp(node)
    op.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    op.generate_hdl(None, "xc7z020clg400-1", 10.0)
    files = op.get_rtl_file_list(abspath=True)
    assert all(__import__("pathlib").Path(f).is_file() for f in files)
    hwtools.lint(files, op.get_nodeattr("gen_top_module"), {})
    tcl = op.code_generation_ipi()
    assert tcl[-1].startswith("create_bd_cell -type module -reference")


def test_mvau_workaround_is_sized_at_the_kernels_throughput():
    """The comparison's MVAU meets the kernel's cycles per query and FINN estimates it in LUTs."""
    from kernels.neighbor_aggregate.golden import AggregateParams
    from kernels.neighbor_aggregate.workaround import mvau_workaround

    p = AggregateParams(k=20, d=64, pe=8, in_bits=4, mode="mean", frac_bits=4, id_bits=11, null_id=1682)
    m = mvau_workaround(p)
    assert m["MW"] == 1280 and m["MH"] == 64 and m["cycles"] <= p.expected_cycles() == 160
    assert m["LUT"] > 1000


# ------------------------------------------------------------------ FINN's layers in our RTL
def _dt_range(dt: str) -> tuple[int, int]:
    from qonnx.core.datatype import DataType

    d = DataType[dt]
    return int(d.min()), int(d.max())


def _lookup_node(n=7, d=4, dt="INT4", id_dt="UINT3", vecs=(1, 5), op="Lookup"):
    rtl = op.endswith("_rtl")
    return helper.make_node(op, ["ids", "table"], ["y"], domain="finn.custom_op.fpgadataflow" + (".rtl" if rtl else ""),
                            backend="fpgadataflow", name="Lookup_0", NumEmbeddings=n, EmbeddingDim=d,
                            EmbeddingType=dt, InputType=id_dt, InputShape=list(vecs))


def _lookup_model(node, table, vecs, id_dt, dt):
    from qonnx.core.datatype import DataType

    model = _model(node, {"ids": (list(vecs), id_dt)}, ("y", [*vecs, table.shape[1]]))
    model.set_initializer("table", table.astype(np.float32))
    model.set_tensor_datatype("table", DataType[dt])
    return model


@pytest.mark.parametrize("op", ["Lookup", "Lookup_rtl"])
@pytest.mark.parametrize("n,d,dt,id_dt,vecs", [(7, 4, "INT4", "UINT3", (1, 5)), (300, 12, "UINT5", "UINT9", (2, 3)),
                                               (5, 1, "INT2", "UINT3", (1, 20))])
def test_lookup_op_executes_the_golden_model(op, n, d, dt, id_dt, vecs):
    """FINN's execution of Lookup / Lookup_rtl == golden ``T[ids]``, ids given as float32 (what a
    DuplicateStreams in front passes on)."""
    from finn.core.onnx_exec import execute_onnx
    from kernels.lookup.golden import lookup

    lo, hi = _dt_range(dt)
    rng = np.random.default_rng(n)
    table = rng.integers(lo, hi + 1, size=(n, d))
    model = _lookup_model(_lookup_node(n, d, dt, id_dt, vecs, op), table, vecs, id_dt, dt)
    for _ in range(5):
        ids = rng.integers(0, n, size=vecs)
        y = execute_onnx(model, {"ids": ids.astype(np.float32)})["y"]
        np.testing.assert_array_equal(y, lookup(table, ids).astype(np.float32))


def test_lookup_behind_duplicate_streams_executes():
    """The ids fan out through a DuplicateStreams (float32 copies) to two lookups: FINN's
    execution works (FINN's own Lookup hands float ids to onnxruntime and fails)."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    k, n, d = 6, 11, 3
    dup = helper.make_node("DuplicateStreams_rtl", ["ids"], ["a", "b"], domain="finn.custom_op.fpgadataflow.rtl",
                           backend="fpgadataflow", name="dup", NumChannels=k, PE=3, NumOutputStreams=2,
                           inputDataType="UINT4", numInputVectors=[1])
    lk = [helper.make_node("Lookup_rtl", [src, f"t{i}"], [f"y{i}"], domain="finn.custom_op.fpgadataflow.rtl",
                           backend="fpgadataflow", name=f"lk{i}", NumEmbeddings=n, EmbeddingDim=d,
                           EmbeddingType="INT3", InputType="UINT4", InputShape=[1, k]) for i, src in enumerate("ab")]
    graph = helper.make_graph([dup, *lk], "fanout", [helper.make_tensor_value_info("ids", TensorProto.FLOAT, [1, k])],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, k, d]) for i in range(2)])
    model = ModelWrapper(qonnx_make_model(graph))
    rng = np.random.default_rng(3)
    tables = [rng.integers(-4, 4, size=(n, d)) for _ in range(2)]
    for i, t in enumerate(tables):
        model.set_initializer(f"t{i}", t.astype(np.float32))
        model.set_tensor_datatype(f"t{i}", DataType["INT3"])
    model.set_tensor_datatype("ids", DataType["UINT4"])
    for t in "ab":
        model.set_tensor_shape(t, [1, k])
    ids = rng.integers(0, n, size=(1, k))
    out = execute_onnx(model, {"ids": ids.astype(np.float32)})
    for i, t in enumerate(tables):
        np.testing.assert_array_equal(out[f"y{i}"], t[ids].astype(np.float32))


@pytest.mark.parametrize("ch,pe,m,dt", [(20, 20, 3, "UINT11"), (12, 4, 2, "INT4"), (5, 1, 4, "UINT2")])
def test_duplicate_streams_rtl_executes_and_folds(ch, pe, m, dt):
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    outs = [f"y{i}" for i in range(m)]
    node = helper.make_node("DuplicateStreams_rtl", ["x"], outs, domain="finn.custom_op.fpgadataflow.rtl",
                            backend="fpgadataflow", name="dup", NumChannels=ch, PE=pe, NumOutputStreams=m,
                            inputDataType=dt, numInputVectors=[1])
    graph = helper.make_graph([node], "dup", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ch])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, ch]) for o in outs])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", DataType[dt])
    lo, hi = _dt_range(dt)
    x = np.random.default_rng(ch).integers(lo, hi + 1, size=(1, ch)).astype(np.float32)
    got = execute_onnx(model, {"x": x})
    for o in outs:
        np.testing.assert_array_equal(got[o], x)
    op = getCustomOp(node)
    assert op.get_exp_cycles() == ch // pe
    assert op.lut_estimation() == 2 * m + 1 and op.bram_estimation() == 0


def _labelselect_node(labels=24, pe=4, k=3, dt="INT5", mode=0, n_valid=0, k_ctx=3, id_dt="UINT5", lanes=1,
                      vecs=(1,), op="LabelSelect_rtl"):
    rtl = op.endswith("_rtl")
    ins = ["x"] + (["seen"] if mode else [])
    extra = {"LanesPerSorter": lanes} if rtl else {}
    return helper.make_node(op, ins, ["y"], domain="finn.custom_op.fpgadataflow" + (".rtl" if rtl else ""),
                            backend="fpgadataflow", name="LabelSelect_0", Labels=labels, PE=pe, K=k,
                            inputDataType=dt, numInputVectors=list(vecs), SeenMode=mode, NumValidLabels=n_valid,
                            NumSeenIds=k_ctx, seenIdDataType=id_dt, **extra)


TOPK_CASES = {
    # name: (labels, PE, K, score dtype, SeenMode, NumValidLabels, context ids, id dtype, L)
    "plain": (24, 4, 3, "INT5", 0, 0, 1, "UINT5", 1),
    "unsigned-pe1": (20, 1, 4, "UINT6", 0, 0, 1, "UINT5", 1),
    "padded": (32, 8, 5, "INT8", 0, 29, 1, "UINT5", 2),
    "ids": (24, 4, 3, "INT5", 1, 21, 3, "UINT5", 2),
    "ids-short": (12, 4, 4, "INT4", 1, 10, 8, "UINT4", 2),
    "bitmap": (24, 6, 3, "INT3", 2, 21, 1, "UINT5", 3),
    "bitmap-unsigned": (48, 16, 10, "UINT4", 2, 0, 1, "UINT5", 4),
}


@pytest.mark.parametrize("name", list(TOPK_CASES))
def test_labelselect_op_executes_the_golden_model(name):
    """FINN's execution of LabelSelect (ours, registered over FINN's) and LabelSelect_rtl ==
    ``golden.select`` bit for bit, scores from a narrow range (many ties), every SeenMode;
    LabelSelect_rtl's expected cycles are golden.cycles."""
    from finn.core.onnx_exec import execute_onnx
    from kernels.topk_select import golden
    from qonnx.custom_op.registry import getCustomOp

    labels, pe, k, dt, mode, n_valid, k_ctx, id_dt, lanes = TOPK_CASES[name]
    lo, hi = _dt_range(dt)
    rng = np.random.default_rng(labels + mode)
    for op in ("LabelSelect", "LabelSelect_rtl"):
        node = _labelselect_node(labels, pe, k, dt, mode, n_valid, k_ctx, id_dt, lanes, vecs=(1,), op=op)
        seen_shape = [1, k_ctx] if mode == 1 else [1, labels]
        inputs = {"x": ([1, labels], dt), **({"seen": (seen_shape, id_dt if mode == 1 else "BINARY")} if mode else {})}
        model = _model(node, inputs, ("y", [1, k]))
        inst = getCustomOp(node)
        p = getCustomOp(_labelselect_node(labels, pe, k, dt, mode, n_valid, k_ctx, id_dt, lanes)).params()
        if op.endswith("_rtl"):
            assert inst.get_exp_cycles() == golden.cycles(p).per_query
            assert inst.verify_node() == []
            assert inst.lut_estimation() > 0 and inst.bram_estimation() == 0
        for _ in range(25):
            scores = rng.integers(lo, min(hi, lo + 3) + 1, size=(1, labels))  # mostly ties
            if rng.random() < 0.3:
                scores = rng.integers(lo, hi + 1, size=(1, labels))
            seen = None
            if mode == 1:
                seen = rng.integers(0, 1 << int(id_dt[4:]), size=(1, k_ctx))
                seen[0, 0] = rng.integers(0, p.n_valid)
            elif mode == 2:
                seen = rng.random((1, labels)) < 0.4
            feed = {"x": scores.astype(np.float32), **({"seen": seen.astype(np.float32)} if mode else {})}
            y = execute_onnx(model, feed)["y"]
            np.testing.assert_array_equal(y, golden.select(p, scores, seen).astype(np.float32), err_msg=op)


def test_labelselect_output_holds_the_empty_slot_value():
    """With a seen bitmap a query may have fewer than K eligible labels: the output datatype
    holds Labels (the empty-slot value) even when FINN's default (Labels - 1) would not."""
    from qonnx.custom_op.registry import getCustomOp

    assert getCustomOp(_labelselect_node(labels=256, pe=8, mode=0)).get_nodeattr("outputDataType") == "UINT8"
    assert getCustomOp(_labelselect_node(labels=256, pe=8, mode=2)).get_nodeattr("outputDataType") == "UINT16"


def test_labelselect_rtl_refuses_what_the_core_cannot_build():
    from kernels.topk_select.finn_op import LabelSelect_rtl
    from qonnx.custom_op.registry import getCustomOp

    wide = getCustomOp(_labelselect_node(dt="INT32", op="LabelSelect"))
    assert "inputDataType" in LabelSelect_rtl.rtl_unsupported(wide)
    assert LabelSelect_rtl.rtl_unsupported(getCustomOp(_labelselect_node(op="LabelSelect"))) == ""
    assert "LANES_PER_SORTER" in getCustomOp(_labelselect_node(pe=4, lanes=3)).verify_node()[0]


def test_topk_resource_estimate_is_near_yosys():
    """The LabelSelect_rtl LUT estimate within 10 % of the README's Yosys figures (LUT + LUTRAM)."""
    from kernels.topk_select.golden import TopkParams
    from kernels.topk_select.resources import estimate

    demo = {"n": 1792, "n_valid": 1682, "pe": 64, "in_bits": 14, "k": 10, "out_bits": 16, "k_ctx": 20,
            "id_bits": 11, "lanes_per_sorter": 4}
    small = {"n": 24, "n_valid": 21, "pe": 4, "in_bits": 5, "k": 3, "out_bits": 5, "lanes_per_sorter": 2}
    for p, yosys in ((TopkParams(**demo, seen_mode=1), 8301), (TopkParams(**demo, seen_mode=2), 8427),
                     (TopkParams(**small, seen_mode=1, k_ctx=3, id_bits=5), 232),
                     (TopkParams(**small, seen_mode=2), 197)):
        assert abs(estimate(p)["LUT"] / yosys - 1) <= 0.10, (p, estimate(p), yosys)


WRAPPERS = {
    "lookup": lambda: _lookup_node(300, 12, "INT5", "UINT9", (1, 5), op="Lookup_rtl"),
    "lookup-demo": lambda: _lookup_node(1683, 64, "INT4", "UINT11", (1, 20), op="Lookup_rtl"),
    "dup-3": lambda: helper.make_node("DuplicateStreams_rtl", ["x"], ["a", "b", "c"],
                                      domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow", name="dup",
                                      NumChannels=20, PE=20, NumOutputStreams=3, inputDataType="UINT11",
                                      numInputVectors=[1]),
    "dup-2-bytes": lambda: helper.make_node("DuplicateStreams_rtl", ["x"], ["a", "b"],
                                            domain="finn.custom_op.fpgadataflow.rtl", backend="fpgadataflow",
                                            name="dup", NumChannels=8, PE=4, NumOutputStreams=2,
                                            inputDataType="INT4", numInputVectors=[1]),
    **{f"topk-{name}": (lambda name=name: _labelselect_node(*TOPK_CASES[name])) for name in TOPK_CASES},
}


@pytest.mark.rtlsim
@pytest.mark.parametrize("name", list(WRAPPERS))
def test_generated_wrappers_of_finn_layers_lint_clean(name, tmp_path, hw_env):
    """Lookup_rtl / DuplicateStreams_rtl / LabelSelect_rtl: what FINN's code generation writes
    (wrapper + core, and the table file) passes verilator -Wall; the IPI tcl adds them."""
    from pathlib import Path

    from kernels.lookup.golden import table_mem_lines
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from kernels import hwtools

    node = WRAPPERS[name]()
    op = getCustomOp(node)
    model = None
    if node.op_type == "Lookup_rtl":
        n, d = op.get_nodeattr("NumEmbeddings"), op.get_nodeattr("EmbeddingDim")
        dt = op.get_nodeattr("EmbeddingType")
        lo, hi = _dt_range(dt)
        table = np.random.default_rng(n).integers(lo, hi + 1, size=(n, d))
        model = _lookup_model(node, table, op.get_nodeattr("InputShape"), op.get_nodeattr("InputType"), dt)
    op.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    op.generate_hdl(model, "xc7z020clg400-1", 10.0)
    files = op.get_rtl_file_list(abspath=True)
    assert all(Path(f).is_file() for f in files) and all(f.endswith((".v", ".sv")) for f in files)
    top = op.get_nodeattr("gen_top_module")
    hwtools.lint(files, top, {})
    tcl = op.code_generation_ipi()
    assert tcl[-1] == f"create_bd_cell -type module -reference {top} {node.name}"
    if node.op_type == "Lookup_rtl":
        mem = tmp_path / f"{top}.table.mem"
        assert mem.read_text().split() == table_mem_lines(table, DataType[dt].bitwidth())
        assert f"add_files -norecurse {mem}" in tcl
    text = (tmp_path / f"{top}.v").read_text()
    for intf, width in op.get_verilog_top_module_intf_names()["s_axis"] + op.get_verilog_top_module_intf_names()["m_axis"]:
        assert f"[{width - 1}:0] {intf}_TDATA" in text, (intf, width)


def test_specialize_layers_picks_the_kernels_rtl_variants():
    """FINN's SpecializeLayers, after ``finn_registry.prefer_rtl``, makes Lookup, DuplicateStreams and
    LabelSelect our ``_rtl`` layers (names Lookup_rtl_0, ...); a LabelSelect the core cannot
    build (32-bit scores) stays FINN's HLS variant."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import GiveUniqueNodeNames
    from qonnx.util.basic import qonnx_make_model

    from kernels import finn_registry

    def graph(score_dt: str):
        k, n, d = 4, 16, 8
        dup = helper.make_node("DuplicateStreams", ["ids"], ["a", "b"], domain="finn.custom_op.fpgadataflow",
                               backend="fpgadataflow", NumChannels=k, PE=1, NumOutputStreams=2,
                               inputDataType="UINT4", numInputVectors=[1])
        lk = helper.make_node("Lookup", ["a", "table"], ["emb"], domain="finn.custom_op.fpgadataflow",
                              backend="fpgadataflow", NumEmbeddings=n, EmbeddingDim=d, EmbeddingType="INT4",
                              InputType="UINT4", InputShape=[1, k])
        lk2 = helper.make_node("Lookup", ["b", "table"], ["emb2"], domain="finn.custom_op.fpgadataflow",
                               backend="fpgadataflow", NumEmbeddings=n, EmbeddingDim=d, EmbeddingType="INT4",
                               InputType="UINT4", InputShape=[1, k])
        ls = helper.make_node("LabelSelect", ["scores"], ["top"], domain="finn.custom_op.fpgadataflow",
                              backend="fpgadataflow", Labels=32, PE=4, K=3, inputDataType=score_dt)
        g = helper.make_graph([dup, lk, lk2, ls], "g",
                              [helper.make_tensor_value_info("ids", TensorProto.FLOAT, [1, k]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 32])],
                              [helper.make_tensor_value_info(t, TensorProto.FLOAT, s)
                               for t, s in (("emb", [1, k, d]), ("emb2", [1, k, d]), ("top", [1, 3]))])
        model = ModelWrapper(qonnx_make_model(g))
        model.set_initializer("table", np.zeros((n, d), np.float32))
        model.set_tensor_datatype("table", DataType["INT4"])
        model.set_tensor_datatype("ids", DataType["UINT4"])
        model.set_tensor_datatype("scores", DataType[score_dt])
        return model.transform(GiveUniqueNodeNames())

    model = finn_registry.prefer_rtl(graph("INT9")).transform(SpecializeLayers("xc7z020clg400-1"))
    assert sorted(n.name for n in model.graph.node) == ["DuplicateStreams_rtl_0", "LabelSelect_rtl_0",
                                                        "Lookup_rtl_0", "Lookup_rtl_1"]
    assert all(n.domain == "finn.custom_op.fpgadataflow.rtl" for n in model.graph.node)
    model = finn_registry.prefer_rtl(graph("INT32")).transform(SpecializeLayers("xc7z020clg400-1"))
    assert sorted(n.op_type for n in model.graph.node) == ["DuplicateStreams_rtl", "LabelSelect_hls",
                                                           "Lookup_rtl", "Lookup_rtl"]
