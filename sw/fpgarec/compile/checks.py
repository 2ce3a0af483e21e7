"""Step-by-step verification of the build: every step's model against the previous one.

Each model of the flow is executed with FINN's own numpy execution
(:func:`finn.core.onnx_exec.execute_onnx`) on the same sample queries, one query at a time
(FINN graphs have batch 1). Two things are compared:

- the integer scores, i.e. the tensor that feeds TopK / LabelSelect (the graph output before
  the TopK is inserted). Before streamlining the scores are real numbers ``s = score_scale · z``;
  they are turned into the integers ``z`` with the ``fpgarec.score_scale`` metadata of the export.
  Where float32 cannot hold them exactly (|z| beyond about 2^20, e.g. 8-bit designs) the
  real-valued graphs are compared up to float32 rounding; graphs with integer-typed scores are
  always compared exactly, also against the Brevitas student's integer scores when the build
  started from a student. Only the first ``n_items`` columns are compared (the scoring layer may
  have been padded).
- the top-k item indices, once the graph has a TopK / LabelSelect.

On a mismatch the build stops with :class:`StepCheckError` naming the step and the node: the
first node (in graph order) whose output tensor exists under the same name, shape and datatype
in both models and differs; failing that, the node that produces the scores / top-k.

Specialised layers (``*_hls`` / ``*_rtl``) only run in cppsim / rtlsim, which need Vitis and
Vivado. They are checked through their generic view (:func:`generic_view`): the same graph with
each specialised node turned back into its generic HW op (``MVAU_rtl`` -> ``MVAU``), which keeps
every attribute and parameter and runs in numpy.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.runtime.topk import tie_rule_topk

log = logging.getLogger(__name__)

#: ops that end the query path with a top-k list
TOPK_OPS = ("TopK", "LabelSelect", "LabelSelect_hls", "LabelSelect_rtl")
_GENERIC_DOMAIN = "finn.custom_op.fpgadataflow"


class StepCheckError(FpgarecError):
    """A build step changed the model's results on the sample queries."""

    def __init__(self, step: str, node: str, op_type: str, detail: str):
        self.step, self.node, self.op_type = step, node, op_type
        super().__init__(f"step {step}: output differs from the previous step at node {node} ({op_type}): {detail}")


def sample_queries(n_items: int, k: int, n: int, seed: int = 0, null_id: int | None = None) -> np.ndarray:
    """``n`` random contexts plus tie-heavy ones (all-equal ids, id 0, the last id).

    With ``null_id`` (null padding) every third random context is a cold-start user with
    L ~ U{1..K} real items followed by K - L null ids, and one more context is all null (a query
    without neighbours). Shape (n + 3 [+ 1], K) int64.
    """
    rng = np.random.default_rng(seed)
    rand = rng.integers(0, n_items, size=(n, k))
    special = [np.full(k, rng.integers(0, n_items)), np.zeros(k, np.int64), np.full(k, n_items - 1)]
    if null_id is not None:
        lengths = rng.integers(1, k + 1, size=n)
        cold = (np.arange(n) % 3 == 0)[:, None] & (np.arange(k)[None, :] >= lengths[:, None])
        rand[cold] = null_id
        special.append(np.full(k, null_id))
    return np.concatenate([rand, np.stack(special)]).astype(np.int64)


def pack_meta_words(ctx: np.ndarray, aggregation: dict) -> np.ndarray:
    """(B, K, 3) [id, type, bucket] -> (B, K) meta words id | type << id_bits | bucket <<
    (id_bits + type_bits), the fields of an attention design's ``aggregation`` record."""
    ctx = np.asarray(ctx, np.int64)
    ib, tb = int(aggregation["id_bits"]), int(aggregation["type_bits"])
    return ctx[..., 0] | (ctx[..., 1] << ib) | (ctx[..., 2] << (ib + tb))


def unpack_meta_words(words: np.ndarray, aggregation: dict) -> np.ndarray:
    """Inverse of :func:`pack_meta_words`: (B, K) words -> (B, K, 3)."""
    w = np.asarray(words, np.int64)
    ib, tb, bb = (int(aggregation[f]) for f in ("id_bits", "type_bits", "bucket_bits"))
    return np.stack([w & ((1 << ib) - 1), (w >> ib) & ((1 << tb) - 1), (w >> (ib + tb)) & ((1 << bb) - 1)], -1)


