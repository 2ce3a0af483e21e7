"""Export the quantized student to QONNX, with the two custom kernels as QONNX-level ops.

The exported graph (``ids`` (1, K) UINTn, n = ceil(log2(N + 1)), the null id N included):

    ids ─┬─ Gather(E_id_int) ──┐
         ├─ Gather(E_txt_int) ─┴─ ModalityFusion ─┐              (kernels.qonnx_ops domain)
         └────────────────────────────────────────┴─ NeighborAggregate ─ Mul(s_f 2^-P)
           ─ Quant(agg) ─ Gemm(transform) ─ Relu ─ Quant ─ MatMul(Quant(S)ᵀ) ─ ``scores`` (1, N)

With ``aggregation="attention"`` the graph input ``ids`` carries one packed meta word per slot,
id | type << ID_BITS | bucket << (ID_BITS + TB) (UINT(ID_BITS + TB + RB), kernels/attention_aggregate
golden.pack_meta), ``Mod(ids, 2^ID_BITS)`` gives the Gathers their item ids and the aggregation is
``AttentionAggregate(fused, ids)`` (the words are the kernel's in1 stream as they are).

The head (lookups, fusion, aggregation) carries integers: the tables are the Brevitas
quantizers' own integers (one zero row appended for the null id), annotated INTb, and the two
kernel nodes execute their golden models. The tail from ``Mul`` on is the student's own
modules exported by Brevitas (TorchScript path, ``dynamo=False``). FINN's flow maps the Gathers
to Lookups and the kernel nodes to their HW ops (``fpgarec.compile.steps``).

:func:`export_qonnx` checks the file before returning: executed by qonnx, the head's integers
equal the student's fused and aggregated integers exactly, and the scores match the student's.
Metadata ``fpgarec.score_scale`` = s_S · s_u is the real value of one integer score step.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fpgarec.errors import FpgarecError
from fpgarec.models.student import QuantStudent
from fpgarec.train.checkpoint import load_student  # noqa: F401  (export.load_student: the compile flow reads students)

log = logging.getLogger(__name__)

#: names of the graph input and output in every exported file
INPUT_NAME = "ids"
OUTPUT_NAME = "scores"
#: the attention's weight stream, a second graph output (``emit_weights``)
WEIGHTS_NAME = "weights"
#: metadata keys written into the QONNX graph
META_PREFIX = "fpgarec."


def id_bits(n_items: int) -> int:
    """Bits of an item id: ceil(log2 N), at least 1."""
    return max(1, math.ceil(math.log2(max(2, n_items))))


def _act_scale(quant_identity) -> float:
    return float(quant_identity.act_quant.scale().detach())


@torch.no_grad()
def score_scale(student: QuantStudent) -> float:
    """Real value of one integer score step: s_S · s_u (scorer weight scale times the scale
    of the transform's ReLU output)."""
    return float(student.scorer.quant_weight().scale) * _act_scale(student.relu)


class DeployedTail(nn.Module):
    """The student after the aggregation: u = Q_u(ReLU(W Q_a(m) + β)), s = Q_w(S) u.
    Shapes: m (B, D) float -> scores (B, N)."""

    def __init__(self, student: QuantStudent):
        super().__init__()
        self.agg_quant, self.transform = student.agg_quant, student.transform
        self.relu, self.scorer = student.relu, student.scorer

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return self.scorer(self.relu(self.transform(self.agg_quant(m))))


@torch.no_grad()
def kernel_parameters(student: QuantStudent, pe: int = 1, emit_weights: bool = False):
    """(FusionParams, AggregateParams or AttentionParams) of the student's two kernels at
    ``pe`` lanes (the attention's exp multiplier follows the fused features' scale s_f)."""
    student = student.eval()
    _, scales = student.integer_tables()
    d = student.shape.dim
    fusion = student.fusion.kernel_params(scales, d, pe, student.shape.act_bits)
    if student.attention:
        student.aggregate.set_feature_scale(float(student.fusion.out_scale().detach()))
        return fusion, student.aggregate.kernel_params(pe, emit_weights)
    return fusion, student.aggregate.kernel_params(d, pe)


def _aggregate_nodes(student: QuantStudent, agg) -> list:
    """The aggregation node of the head: ``NeighborAggregate(fused, ids)``, or for the attention
    ``AttentionAggregate(fused, words)`` (with ``agg.emit_weights`` a second output, the weights
    a (1, K) UINT(W+1))."""
    from kernels.attention_aggregate.golden import node_attrs
    from kernels.qonnx_ops import DOMAIN
    from onnx import helper

    if not student.attention:
        return [helper.make_node("NeighborAggregate", ["fused", INPUT_NAME], ["mean_int"], name="NeighborAggregate_0",
                                 domain=DOMAIN, K=student.shape.k, Mode=agg.mode, FracBits=agg.frac_bits,
                                 NullId=agg.null_id)]
    attrs = {a: v for a, v in node_attrs(agg).items() if a != "inputDataType"}
    outputs = ["mean_int", WEIGHTS_NAME] if agg.emit_weights else ["mean_int"]
    return [helper.make_node("AttentionAggregate", ["fused", INPUT_NAME], outputs, name="AttentionAggregate_0",
                             domain=DOMAIN, inputDataType=agg.in_datatype, **attrs)]


@torch.no_grad()
def integer_tables(student: QuantStudent) -> list[np.ndarray]:
    """[E_id_int, E_txt_int], each (N + 1, D) int64 with a zero row N for the null id."""
    tables, _ = student.eval().integer_tables()
    zero = np.zeros((1, student.shape.dim), np.int64)
    return [np.concatenate([t.numpy().astype(np.int64), zero]) for t in tables]


def _prepend_head(model, student: QuantStudent, emit_weights: bool = False) -> None:
    """Put the integer head in front of the exported tail (whose input is ``m``); with
    ``emit_weights`` (an attention student) the attention weights become a second graph output."""
    from kernels.qonnx_ops import DOMAIN
    from onnx import TensorProto, helper, numpy_helper
    from qonnx.core.datatype import DataType

    shape = student.shape
    fusion, agg = kernel_parameters(student, emit_weights=emit_weights)
    graph = model.graph
    tail_in = graph.input[0].name
    ids = helper.make_tensor_value_info(INPUT_NAME, TensorProto.INT64, [1, shape.k])
    index = INPUT_NAME  # the Gathers' indices: the ids, or the id field of the attention's meta words
    inits, nodes = [], []
    if student.attention:
        index = "item_ids"
        inits.append(numpy_helper.from_array(np.asarray([1 << agg.id_bits], np.int64), "id_modulus"))
        nodes.append(helper.make_node("Mod", [INPUT_NAME, "id_modulus"], [index], name="Mod_id_field", fmod=1))
    for name, table in zip(("table_id", "table_text"), integer_tables(student), strict=True):
        inits.append(numpy_helper.from_array(table.astype(np.float32), name))
    scale = np.asarray(float(student.fusion.out_scale().detach()) / (1 << shape.agg_frac_bits), dtype=np.float32)
    inits.append(numpy_helper.from_array(scale.reshape(1), "mean_scale"))
    nodes += [
        helper.make_node("Gather", ["table_id", index], ["emb_id"], name="Gather_id", axis=0),
        helper.make_node("Gather", ["table_text", index], ["emb_text"], name="Gather_text", axis=0),
        helper.make_node("ModalityFusion", ["emb_id", "emb_text"], ["fused"], name="ModalityFusion_0",
                         domain=DOMAIN, Weights=list(fusion.weights), WeightBits=fusion.w_bits,
                         FracBits=fusion.frac_bits, outputDataType=fusion.out_datatype),
        *_aggregate_nodes(student, agg),
        helper.make_node("Mul", ["mean_int", "mean_scale"], [tail_in], name="Mul_mean_scale"),
    ]
    graph.input.remove(graph.input[0])
    graph.input.insert(0, ids)
    graph.initializer.extend(inits)
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    if not any(o.domain == DOMAIN for o in model.model.opset_import):
        model.model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    model.set_tensor_datatype(INPUT_NAME, DataType[agg.meta_datatype if student.attention
                                                   else f"UINT{id_bits(shape.n_items + 1)}"])
    if student.attention:
        model.set_tensor_datatype(index, DataType[f"UINT{agg.id_bits}"])
    for name in ("emb_id", "emb_text", "fused"):  # custom ops' shapes are inferred from their inputs
        model.set_tensor_shape(name, [1, shape.k, shape.dim])
    model.set_tensor_shape("mean_int", [1, shape.dim])
    int_dt = DataType[fusion.in_datatype]
    for name in ("table_id", "table_text", "emb_id", "emb_text"):
        model.set_tensor_datatype(name, int_dt)
    if emit_weights:
        _declare_weights_output(model, shape.k, agg.weight_datatype)


def _declare_weights_output(model, k: int, datatype: str) -> None:
    """Make the tensor :data:`WEIGHTS_NAME` the second graph output: shape (1, K), ``datatype``
    (FINN's shape inference sees only a custom op's first output, so the graph declares it)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType

    if not any(o.name == WEIGHTS_NAME for o in model.graph.output):
        model.graph.output.append(helper.make_tensor_value_info(WEIGHTS_NAME, TensorProto.FLOAT, [1, k]))
    model.set_tensor_shape(WEIGHTS_NAME, [1, k])
    model.set_tensor_datatype(WEIGHTS_NAME, DataType[datatype])


def add_weights_output(model):
    """A QONNX/FINN model of an attention student with the weight stream: its
    AttentionAggregate node gets ``EmitWeights`` 1 and the second output :data:`WEIGHTS_NAME`
    (1, K) UINT(W+1), a second graph output; the ``fpgarec.aggregation`` metadata says so.
    Unchanged when the node has it already; refuses a model without an AttentionAggregate."""
    from qonnx.custom_op.registry import getCustomOp

    nodes = [n for n in model.graph.node if n.op_type.startswith("AttentionAggregate")]
    if len(nodes) != 1:
        raise FpgarecError("emit_weights needs an attention student (aggregation: attention); "
                           f"the model has {len(nodes)} AttentionAggregate nodes")
    node = nodes[0]
    inst = getCustomOp(node)
    if len(node.output) == 1:
        inst.set_nodeattr("EmitWeights", 1)
        node.output.append(WEIGHTS_NAME)
    p = inst.params()
    _declare_weights_output(model, p.k, p.weight_datatype)
    meta = read_metadata(model).get("aggregation")
    if isinstance(meta, dict):
        meta.update(emit_weights=True, weight_bits=p.w_bits)
        model.set_metadata_prop(META_PREFIX + "aggregation", json.dumps(meta))
    return model


@torch.no_grad()
def quantizer_metadata(student: QuantStudent) -> dict:
    """Exact scales of the two activation quantizers, for
    :mod:`fpgarec.compile.exact_rounding`: ``agg`` rounds m_int · a / s_a with a = s_f 2^-P;
    ``relu`` rounds (acc · s_a s_w + β) / s_u with acc = W_int · q_int. Every value is a float32
    written as the float64 that holds it exactly."""
    student = student.eval()
    mean_scale = float(np.float32(float(student.fusion.out_scale().detach()) / (1 << student.shape.agg_frac_bits)))
    s_a, s_u = _act_scale(student.agg_quant), _act_scale(student.relu)
    s_w = float(student.transform.quant_weight().scale.detach().reshape(()))
    bias = student.transform.bias
    d = student.shape.dim
    beta = [float(b) for b in bias.detach()] if bias is not None else [0.0] * d
    aq, rq = student.agg_quant.act_quant, student.relu.act_quant
    return {
        "agg": {"in_scale": [mean_scale], "bias": [0.0], "scale": s_a, "bits": int(aq.bit_width()),
                "signed": bool(aq.is_signed), "narrow": bool(aq.is_narrow_range)},
        "relu": {"in_scale": [s_a, s_w], "bias": beta, "scale": s_u, "bits": int(rq.bit_width()),
                 "signed": bool(rq.is_signed), "narrow": bool(rq.is_narrow_range)},
    }


def check_contexts(student: QuantStudent, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` random contexts, every 4th a cold-start user (row % K + 1 items, then null ids):
    ids (n, K), or for the attention (n, K, 3) [id, type, bucket] with random types and buckets
    (null slots carry random ones too: the kernel ignores them)."""
    shape = student.shape
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, shape.n_items, (n, shape.k), generator=g)
    for row in range(0, n, 4):
        ids[row, row % shape.k + 1:] = shape.null_id
    if not student.attention:
        return ids
    types = torch.randint(0, shape.att_types, (n, shape.k), generator=g)
    buckets = torch.randint(0, shape.att_buckets, (n, shape.k), generator=g)
    return torch.stack([ids, types, buckets], dim=-1)


