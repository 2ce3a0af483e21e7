"""attention_aggregate's FINN and QONNX ops: numpy execution == golden model (u and the weights),
the inference transformation (QONNX-level op -> FINN HW op), parameters refused at creation
(naming the parameter), expected cycles, and the generated RTL wrapper lints clean."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

pytest.importorskip("finn")

from kernels.attention_aggregate.golden import (  # noqa: E402
    AttentionParams,
    attend,
    cycles,
    exp_scale,
    node_attrs,
    pack_meta,
)

FINN = "finn.custom_op.fpgadataflow"


@pytest.fixture(scope="module", autouse=True)
def registered():
    from kernels import finn_registry

    finn_registry.register_finn()


def params(seed=0, k=5, d=8, pe=4, in_bits=4, in_signed=True, emit=True, id_bits=6, **kw) -> AttentionParams:
    rng = np.random.default_rng(seed)
    return AttentionParams(k=k, d=d, pe=pe, in_bits=in_bits, in_signed=in_signed,
                           q=tuple(rng.integers(-128, 128, d)), b_type=tuple(rng.integers(-128, 128, 3)),
                           b_pos=tuple(rng.integers(-128, 128, 4)), m_mult=exp_scale(0.02, 10, 4), s_shift=10,
                           id_bits=id_bits, null_id=63, emit_weights=emit, **kw)


def inputs(p: AttentionParams, vecs: tuple[int, ...], seed=1):
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (p.in_bits - 1)), (1 << (p.in_bits - 1)) - 1) if p.in_signed else (0, (1 << p.in_bits) - 1)
    n = int(np.prod(vecs))
    x = rng.integers(lo, hi + 1, size=(n, p.k, p.d))
    meta = np.stack([rng.integers(0, 1 << p.id_bits, (n, p.k)), rng.integers(0, p.n_types, (n, p.k)),
                     rng.integers(0, p.n_buckets, (n, p.k))], -1)
    meta[rng.random((n, p.k)) < 0.3, 0] = p.null_id
    meta[0, :, 0] = p.null_id  # an all-padding query
    return x, meta


def hw_node(p: AttentionParams, vecs=(1,), op="AttentionAggregate", outputs=("u", "a")):
    attrs = node_attrs(p)
    return helper.make_node(op, ["x", "meta"], list(outputs), domain=FINN + (".rtl" if op.endswith("_rtl") else ""),
                            backend="fpgadataflow", name="attn", NumChannels=p.d, PE=p.pe,
                            numInputVectors=list(vecs), **attrs)


def model_of(node, p: AttentionParams, vecs, n_out: int):
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    outs = [helper.make_tensor_value_info("u", TensorProto.FLOAT, [*vecs, p.d])]
    if n_out > 1:
        outs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [*vecs, p.k]))
    graph = helper.make_graph([node], "attn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [*vecs, p.k, p.d]),
                               helper.make_tensor_value_info("meta", TensorProto.FLOAT, [*vecs, p.k])], outs)
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", DataType[p.in_datatype])
    model.set_tensor_datatype("meta", DataType[p.meta_datatype])
    return model


@pytest.mark.parametrize("op", ["AttentionAggregate", "AttentionAggregate_rtl"])
@pytest.mark.parametrize("case", ["int4-weights", "uint3-u-only", "pe1-vecs"])
def test_finn_execution_is_the_golden_model(op, case):
    from finn.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    p, vecs = {"int4-weights": (params(), (1, 6)),
               "uint3-u-only": (params(2, in_bits=3, in_signed=False, emit=False, pe=8, out_bits=6), (7,)),
               "pe1-vecs": (params(3, k=3, d=4, pe=1, w_bits=12, frac_bits=6, out_bits=10), (2, 3))}[case]
    n_out = 2 if p.emit_weights else 1
    node = hw_node(p, vecs, op, ("u", "a")[:n_out])
    model = model_of(node, p, vecs, n_out)
    inst = getCustomOp(node)
    assert inst.params() == p
    assert inst.get_exp_cycles() == int(np.prod(vecs)) * cycles(p).per_query
    assert inst.get_folded_input_shape(0) == (*vecs, p.k, p.fold, p.pe)
    assert inst.get_instream_width(1) == p.meta_bits and inst.get_outstream_width(1) == p.w_bits + 1
    for seed in range(5):
        x, meta = inputs(p, vecs, seed)
        u, a = attend(p, x, meta)
        feed = {"x": x.reshape(*vecs, p.k, p.d).astype(np.float32),
                "meta": pack_meta(p, meta).reshape(*vecs, p.k).astype(np.float32)}
        out = execute_onnx(model, feed)
        np.testing.assert_array_equal(out["u"], u.reshape(*vecs, p.d).astype(np.float32))
        if n_out > 1:
            np.testing.assert_array_equal(out["a"], a.reshape(*vecs, p.k).astype(np.float32))


def test_qonnx_op_and_the_transformation_keep_the_golden_model():
    """The exported QONNX-level op executes the golden model; InferAttentionAggregateLayer turns
    it into the FINN HW op (PE 1, the same attributes), which executes the same."""
    from finn.core.onnx_exec import execute_onnx
    from kernels.attention_aggregate.transform import InferAttentionAggregateLayer
    from kernels.registry import QONNX_DOMAIN
    from qonnx.custom_op.registry import getCustomOp

    p = params(4)
    vecs = (1, 3)
    attrs = {a: v for a, v in node_attrs(p).items()}
    node = helper.make_node("AttentionAggregate", ["x", "meta"], ["u", "a"], domain=QONNX_DOMAIN, **attrs)
    model = model_of(node, p, vecs, 2)
    x, meta = inputs(p, vecs, 9)
    u, a = attend(p, x, meta)
    feed = {"x": x.reshape(*vecs, p.k, p.d).astype(np.float32),
            "meta": pack_meta(p, meta).reshape(*vecs, p.k).astype(np.float32)}
    out = execute_onnx(model, feed)
    np.testing.assert_array_equal(out["u"], u.reshape(*vecs, p.d))
    np.testing.assert_array_equal(out["a"], a.reshape(*vecs, p.k))
    hw, changed = InferAttentionAggregateLayer().apply(model)
    (n,) = hw.graph.node
    assert n.op_type == "AttentionAggregate" and n.domain == FINN and not changed
    inst = getCustomOp(n)
    assert inst.get_nodeattr("PE") == 1 and inst.params() == AttentionParams(**{**p.__dict__, "pe": 1})
    assert hw.get_tensor_datatype("u").name == "INT8" and hw.get_tensor_datatype("a").name == "UINT11"
    out = execute_onnx(hw, feed)
    np.testing.assert_array_equal(out["u"], u.reshape(*vecs, p.d))
    np.testing.assert_array_equal(out["a"], a.reshape(*vecs, p.k))


@pytest.mark.parametrize("change,name", [
    (dict(PE=3), "PE=3 does not divide D=8"), (dict(K=0), "K=0"), (dict(inputDataType="FLOAT32"), "inputDataType"),
    (dict(Query=[1, 2, 3]), "q: 3 values"), (dict(TypeBias=[1, 999]), r"b_type\[1\]=999"),
    (dict(FracBits=11), "frac_bits"), (dict(idDataType="INT6"), "idDataType"),
])
def test_refuses_unbuildable_parameters_at_creation(change, name):
    from kernels._params import KernelParameterError
    from qonnx.custom_op.registry import getCustomOp

    node = hw_node(params())
    for a in node.attribute:
        if a.name in change:
            node.attribute.remove(a)
    node.attribute.extend(helper.make_attribute(k, v) for k, v in change.items())
    with pytest.raises(KernelParameterError, match=name):
        getCustomOp(node)


def test_emulation_layer_function():
    from kernels import registry

    p = params(5)
    x, meta = inputs(p, (4,), 3)
    attrs = {**node_attrs(p), "NumChannels": p.d, "PE": p.pe}
    fn = registry.emulator("AttentionAggregate", attrs)
    u, a = fn(x.reshape(4, -1), pack_meta(p, meta))
    want = attend(p, x, meta)
    np.testing.assert_array_equal(u, want[0])
    np.testing.assert_array_equal(a, want[1])
    fn = registry.emulator("AttentionAggregate", {**attrs, "EmitWeights": 0})
    np.testing.assert_array_equal(fn(x, pack_meta(p, meta)), want[0])


@pytest.mark.rtlsim
@pytest.mark.parametrize("emit", [True, False])
def test_generated_wrapper_lints_clean(emit, tmp_path, hw_env):
    """What FINN's code generation writes (wrapper + core) passes verilator -Wall, with and
    without the weight stream; the interfaces FINN stitches match the wrapper's ports."""
    from qonnx.custom_op.registry import getCustomOp

    from kernels import hwtools

    p = params(6, k=20, d=64, pe=32, emit=emit, id_bits=11)
    node = hw_node(p, (1,), "AttentionAggregate_rtl", ("u", "a")[: 1 + emit])
    op = getCustomOp(node)
    op.set_nodeattr("code_gen_dir_ipgen", str(tmp_path))
    op.generate_hdl(None, "xc7z020clg400-1", 10.0)
    files = op.get_rtl_file_list(abspath=True)
    top = op.get_nodeattr("gen_top_module")
    hwtools.lint(files, top, {})
    text = (tmp_path / f"{top}.v").read_text()
    intf = op.get_verilog_top_module_intf_names()
    assert [n for n, _ in intf["m_axis"]] == ["out0_V", "out1_V"][: 1 + emit]
    for name, width in intf["s_axis"] + intf["m_axis"]:
        assert f"[{width - 1}:0] {name}_TDATA" in text, (name, width)
    assert op.code_generation_ipi()[-1] == f"create_bd_cell -type module -reference {top} {node.name}"
