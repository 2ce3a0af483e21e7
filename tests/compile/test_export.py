"""Export of the student to QONNX: the fused table is exact and the file is what FINN needs."""

from __future__ import annotations

import numpy as np
import pytest


def test_exported_head_is_the_kernels_and_equals_the_student(small_student, tmp_path):
    """The head of the QONNX file is two integer Gathers and the two kernel ops; executed by
    qonnx (golden models) it gives the student's aggregated integers on null-padded queries,
    and the check refuses a file whose fusion weights were altered."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import get_by_name

    from fpgarec.compile.export import check_export, export_qonnx
    from fpgarec.errors import FpgarecError

    student, _ = small_student
    model = ModelWrapper(str(export_qonnx(student, tmp_path / "s.onnx")))
    head = [(n.op_type, n.domain) for n in model.graph.node[:6] if n.op_type != "Quant"]
    assert head[:4] == [("Gather", ""), ("Gather", ""), ("ModalityFusion", "kernels.qonnx_ops"),
                        ("NeighborAggregate", "kernels.qonnx_ops")]
    gather = model.graph.node[0]
    table = model.get_initializer(gather.input[0])
    assert table.shape == (201, 16) and not table[200].any()  # the null row
    check_export(model, student, n=64, seed=5)  # raises on any difference
    fusion = next(n for n in model.graph.node if n.op_type == "ModalityFusion")
    weights = get_by_name(fusion.attribute, "Weights")
    weights.ints[0] += 7
    with pytest.raises(FpgarecError, match="differs from the student"):
        check_export(model, student, n=64, seed=5)


def test_export_qonnx_names_types_and_scores(small_student, tmp_path):
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from fpgarec.compile.export import export_qonnx, integer_scores, read_metadata

    student, _ = small_student
    path = export_qonnx(student, tmp_path / "s.onnx", metadata={"note": "test"})
    model = ModelWrapper(str(path))
    assert [i.name for i in model.graph.input] == ["ids"]
    assert [o.name for o in model.graph.output] == ["scores"]
    assert model.get_tensor_shape("ids") == [1, 4]
    assert model.get_tensor_shape("scores") == [1, 200]
    assert model.get_tensor_datatype("ids") == DataType["UINT8"]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gather") == 2 and "GlobalAveragePool" not in ops and "Quant" in ops
    meta = read_metadata(model)
    assert meta["n_items"] == 200 and meta["k"] == 4 and meta["note"] == "test"
    assert meta["padding"] == {"scheme": "null", "null_id": 200}
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 200, (5, 4))
    ids[1, 1:] = 200  # a user with one item
    want = integer_scores(student, ids)
    for row, w in zip(ids, want, strict=True):
        s = execute_onnx(model, {"ids": row[None].astype(np.int64)})["scores"]
        np.testing.assert_array_equal(np.rint(s[0] / meta["score_scale"]).astype(np.int64), w)


def test_load_student_reports_missing_files(tmp_path):
    from fpgarec.compile.export import load_student
    from fpgarec.errors import FpgarecError

    with pytest.raises(FpgarecError, match="student.safetensors"):
        load_student(tmp_path / "student.safetensors")
