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
