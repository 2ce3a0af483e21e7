"""Export of the student to QONNX: the fused table is exact and the file is what FINN needs."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_fused_table_is_the_students_fusion(small_student):
    from fpgarec.compile.export import DeployedStudent, check_deployed, fused_table

    student, _ = small_student
    table, scale = fused_table(student)
    assert table.dtype == np.int8 and table.shape == (200, 16)
    assert table.min() >= -8 and table.max() <= 7
    ids = torch.arange(200)[:, None]
    a = student.modality_weights()
    with torch.no_grad():
        fused = student.fuse_quant(a[0] * student.id_table(ids) + a[1] * student.text_table(ids))
    assert torch.equal(torch.from_numpy(table.astype(np.float32)).reshape(200, 1, 16) * scale, fused)
    check_deployed(student, DeployedStudent(student), n=512, seed=3)  # raises on any difference


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
    assert ops.count("Gather") == 1  # one fused table, not two lookups
    assert "GlobalAveragePool" in ops and "Quant" in ops
    meta = read_metadata(model)
    assert meta["n_items"] == 200 and meta["k"] == 4 and meta["fusion"] == "fused-table" and meta["note"] == "test"
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 200, (5, 4))
    want = integer_scores(student, ids)
    for row, w in zip(ids, want, strict=True):
        s = execute_onnx(model, {"ids": row[None].astype(np.int64)})["scores"]
        np.testing.assert_array_equal(np.rint(s[0] / meta["score_scale"]).astype(np.int64), w)


def test_load_student_reports_missing_files(tmp_path):
    from fpgarec.compile.export import load_student
    from fpgarec.errors import FpgarecError

    with pytest.raises(FpgarecError, match="student.safetensors"):
        load_student(tmp_path / "student.safetensors")
