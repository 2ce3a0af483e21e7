"""Export the quantized student to QONNX, in the one form FINN maps end to end.

The student fuses its two lookups as ``f = Q_a(α_id e + α_txt t)`` (see
:mod:`fpgarec.models.student`). FINN cannot map that as two streams: the scalar products
``α_id s_id e_int`` and ``α_txt s_txt t_int`` carry different real scales, and the sum of two
differently scaled integer streams is not an integer operation that streamlining can fold
into one threshold. The fusion is elementwise per item, though, so it is folded offline into
ONE table, exactly:

    F[i] = Q_a(α_id Q_w(E_id)[i] + α_txt Q_w(E_txt)[i]) = s_f · F_int[i],   F_int ∈ [-2^(b-1), 2^(b-1)-1]

computed for every item with the student's own ``fuse_quant`` (the same float operations as in
the student's forward, so the same rounding). The deployment module :class:`DeployedStudent`
looks rows of F up with a ``QuantEmbedding`` whose quantizer has the constant scale ``s_f`` and
the full signed range of ``fuse_quant``, so its output equals the student's fused features bit
for bit (checked by :func:`export_qonnx`). The rest of the query path is the student's own
modules. Hardware needs one Lookup instead of two and half the table memory.

Export uses Brevitas' TorchScript path (``dynamo=False``). The QONNX file has the input
``ids`` (1, K), annotated ``UINTn`` with n = ceil(log2 N), and the output ``scores`` (1, N); its
metadata carries ``fpgarec.score_scale`` = s_S · s_u, the real value of one integer score step,
so integer scores are ``scores / score_scale``.
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
from fpgarec.models.student import QuantStudent, StudentShape

log = logging.getLogger(__name__)

#: names of the graph input and output in every exported file
INPUT_NAME = "ids"
OUTPUT_NAME = "scores"
#: metadata keys written into the QONNX graph
META_PREFIX = "fpgarec."


def load_student(path: Path) -> QuantStudent:
    """A trained student from ``<name>.safetensors`` and its shape ``<name>.json``."""
    from safetensors.torch import load_file

    path = Path(path)
    weights, shape_file = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for p in (weights, shape_file):
        if not p.is_file():
            raise FpgarecError(f"{p}: file not found (a student is <name>.safetensors + <name>.json)")
    try:
        shape = StudentShape(**json.loads(shape_file.read_text()))
    except (TypeError, ValueError) as exc:
        raise FpgarecError(f"{shape_file}: not a student shape ({exc})") from exc
    student = QuantStudent(shape)
    try:
        student.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise FpgarecError(f"{weights}: weights do not fit the shape in {shape_file.name} ({exc})") from exc
    return student.eval()


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


@torch.no_grad()
def fused_table(student: QuantStudent) -> tuple[np.ndarray, float]:
    """The fused item table as integers and its scale.

    Returns ``(F_int, s_f)`` with F_int of shape (N, D), int8, such that the student's fused
    feature of item i is ``s_f * F_int[i]`` exactly.
    """
    student = student.eval()
    n = student.shape.n_items
    ids = torch.arange(n).unsqueeze(-1)  # (N, 1): the same layout as the student's forward
    a = student.modality_weights()
    fused = student.fuse_quant(a[0] * student.id_table(ids) + a[1] * student.text_table(ids))
    fused = fused.reshape(n, -1)
    s_f = _act_scale(student.fuse_quant)
    ints = torch.round(fused / s_f)
    if not torch.equal(ints * s_f, fused):
        raise FpgarecError("fused table is not an integer multiple of fuse_quant's scale")
    return ints.to(torch.int8).numpy(), s_f


class DeployedStudent(nn.Module):
    """The student's query path with the two lookups and the fusion folded into one table.

        f_k = F[c_k]  (one lookup, F = Q_a(α_id E_id + α_txt E_txt) precomputed)
        m = Q_a(1/K Σ_k f_k);  u = Q_u(ReLU(W m + β));  s = Q_w(S) u

    Shapes: ids (B, K) int64 -> scores (B, N) float (integers times ``score_scale``).
    The Lookup runs on (B, K) and the result is unsqueezed to (B, K, 1, D) (NHWC), so FINN
    sees Lookup -> Unsqueeze -> GlobalAccPool with integer ids at the Lookup.
    """

    def __init__(self, student: QuantStudent):
        super().__init__()
        from brevitas.nn import QuantEmbedding
        from brevitas.quant import Int8WeightPerTensorFloat

        student = student.eval()
        table, s_f = fused_table(student)
        n, d = table.shape
        bits = student.shape.act_bits
        # constant scale s_f (Brevitas divides the constant by the integer scale 2^(b-1) of a
        # signed full-range quantizer, a power of two, so the product is exact)
        self.table = QuantEmbedding(
            n, d, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=bits,
            weight_scaling_impl_type="const", weight_scaling_const=s_f * 2 ** (bits - 1),
            weight_narrow_range=False,
        )
        with torch.no_grad():
            self.table.weight.copy_(torch.from_numpy(table.astype(np.float32)) * s_f)
        got = float(self.table.quant_weight().scale)
        if got != s_f:
            raise FpgarecError(f"deployment table scale {got} != fuse_quant scale {s_f}")
        self.pool = student.pool
        self.agg_quant = student.agg_quant
        self.transform = student.transform
        self.relu = student.relu
        self.scorer = student.scorer
        self.k = student.shape.k

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        fused = self.table(ids).unsqueeze(2)  # (B, K, 1, D)
        pooled = self.pool(fused.permute(0, 3, 1, 2)).flatten(1)  # (B, D)
        return self.scorer(self.relu(self.transform(self.agg_quant(pooled))))


@torch.no_grad()
def check_deployed(student: QuantStudent, deployed: DeployedStudent, n: int = 256, seed: int = 0) -> None:
    """Raise unless the deployed module's scores equal the student's exactly on ``n`` queries."""
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randint(0, student.shape.n_items, (n, student.shape.k), generator=g)
    a, b = student.eval()(ctx), deployed.eval()(ctx)
    if not torch.equal(a, b):
        raise FpgarecError(
            f"deployment module differs from the student (max |diff| {float((a - b).abs().max()):.3g})"
        )


def export_qonnx(student: QuantStudent, path: Path, metadata: dict | None = None) -> Path:
    """Write the student as a cleaned QONNX file and return its path.

    Graph: ``ids`` (1, K) UINTn -> Gather(Quant(F)) -> Unsqueeze -> Transpose -> GlobalAveragePool
    -> Flatten -> Quant -> Gemm -> Relu -> Quant -> MatMul(Quant(S)^T) -> ``scores`` (1, N).
    ``metadata`` (JSON-able values) is stored as ``fpgarec.<key>`` metadata properties.
    """
    from brevitas.export import export_qonnx as brevitas_export
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    student = student.eval()
    deployed = DeployedStudent(student).eval()
    check_deployed(student, deployed)
    shape = student.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brevitas_export(
            deployed, args=torch.zeros(1, shape.k, dtype=torch.int64), export_path=str(path),
            dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        )
        model = cleanup_model(ModelWrapper(str(path)))
    model.rename_tensor(model.graph.input[0].name, INPUT_NAME)
    model.rename_tensor(model.graph.output[0].name, OUTPUT_NAME)
    model.set_tensor_datatype(INPUT_NAME, DataType[f"UINT{id_bits(shape.n_items)}"])
    alpha = [float(x) for x in student.modality_weights().detach()]
    meta = {
        "score_scale": score_scale(student), "n_items": shape.n_items, "dim": shape.dim,
        "k": shape.k, "weight_bits": shape.weight_bits, "act_bits": shape.act_bits,
        "fusion": "fused-table", "modality_weights": alpha, **(metadata or {}),
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
def integer_scores(student: QuantStudent, ids: np.ndarray, batch: int = 4096) -> np.ndarray:
    """The student's scores as the integers the hardware computes, z = u_int · S_intᵀ.

    u_int = Q_u output / s_u and S_int = Q_w(S) / s_S are the Brevitas quantizers' own integers
    (exact: small integers times a scale), multiplied in int64, so the result is exact at any
    bit width, whereas the float forward s = score_scale · z rounds once |z| passes 2^24.
    Raises if the float forward disagrees with score_scale · z beyond float32 rounding.

    Shapes: ids (B, K) -> (B, N) int64.
    """
    student = student.eval()
    s_u = _act_scale(student.relu)
    qw = student.scorer.quant_weight()
    w_int = torch.round(qw.value / qw.scale).to(torch.int64)  # (N, D)
    scale = score_scale(student)
    out = []
    for start in range(0, len(ids), batch):
        ctx = torch.as_tensor(np.asarray(ids[start:start + batch]), dtype=torch.int64)
        u = student.user_vector(ctx)
        u_int = torch.round(u / s_u).to(torch.int64)
        z = (u_int @ w_int.T).numpy()
        s = student.scorer(u).double().numpy() / scale
        if np.abs(s - z).max(initial=0) > 1e-2 + 1e-5 * np.abs(z).max(initial=0):
            raise FpgarecError("student scores are not integer multiples of score_scale")
        out.append(z)
    return np.concatenate(out) if out else np.zeros((0, student.shape.n_items), np.int64)