def input_words(student: QuantStudent, ctx: np.ndarray) -> np.ndarray:
    """The design input of contexts: the ids (B, K) as they are, or for the attention the packed
    meta words id | type << ID_BITS | bucket << (ID_BITS + TB) of (B, K, 3) contexts. int64."""
    if not student.attention:
        return np.asarray(ctx, np.int64)
    from kernels.attention_aggregate.golden import pack_meta

    return pack_meta(kernel_parameters(student)[1], ctx).astype(np.int64)


@torch.no_grad()
def aggregated_integers(student: QuantStudent, ctx: torch.Tensor) -> torch.Tensor:
    """The aggregation kernel's output m_int (B, D) for contexts ``ctx`` (the mean's or the
    attention's u, units of 2^-P)."""
    f_int, s_f = student.fused_integers(ctx)
    if student.attention:
        student.aggregate.set_feature_scale(s_f.detach())
        return student.aggregate(f_int, ctx)[0]
    return student.aggregate(f_int, ctx)


@torch.no_grad()
def attention_weights(student: QuantStudent, ctx: torch.Tensor) -> torch.Tensor:
    """The attention student's weights a (B, K) int64 for contexts ``ctx`` (B, K, 3): the
    kernel's a_j ≈ 2^W · softmax_j, 0 on padding slots (what the weight stream carries)."""
    if not student.attention:
        raise FpgarecError("attention weights need an attention student (aggregation: attention)")
    f_int, s_f = student.fused_integers(ctx)
    student.aggregate.set_feature_scale(s_f.detach())
    return student.aggregate(f_int, ctx)[1].long()