def is_attention(meta: dict) -> bool:
    """Whether a model's metadata / bundle's model info is an attention design (meta-word input)."""
    return (meta.get("aggregation") or {}).get("mode") == "attention"


def sample_inputs(meta: dict, n_items: int, k: int, n: int, seed: int = 0) -> np.ndarray:
    """The design inputs of :func:`sample_queries`: the ids, or for an attention design the meta
    words of those ids with random behaviour types and recency buckets. Shape (Q, K) int64."""
    ids = sample_queries(n_items, k, n, seed, null_id_of(meta))
    if not is_attention(meta):
        return ids
    agg = meta["aggregation"]
    rng = np.random.default_rng(seed + 1)
    types = rng.integers(0, int(agg["n_types"]), ids.shape)
    buckets = rng.integers(0, int(agg["n_buckets"]), ids.shape)
    return pack_meta_words(np.stack([ids, types, buckets], -1), agg)


def null_id_of(meta: dict) -> int | None:
    """The null id of a model's metadata / a bundle's model info (None: cyclic padding)."""
    padding = meta.get("padding") or {}
    return int(padding["null_id"]) if padding.get("scheme") == "null" else None


def generic_view(model):
    """A copy of ``model`` whose ``*_hls`` / ``*_rtl`` nodes are their generic HW ops.

    Specialised FINN ops subclass the generic op and add only implementation attributes, so
    the generic op's numpy ``execute_node`` computes what the hardware computes.
    """
    from qonnx.core.modelwrapper import ModelWrapper

    view = ModelWrapper(copy.deepcopy(model.model))
    for node in view.graph.node:
        if node.domain.startswith(_GENERIC_DOMAIN + ".") and node.op_type.endswith(("_hls", "_rtl")):
            node.op_type = node.op_type.rsplit("_", 1)[0]
            node.domain = _GENERIC_DOMAIN
    return view


def _topk_node(model):
    for node in model.graph.node:
        if node.op_type in TOPK_OPS:
            return node
    return None


def execute(model, ids_row: np.ndarray, seen_row: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """FINN's execution of ``model`` on one query; the full context (every tensor).

    ``ids_row``: shape (K,) or (1, K) int. A second graph input (the top-k layer's seen bitmap,
    ``--exclude-seen``) gets ``seen_row`` ((N,) or (1, N) bool), by default zeros: nothing seen.
    """
    from finn.core.onnx_exec import execute_onnx

    iname = model.graph.input[0].name
    ishape = model.get_tensor_shape(iname)
    feed = {iname: np.asarray(ids_row, dtype=np.int64).reshape(ishape)}
    for extra in model.graph.input[1:]:
        shape = model.get_tensor_shape(extra.name)
        value = np.zeros(shape) if seen_row is None else np.asarray(seen_row).reshape(shape)
        feed[extra.name] = value.astype(np.float32)
    return execute_onnx(model, feed, return_full_exec_context=True)


@dataclass
class Probe:
    """What a model computes on the sample queries."""

    #: exact integer scores (Q, N'), or None when the graph computes real numbers that do not
    #: round cleanly to integers (float32 cannot hold every integer above 2^24)
    scores: np.ndarray | None
    #: scores in integer units as computed (raw / score_scale for real-valued graphs), or None
    #: without a known scale
    approx: np.ndarray | None
    #: real-valued scores (Q, N') as computed
    raw_scores: np.ndarray
    #: top-k indices (Q, k), None before the TopK exists or when the scores are not exact. On
    #: integer-typed graphs this is the graph's own top-k; on real-valued graphs it is the
    #: tie-rule top-k of the recovered integers (float rounding can split integer ties, so a
    #: float TopK is not the reference)
    topk: np.ndarray | None
    #: name of the scores tensor and of the top-k tensor
    scores_name: str
    topk_name: str | None
    #: whether the scores tensor has an integer datatype in the graph
    integer_typed: bool = False
    #: the sample queries (Q, K) (to re-run a failing one when locating a mismatch)
    queries: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.int64))
    #: the graph's top-k differs from the tie rule on these query rows (integer scores only)
    tie_rule_violations: list = field(default_factory=list)
    #: the attention weights (Q, K) int64 of a graph that outputs them (``emit_weights``), else None
    weights: np.ndarray | None = None

    def rows(self, keep: np.ndarray | None) -> Probe:
        """The probe restricted to the query rows where ``keep`` (Q,) bool is true (None: all)."""
        if keep is None:
            return self
        idx = np.flatnonzero(keep)
        remap = {int(old): new for new, old in enumerate(idx)}

        def take(a):
            return None if a is None else a[idx]

        return Probe(take(self.scores), take(self.approx), self.raw_scores[idx], take(self.topk), self.scores_name,
                     self.topk_name, self.integer_typed, self.queries[idx] if len(self.queries) else self.queries,
                     [remap[q] for q in self.tie_rule_violations if q in remap], take(self.weights))


