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