def student_contexts(student: QuantStudent, words: np.ndarray) -> np.ndarray:
    """Inverse of :func:`input_words`: design inputs (B, K) -> the student's contexts (the ids,
    or (B, K, 3) [id, type, bucket] for the attention)."""
    if not student.attention:
        return np.asarray(words, np.int64)
    from kernels.attention_aggregate.golden import unpack_meta

    return unpack_meta(kernel_parameters(student)[1], words)


def aggregation_metadata(student: QuantStudent, agg) -> dict:
    """The ``aggregation`` metadata record: mode and fractional bits; for the attention also
    what the host needs to build the meta words (types, recency buckets, field widths)."""
    if not student.attention:
        return {"mode": agg.mode, "frac_bits": agg.frac_bits}
    from fpgarec.data.behaviour import BEHAVIOURS
    from fpgarec.data.sampler import recency_bucket

    s = student.shape
    ranks = np.arange(1 << 16)
    buckets = recency_bucket(ranks, s.att_buckets, s.att_per_octave)
    # bucket r holds the ranks edges[r] <= rank < edges[r+1] (rank 0: the most recent item); an unused
    # bucket (per_octave > 1) repeats the next edge
    edges = [int(np.searchsorted(buckets, r)) for r in range(s.att_buckets)]
    return {"mode": "attention", "frac_bits": agg.frac_bits, "n_types": s.att_types, "n_buckets": s.att_buckets,
            "bucket_edges": edges, "per_octave": s.att_per_octave, "id_bits": agg.id_bits, "type_bits": agg.type_bits,
            "bucket_bits": agg.bucket_bits, "meta_datatype": agg.meta_datatype,
            "input": "meta words: id | type << id_bits | bucket << (id_bits + type_bits)",
            # behaviour type t's name (data/behaviour.py: derived from ratings for MovieLens)
            "type_names": list(BEHAVIOURS) if s.att_types == len(BEHAVIOURS) else [f"type {t}" for t in range(s.att_types)],
            # the weight stream (a second design output, K integers 0..2^W per query, slot order)
            "emit_weights": bool(agg.emit_weights), "weight_bits": agg.w_bits}