def weights_tensor(model) -> str | None:
    """The name of the attention weights tensor (an AttentionAggregate node's second output, the
    design's weight stream with ``emit_weights``), or None."""
    for node in model.graph.node:
        if node.op_type.startswith("AttentionAggregate") and len(node.output) > 1:
            return node.output[1]
    return None


def probe(model, queries: np.ndarray, score_scale: float | None) -> Probe:
    """Execute ``model`` on every query (``queries`` (Q, K)) and collect scores and top-k."""
    runnable = generic_view(model)
    node = _topk_node(runnable)
    scores_name = node.input[0] if node is not None else runnable.graph.output[0].name
    topk_name = None
    if node is not None:
        topk_name = node.output[1] if node.op_type == "TopK" else node.output[0]
    weights_name = weights_tensor(runnable)
    raw, tops, weights = [], [], []
    for q in queries:
        ctx = execute(runnable, q)
        raw.append(np.asarray(ctx[scores_name], dtype=np.float64).reshape(-1))
        if topk_name is not None:
            tops.append(np.asarray(ctx[topk_name]).reshape(-1).astype(np.int64))
        if weights_name is not None:
            weights.append(np.rint(np.asarray(ctx[weights_name], dtype=np.float64)).reshape(-1).astype(np.int64))
    raw_scores = np.stack(raw)
    integer_typed = runnable.get_tensor_datatype(scores_name).is_integer()
    approx = raw_scores if integer_typed else (raw_scores / score_scale if score_scale else None)
    ints = None
    if approx is not None:
        r = np.rint(approx)
        if np.abs(approx - r).max(initial=0) <= 1e-3:
            ints = r.astype(np.int64)
    topk, violations = (np.stack(tops) if tops else None), []
    if topk is not None:
        if ints is None:
            topk = None
        else:
            rule = tie_rule_topk(ints, topk.shape[1])
            if integer_typed:
                violations = np.flatnonzero((rule != topk).any(axis=1)).tolist()
            else:
                topk = rule
    return Probe(ints, approx, raw_scores, topk, scores_name, topk_name, integer_typed,
                 np.asarray(queries), violations, np.stack(weights) if weights else None)


def _locate(prev_model, new_model, prev: Probe, new: Probe, query: int) -> tuple[str, str]:
    """(node name, op type) of the first node of ``new_model`` whose output differs on sample
    query ``query`` from the same-named tensor of ``prev_model`` (same shape and datatype)."""
    prev_ctx, new_ctx = execute(prev_model, prev.queries[query]), execute(new_model, new.queries[query])
    for node in new_model.graph.node:
        for t in node.output:
            if t not in prev_ctx or t not in new_ctx:
                continue
            a, b = np.asarray(prev_ctx[t]), np.asarray(new_ctx[t])
            if a.shape != b.shape:
                continue
            try:
                same_type = prev_model.get_tensor_datatype(t) == new_model.get_tensor_datatype(t)
            except Exception:  # noqa: BLE001 - a tensor without annotation
                same_type = False
            if same_type and not np.array_equal(a.astype(np.float64), b.astype(np.float64)):
                return node.name or t, node.op_type
    target = new.topk_name if (new.topk_name and prev.topk is not None and new.topk is not None
                               and not np.array_equal(prev.topk, new.topk)) else new.scores_name
    producer = new_model.find_producer(target)
    if producer is None:
        return target, "graph input"
    return producer.name or target, producer.op_type


