"""Integer thresholds that round exactly as the student does, ties included.

FINN turns each activation quantizer into thresholds: ``ConvertQONNXtoFINN`` writes
T_k = (k - 1/2) s in float32, streamlining divides and shifts them by the scales and biases
before it (float32 again) and rounds them up to integers for the integer input. Two things go
wrong at a rounding boundary, where the exact value v = (a x + b) / s is a half-integer or
within float32 error of one:

- a threshold x >= T rounds a tie *up*; Brevitas' ``torch.round`` rounds it to the even neighbour;
- the float32 chain can land on either side of an integer threshold (the multimodal test hit
  m_int = 91, a = s_f 2^-P, s = s_a with s_a / a = 13.9999996: exact v = 6.50000019 -> 7, while
  Brevitas' float32 forward saw exactly 6.5 -> 6).

This module recomputes them from the exact scales (float32 values are exact rationals) with
``fractions.Fraction``. For a quantizer q(x) = clamp(round_half_even((a x + b) / s), q_min, q_max)
of an integer x, with a > 0, output level k (q_min < k <= q_max) is reached exactly when

    a x + b > (k - 1/2) s,   or   a x + b = (k - 1/2) s and k is even,

so with t_k = ((k - 1/2) s - b) / a the threshold is θ_k = ceil(t_k) for even k and
floor(t_k) + 1 for odd k (they differ only when t_k is an integer: the tie). MultiThreshold
computes q = q_min + #{k : x >= θ_k}. The student's ``exact`` forward
(:meth:`fpgarec.models.student.QuantStudent.user_vector`) computes the same rounding, so
emulation, FINN and the student agree bit for bit.

The exported QONNX carries the scales as metadata ``fpgarec.quantizers`` (written by
:func:`fpgarec.compile.export.export_qonnx`):

    {"agg":  {"in_scale": [a], "bias": [0.0], "scale": s_a, ...},          input m_int (B, D)
     "relu": {"in_scale": [s_a, s_w], "bias": [β_1..β_D], "scale": s_u, ...}}  input W_int q (B, D)

``in_scale`` lists factors whose exact product is a.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction

import numpy as np

from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

#: which quantizer feeds from which producer op in the streamlined graph
PRODUCERS = {"agg": ("NeighborAggregate", "AttentionAggregate"), "relu": ("MatMul", "MVAU")}


def level_threshold(k: int, a: Fraction, b: Fraction, s: Fraction) -> int:
    """θ_k: the smallest integer x with round_half_even((a x + b) / s) >= k, for a > 0."""
    t = ((Fraction(2 * k - 1, 2)) * s - b) / a
    if t.denominator == 1 and k % 2 != 0:  # a tie that rounds down to the even k - 1
        return int(t) + 1
    return math.ceil(t)


def exact_thresholds(in_scale: list[float], bias: list[float], scale: float, q_min: int,
                     n_thresholds: int) -> np.ndarray:
    """Thresholds (C, n_thresholds) int64 of levels q_min + 1 .. q_min + n_thresholds, one row
    per bias entry C (a per-tensor quantizer has one row)."""
    a = Fraction(1)
    for factor in in_scale:
        a *= Fraction(float(factor))
    if a <= 0:
        raise FpgarecError(f"quantizer input scale must be positive, got {float(a)}")
    s = Fraction(float(scale))
    return np.array([[level_threshold(q_min + 1 + t, a, Fraction(float(beta)), s) for t in range(n_thresholds)]
                     for beta in bias], dtype=np.int64)


def _quantizer_of(model, node) -> str | None:
    producer = model.find_producer(node.input[0])
    if producer is None:
        return None
    for name, ops in PRODUCERS.items():
        if producer.op_type in ops:
            return name
    return None


def apply(model, quantizers: dict | None):
    """Replace the thresholds of the MultiThreshold nodes fed by the aggregation (``agg``) and by
    the transform's MatMul (``relu``) with :func:`exact_thresholds`. Returns (model, changes):
    the number of thresholds that moved. Every moved threshold may move by at most 1 (a tie or a
    float32 rounding); a larger move means the graph does not compute what the metadata says,
    and raises. Without metadata (a foreign QONNX file) the thresholds stay as FINN made them."""
    from qonnx.custom_op.registry import getCustomOp

    if not quantizers:
        log.warning("no fpgarec.quantizers metadata: thresholds stay as FINN computed them in float32 "
                    "(rounding ties are not guaranteed to match the source model)")
        return model, 0
    changes, seen = 0, set()
    for node in model.graph.node:
        if node.op_type != "MultiThreshold":
            continue
        name = _quantizer_of(model, node)
        if name is None or name not in quantizers:
            continue
        if name in seen:
            raise FpgarecError(f"two MultiThreshold nodes fed by the {name} path; cannot place exact thresholds")
        seen.add(name)
        q = quantizers[name]
        inst = getCustomOp(node)
        old = model.get_initializer(node.input[1])
        if old is None:
            raise FpgarecError(f"{node.name}: thresholds are not a constant")
        q_min = int(inst.get_nodeattr("out_bias"))
        new = exact_thresholds(q["in_scale"], q["bias"], q["scale"], q_min, old.shape[1])
        if new.shape[0] == 1 and old.shape[0] > 1:
            new = np.repeat(new, old.shape[0], axis=0)
        if new.shape != old.shape:
            raise FpgarecError(f"{node.name}: {name} thresholds have shape {old.shape}, the metadata gives {new.shape}")
        idt = model.get_tensor_datatype(node.input[0])
        if idt.is_integer():  # as FINN's RoundAndClipThresholds: [min, max + 1] of the input
            new = np.clip(new, int(idt.min()), int(idt.max()) + 1)
        if np.abs(new).max(initial=0) > 2**24:
            raise FpgarecError(f"{node.name}: {name} thresholds beyond 2^24 do not fit the float32 container exactly")
        moved = np.abs(new - old)
        if moved.max(initial=0) > 1:
            c, t = np.unravel_index(int(np.argmax(moved)), moved.shape)
            raise FpgarecError(f"{node.name}: exact {name} threshold [{c}, {t}] is {new[c, t]}, FINN computed "
                               f"{old[c, t]:g}: the graph does not match its quantizer metadata")
        n_moved = int((moved > 0).sum())
        changes += n_moved
        model.set_initializer(node.input[1], new.astype(old.dtype))
        log.info("%s (%s): %d of %d thresholds corrected to exact half-to-even rounding",
                 node.name, name, n_moved, new.size)
    missing = set(quantizers) - seen
    if missing:
        raise FpgarecError(f"no MultiThreshold for the {', '.join(sorted(missing))} quantizer in the streamlined graph")
    return model, changes


def near_tie_queries(student, queries: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Which queries (Q, K) (or the attention's (Q, K, 3)) bring a quantizer's exact input v = (a x + b) / s within ``tol``
    steps of a rounding boundary k + 1/2 inside its output range, for either quantizer. Float32
    graphs (the QONNX export and FINN's steps before the exact thresholds) may round those
    either way; every other query they must compute exactly. Shape (Q,) bool."""
    import torch

    from fpgarec.compile.export import aggregated_integers, quantizer_metadata

    meta = quantizer_metadata(student)
    student = student.eval()

    def near(v: np.ndarray, name: str) -> np.ndarray:
        """Rows with a v near k + 1/2 inside the output range (a boundary the clamp keeps)."""
        q = meta[name]
        bits, signed, narrow = q["bits"], q["signed"], q["narrow"]
        q_min = -(1 << (bits - 1)) + int(narrow) if signed else 0
        q_max = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        inside = (v > q_min) & (v < q_max)
        return ((np.abs(v - np.floor(v) - 0.5) < tol) & inside).any(axis=1)

    def scale_of(name: str) -> tuple[float, float]:
        a = 1.0
        for factor in meta[name]["in_scale"]:
            a *= factor
        return a, meta[name]["scale"]

    with torch.no_grad():
        ctx = torch.as_tensor(np.asarray(queries), dtype=torch.int64)
        m_int = aggregated_integers(student, ctx).double().numpy()
        a, s = scale_of("agg")
        q_int = np.rint(student.agg_quant(student.mean_feature(ctx)).numpy() / s)
        qw = student.transform.quant_weight()
        w_int = np.rint((qw.value / qw.scale).double().numpy())
    a2, s2 = scale_of("relu")
    acc = q_int @ w_int.T
    return near(m_int * a / s, "agg") | near((acc * a2 + np.asarray(meta["relu"]["bias"])) / s2, "relu")