@torch.no_grad()
def check_export(model, student: QuantStudent, n: int = 32, seed: int = 0) -> None:
    """Raise unless qonnx' execution of the exported head equals the student's integers exactly
    and its scores match the student's (float32 tolerance) on ``n`` queries, some null-padded."""
    from qonnx.core.onnx_exec import execute_onnx

    ctx = check_contexts(student, n, seed)
    m_int = aggregated_integers(student, ctx).numpy()
    scores = student(ctx, exact=False).numpy()  # the float32 forward Brevitas exported
    agg = next(node for node in model.graph.node if node.op_type in ("NeighborAggregate", "AttentionAggregate"))
    weights = attention_weights(student, ctx).numpy() if len(agg.output) > 1 else None
    words = input_words(student, ctx.numpy())
    for b in range(n):
        out = execute_onnx(model, {INPUT_NAME: words[b:b + 1]}, return_full_exec_context=True)
        if not np.array_equal(out[agg.output[0]].reshape(-1), m_int[b]):
            raise FpgarecError(f"exported head differs from the student on query {b} (aggregated integers)")
        if weights is not None and not np.array_equal(out[agg.output[1]].reshape(-1), weights[b]):
            raise FpgarecError(f"exported head differs from the student on query {b} (attention weights)")
        if not np.allclose(out[OUTPUT_NAME].reshape(-1), scores[b], rtol=1e-5, atol=1e-5 * np.abs(scores[b]).max()):
            raise FpgarecError(f"exported scores differ from the student on query {b}")