def approx_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float32 accumulation error: |a - b| <= 1e-2 + 1e-5 · max|a| per row."""
    tol = 1e-2 + 1e-5 * np.abs(a).max(axis=1, keepdims=True)
    return bool((np.abs(a - b) <= tol).all())


def compare(step: str, prev_model, new_model, prev: Probe, new: Probe, n_items: int) -> None:
    """Raise :class:`StepCheckError` unless ``new`` computes what ``prev`` computed.

    Exact integer scores are compared exactly; scores a real-valued graph computes beyond
    float32's exact range are compared up to float32 rounding; top-k lists are compared when
    both sides have exact scores.
    """
    problem, q = None, 0
    if prev.scores is not None and new.scores is not None:
        n = min(n_items, prev.scores.shape[1], new.scores.shape[1])
        bad = np.flatnonzero((prev.scores[:, :n] != new.scores[:, :n]).any(axis=1))
        if len(bad):
            q = int(bad[0])
            col = int(np.flatnonzero(prev.scores[q, :n] != new.scores[q, :n])[0])
            problem = (f"integer scores differ on {len(bad)} of {len(prev.scores)} sample queries "
                       f"(query {q}, item {col}: {prev.scores[q, col]} -> {new.scores[q, col]})")
    elif prev.approx is not None and new.approx is not None:
        n = min(n_items, prev.approx.shape[1], new.approx.shape[1])
        if not approx_equal(prev.approx[:, :n], new.approx[:, :n]):
            q = int(np.argmax(np.abs(prev.approx[:, :n] - new.approx[:, :n]).max(axis=1)))
            problem = "scores differ beyond float32 rounding"
    else:
        n = min(n_items, prev.raw_scores.shape[1], new.raw_scores.shape[1])
        a, b = prev.raw_scores[:, :n], new.raw_scores[:, :n]
        ratio = np.abs(a).max() / max(np.abs(b).max(), 1e-30)
        if not np.allclose(a, b * ratio, rtol=1e-4, atol=1e-6 * np.abs(a).max()):
            problem = "scores differ beyond a common scale"
    if problem is None and new.tie_rule_violations:
        q = new.tie_rule_violations[0]
        node = _topk_node(new_model)
        raise StepCheckError(step, node.name, node.op_type,
                             f"top-k breaks the tie rule on {len(new.tie_rule_violations)} sample queries "
                             f"(query {q}: {new.topk[q].tolist()})")
    if problem is None and prev.topk is not None and new.topk is not None:
        bad = np.flatnonzero((prev.topk != new.topk).any(axis=1))
        if len(bad):
            q = int(bad[0])
            problem = (f"top-k differs on {len(bad)} of {len(prev.topk)} sample queries "
                       f"(query {q}: {prev.topk[q].tolist()} -> {new.topk[q].tolist()})")
    if problem is None and (prev.weights is None) != (new.weights is None):
        problem = "the attention weights output " + ("disappeared" if new.weights is None else "appeared")
    if problem is None and prev.weights is not None:
        bad = np.flatnonzero((prev.weights != new.weights).any(axis=1))
        if len(bad):
            q = int(bad[0])
            problem = (f"attention weights differ on {len(bad)} of {len(prev.weights)} sample queries "
                       f"(query {q}: {prev.weights[q].tolist()} -> {new.weights[q].tolist()})")
    if problem is not None:
        node, op = _locate(generic_view(prev_model), generic_view(new_model), prev, new, q)
        raise StepCheckError(step, node, op, problem)


def compare_reference(step: str, model, probe_: Probe, reference: np.ndarray, n_items: int) -> None:
    """Exact check of a probe with exact scores against reference integer scores (Q, N) (the
    Brevitas student's), and of its top-k against the tie rule applied to them."""
    if probe_.scores is None:
        return
    n = min(n_items, reference.shape[1])
    bad = np.flatnonzero((probe_.scores[:, :n] != reference[:, :n]).any(axis=1))
    node = _topk_node(model) or model.find_producer(probe_.scores_name)
    where = (node.name, node.op_type) if node is not None else (probe_.scores_name, "output")
    if len(bad):
        raise StepCheckError(step, *where, f"integer scores differ from the Brevitas student on {len(bad)} "
                                            f"of {len(reference)} sample queries")
    if probe_.topk is not None:
        want = tie_rule_topk(reference[:, :n], probe_.topk.shape[1])
        bad = np.flatnonzero((probe_.topk != want).any(axis=1))
        if len(bad):
            raise StepCheckError(step, *where, f"top-k differs from the Brevitas student's on {len(bad)} "
                                                f"of {len(reference)} sample queries")