def export_qonnx(student: QuantStudent, path: Path, metadata: dict | None = None, emit_weights: bool = False) -> Path:
    """Write the student as a cleaned QONNX file (graph in the module docstring), check it
    (:func:`check_export`) and return its path. ``metadata`` (JSON-able values) is stored as
    ``fpgarec.<key>`` metadata properties. ``emit_weights`` (attention students only): the
    attention weights a (1, K) UINT(W+1) are a second graph output :data:`WEIGHTS_NAME`."""
    from brevitas.export import export_qonnx as brevitas_export
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.util.cleanup import cleanup_model

    if emit_weights and not student.attention:
        raise FpgarecError(f"emit_weights needs an attention student (aggregation: attention); this student's "
                           f"aggregation is {student.shape.aggregation}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    student = student.eval()
    shape = student.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brevitas_export(
            DeployedTail(student).eval(), args=torch.zeros(1, shape.dim), export_path=str(path),
            dynamo=False, input_names=["m"], output_names=[OUTPUT_NAME],
        )
        model = cleanup_model(ModelWrapper(str(path)))
    model.rename_tensor(model.graph.output[0].name, OUTPUT_NAME)
    _prepend_head(model, student, emit_weights)
    model = cleanup_model(model).transform(InferDataTypes())
    model.rename_tensor(model.graph.input[0].name, INPUT_NAME)
    model.rename_tensor(model.graph.output[0].name, OUTPUT_NAME)
    if emit_weights:
        model.rename_tensor(model.graph.output[1].name, WEIGHTS_NAME)
    check_export(model, student)
    fusion, agg = kernel_parameters(student, emit_weights=emit_weights)
    meta = {
        "score_scale": score_scale(student), "n_items": shape.n_items, "dim": shape.dim,
        "k": shape.k, "weight_bits": shape.weight_bits, "act_bits": shape.act_bits,
        "fusion": "modality_fusion kernel", "modality_weights": [float(x) for x in student.modality_weights().detach()],
        "fusion_weights": list(fusion.weights), "fusion_frac_bits": fusion.frac_bits,
        "padding": {"scheme": "null", "null_id": shape.null_id}, "n_recent": shape.n_recent,
        "aggregation": aggregation_metadata(student, agg),
        "quantizers": quantizer_metadata(student), **(metadata or {}),
    }
    for key, value in meta.items():
        model.set_metadata_prop(META_PREFIX + key, json.dumps(value))
    model.save(str(path))
    log.info("exported %s (N=%d, D=%d, K=%d, %d-bit)", path, shape.n_items, shape.dim, shape.k, shape.act_bits)
    return path


def read_metadata(model) -> dict:
    """The ``fpgarec.*`` metadata of a QONNX/FINN model (a qonnx ModelWrapper) as a dict."""
    out = {}
    for prop in model.model.graph.metadata_props:
        if prop.key.startswith(META_PREFIX):
            try:
                out[prop.key[len(META_PREFIX):]] = json.loads(prop.value)
            except ValueError:
                out[prop.key[len(META_PREFIX):]] = prop.value
    return out


@torch.no_grad()
def integer_scores(student: QuantStudent, ids: np.ndarray, batch: int = 4096, exact: bool = True) -> np.ndarray:
    """The student's scores as the integers the hardware computes, z = u_int · S_intᵀ.

    u_int = Q_u output / s_u and S_int = Q_w(S) / s_S are the Brevitas quantizers' own integers
    (exact: small integers times a scale), multiplied in int64, so the result is exact at any
    bit width, whereas the float forward s = score_scale · z rounds once |z| passes 2^24.
    Raises if the float forward disagrees with score_scale · z beyond float32 rounding.
    ``exact``: the student's exact rounding (what the hardware computes, the default) or its
    float32 forward (what Brevitas exported; see :meth:`QuantStudent.user_vector`).

    Shapes: ids (B, K) -> (B, N) int64.
    """
    student = student.eval()
    scale = score_scale(student)
    out = []
    for start in range(0, len(ids), batch):
        ctx = torch.as_tensor(np.asarray(ids[start:start + batch]), dtype=torch.int64)
        z = student.integer_scores(ctx, exact).numpy()
        s = student.scorer(student.user_vector(ctx, exact)).double().numpy() / scale
        if np.abs(s - z).max(initial=0) > 1e-2 + 1e-5 * np.abs(z).max(initial=0):
            raise FpgarecError("student scores are not integer multiples of score_scale")
        out.append(z)
    return np.concatenate(out) if out else np.zeros((0, student.shape.n_items), np.int64)
