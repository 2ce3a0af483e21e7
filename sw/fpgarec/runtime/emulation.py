"""Bit-exact CPU emulation of a compiled design, in vectorised integer numpy.

The bundle lists the HW layers in stream order with the tensors they read and write (a DAG:
the ids fan out to the lookups and the aggregation kernel); each is executed for a whole batch
at once with the semantics of FINN's numpy execution of the same layer (``execute_node`` of the
generic op), which the hardware implements:

- ``DuplicateStreams``: every output = the input
- ``Lookup``:          y[b, k, :] = T[ids[b, k], :]
- ``ModalityFusion``, ``NeighborAggregate`` (any op of kernels/registry.py with an
                       ``emulate`` entry): the kernels' golden models (kernels/*/golden.py,
                       numpy only, the same functions FINN executes)
- ``Unsqueeze`` / ``Squeeze`` / ``Reshape``: the same values in the layer's output shape
- ``GlobalAccPool``:   y[b, c] = Σ_{h,w} x[b, h, w, c]                 (NHWC, the sum over K)
- ``Thresholding``:    y[b, c] = #{j : x[b, c] >= Θ[c, j]} + ActVal   (FINN's MultiThreshold)
- ``MVAU``:            y = x W  (W of shape (MW, MH)), then thresholds as above unless
                       ``noActivation``
- ``LabelSelect``:     the K indices of the largest y, equal values ordered by lower index
                       (the project's tie rule, same as ONNX TopK in FINN's execution)

Exactness. Integer products are computed with float BLAS where that is exact: every partial
sum of ``x W`` is bounded by B = max|x| · max_j Σ_i |W_ij|, and float32 (float64) represents
every integer up to 2^24 (2^53), so float32 is used when B < 2^24, float64 when B < 2^53 and
int64 otherwise (:func:`fpgarec.runtime.topk.exact_dtype`). Thresholds are tabulated per
channel over the input's integer range (one gather per element), or for wide ranges counted
with one ``searchsorted`` over all channels (each channel's sorted thresholds shifted into its
own disjoint range). Top-k uses the unique key ``score · N + (N - 1 - i)``, larger is better,
so ties need no special case (:func:`fpgarec.runtime.topk.tie_rule_topk`). numpy 1.x and 2.x
alike (a PYNQ image has numpy 1.x).

Fast path. The fusion is elementwise per item, so when the lookups of one id stream feed only
the fusion, the fused table F[i] = fuse(T_id[i], T_txt[i]) is computed once for all N + 1 ids;
a mean/sum aggregation over F then is one gather-and-sum Σ_k F[ids[:, k]] (the null row of F
is 0, so padding adds nothing) followed by the golden model's reciprocal multiplication with
n = #{k : ids[:, k] != null}. Bundles from before the kernels (Lookup -> GlobalAccPool) keep
their own gather-and-sum. Tests check the fast paths against layer-by-layer execution.

This module imports numpy and nothing heavier (it runs on a PYNQ board's CPU too).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np
from kernels.modality_fusion import golden as fusion_golden
from kernels.neighbor_aggregate import golden as aggregate_golden

from fpgarec.runtime.bundle import Bundle, BundleError, datatype_range, load_bundle
from fpgarec.runtime.topk import exact_dtype, select_unseen, tie_rule_topk
from kernels import registry

log = logging.getLogger(__name__)

class _Thresholds:
    """FINN MultiThreshold on the last axis: y = #{j : x >= Θ[c, j]} + bias.

    For integer inputs of a small range [lo, hi] the counts are tabulated once
    (``lut[c, x - lo]``, one gather per element); otherwise they are found with one
    ``searchsorted`` over all channels, each channel's sorted thresholds shifted into a disjoint
    range. ``count(x >= Θ_j) = searchsorted(sort(Θ), x, side="right")`` whatever the order of Θ.
    """

    #: largest table (channels x input values) built for the tabulated path
    MAX_TABLE = 1 << 22

    def __init__(self, thresholds: np.ndarray, bias: float, in_range: tuple[int, int]):
        thr = np.sort(np.asarray(thresholds, dtype=np.float64), axis=1)
        self.channels, self.steps = thr.shape
        self.bias = bias
        lo, hi = int(in_range[0]), int(in_range[1])
        self.lo = lo
        self.lut = None
        if (hi - lo + 1) * self.channels <= self.MAX_TABLE:
            xs = np.arange(lo, hi + 1, dtype=np.float64)
            counts = np.stack([np.searchsorted(t, xs, side="right") for t in thr])  # (C, R)
            self.width = hi - lo + 1
            self.lut = (counts + bias).astype(np.float32).ravel()
            self.base = (np.arange(self.channels) * self.width - lo).astype(np.int64)
            return
        # searchsorted over disjoint per-channel ranges (exact in float64 below 2^53)
        span = max(float(thr.max()), hi) - min(float(thr.min()), lo) + 2
        self.offset = np.arange(self.channels) * span
        self.flat = (thr + self.offset[:, None]).ravel()
        self.clip = (min(float(thr.min()), lo) - 1, max(float(thr.max()), hi) + 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (..., C) integer-valued -> (..., C) float32."""
        if self.lut is not None:
            idx = x.astype(np.int64) + (self.base if self.channels > 1 else -self.lo)
            return self.lut[idx]
        xs = np.clip(x, *self.clip).astype(np.float64)
        if self.channels > 1:
            count = np.searchsorted(self.flat, xs + self.offset, side="right") - np.arange(self.channels) * self.steps
        else:
            count = np.searchsorted(self.flat, xs, side="right")
        return (count + self.bias).astype(np.float32)


class EmulationBackend:
    """Executes a bundle's HW layers on the CPU.

    ``run(ids)`` -> top-k item ids (B, k); ``scores(ids)`` -> the integer scores (B, N) of the
    real items (padding removed); ``run_with_scores`` both; ``run_with_weights`` the top-k and the
    attention weights (B, K) of a design with the weight stream (``emit_weights``). ``ids``: (B, K) integers in [0, N).
    ``threads``: threads for the top-k stage of batches of at least 2 · ``min_chunk`` queries
    (default: the CPU count, at most 4); results do not depend on it.

    The layers are compiled once into a plan of numpy functions. A Lookup followed (through
    shape-only layers) by a GlobalAccPool becomes one gather-and-sum, Σ_k T[ids[:, k]], which
    never materialises the (B, K, D) lookup output.
    """

    name = "emulation"

    def __init__(self, bundle: Bundle | Path | str, threads: int | None = None, min_chunk: int = 128):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.threads = max(1, int(threads if threads is not None else min(4, os.cpu_count() or 1)))
        self.min_chunk = int(min_chunk)
        self._executor = None
        m = self.bundle.manifest
        self.n_items = int(m["model"]["n_items"])
        self.k_neighbours = int(m["model"]["k"])
        self.top_k = int(m["model"]["top_k"])
        self.layers = _with_connections(m["layers"])
        if not self.layers or self.layers[-1]["op"] != "LabelSelect":
            raise BundleError(f"{self.bundle.root}: the emulation expects layers ending in a LabelSelect")
        self.input_name = self.layers[0]["inputs"][0]
        #: (function, input tensor names, output tensor names) in stream order
        self._plan: list[tuple] = []
        self._score_step = None
        self._compile_plan(fast=True)

    def _compile_plan(self, fast: bool) -> None:
        """Compile the layers into the plan; ``fast`` enables the fused fast paths."""
        self._plan, layers, done = [], self.layers, set()
        producer = {o: layer for layer in layers for o in layer["outputs"]}
        consumers: dict[str, list[dict]] = {}
        for layer in layers:
            for i in layer["inputs"]:
                consumers.setdefault(i, []).append(layer)
        for layer in layers:
            if layer["name"] in done:
                continue
            if fast and layer["op"] == "Lookup":
                step = self._fast_gather_sum(layer, producer, consumers, done)
                if step is not None:
                    self._plan.append(step)
                    continue
            if layer["op"] == "LabelSelect":
                self._score_step = len(self._plan)
            self._plan.append((self._compile(layer), layer["inputs"], layer["outputs"]))
            done.add(layer["name"])

    def _fast_gather_sum(self, lookup: dict, producer: dict, consumers: dict, done: set):
        """A plan step for Lookup (-> shape-only layers) -> GlobalAccPool, or for the lookups
        -> ModalityFusion -> NeighborAggregate(sum/mean) pattern; None if neither applies."""
        follow = lookup
        while True:
            nxt = consumers.get(follow["outputs"][0], [])
            if len(nxt) == 1 and nxt[0]["op"] in ("Unsqueeze", "Squeeze", "Reshape"):
                follow = nxt[0]
                continue
            break
        if len(nxt) == 1 and nxt[0]["op"] == "GlobalAccPool":
            pool = nxt[0]
            chain = [lookup["name"]] + [name for name in _chain_names(lookup, pool, consumers)] + [pool["name"]]
            done.update(chain)
            return (self._gather_sum(lookup, pool), lookup["inputs"], pool["outputs"])
        if len(nxt) != 1 or nxt[0]["op"] != "ModalityFusion":
            return None
        fusion = nxt[0]
        lookups = [producer.get(i) for i in fusion["inputs"]]
        if any(lk is None or lk["op"] != "Lookup" for lk in lookups):
            return None
        sources = {self._stream_source(lk["inputs"][0], producer) for lk in lookups}
        agg = consumers.get(fusion["outputs"][0], [])
        if len(sources) != 1 or len(agg) != 1 or agg[0]["op"] != "NeighborAggregate":
            return None
        agg = agg[0]
        p = aggregate_golden.params_from_attrs(lambda a: agg["attrs"][a])
        if p.mode == "max" or self._stream_source(agg["inputs"][1], producer) not in sources:
            return None
        fp = fusion_golden.params_from_attrs(lambda a: fusion["attrs"][a])
        tables = [self.bundle.array(lk["params"]["table"]).astype(np.int64) for lk in lookups]
        fused = fusion_golden.fuse(fp, np.stack(tables))  # (N + 1, D)
        if p.null_id >= len(fused) or np.any(fused[p.null_id] != 0):
            return None
        done.update([lk["name"] for lk in lookups] + [fusion["name"], agg["name"]])
        return (self._fused_mean(fused, p), [sources.pop()], agg["outputs"])

    @staticmethod
    def _stream_source(name: str, producer: dict) -> str:
        """The tensor a stream was duplicated from (through DuplicateStreams layers)."""
        while name in producer and producer[name]["op"] == "DuplicateStreams":
            name = producer[name]["inputs"][0]
        return name

    def _fused_mean(self, fused: np.ndarray, p):
        bound = float(np.abs(fused).max(initial=0)) * p.k
        table = fused.astype(exact_dtype(bound))

        def fused_mean(ids):
            acc = table[ids[:, 0]].copy()
            for j in range(1, ids.shape[1]):
                acc += table[ids[:, j]]
            return aggregate_golden.finish(p, acc.astype(np.int64), aggregate_golden.count_neighbours(p, ids))

        return fused_mean

    # ------------------------------------------------------------------ layer compilation
    def _gather_sum(self, lookup: dict, pool: dict):
        table = self.bundle.array(lookup["params"]["table"])
        bound = float(np.abs(table).max(initial=0)) * self.k_neighbours
        t = table.astype(exact_dtype(bound))
        out_shape = tuple(pool["out_shape"][1:])

        def gather_sum(ids):
            acc = t[ids[:, 0]]
            for j in range(1, ids.shape[1]):
                acc += t[ids[:, j]]
            return acc.reshape((len(ids),) + out_shape)

        return gather_sum

    def _compile(self, layer: dict):
        op, attrs, p = layer["op"], layer.get("attrs", {}), layer.get("params", {})
        arr = self.bundle.array
        out_shape = tuple(layer["out_shape"][1:])
        where = f"{self.bundle.root}: layer {layer['name']}"
        if op == "DuplicateStreams":
            n_out = len(layer["outputs"])
            return lambda x: (x,) * n_out
        kernel_fn = registry.emulator(op, attrs)  # a kernel's golden model (kernels/registry.py)
        if kernel_fn is not None:
            return kernel_fn
        if op == "Lookup":
            table = arr(p["table"])
            t = table.astype(exact_dtype(float(np.abs(table).max(initial=0))))
            mask = (1 << int(attrs["IdBits"])) - 1 if attrs.get("IdBits") else -1  # the id field of meta words
            return lambda x: t[np.bitwise_and(x, mask)].reshape((len(x),) + out_shape)
        if op in ("Unsqueeze", "Squeeze", "Reshape"):
            return lambda x: x.reshape((len(x),) + out_shape)
        if op == "GlobalAccPool":
            return lambda x: x.reshape(len(x), -1, x.shape[-1]).sum(axis=1).reshape((len(x),) + out_shape)
        if op == "Thresholding":
            th = _Thresholds(arr(p["thresholds"]), float(attrs.get("ActVal", 0)), datatype_range(layer["in_dtype"]))
            return lambda x: th(x).reshape((len(x),) + out_shape)
        if op == "MVAU":
            if int(attrs.get("binaryXnorMode", 0)):
                raise BundleError(f"{where}: binary XNOR MVAU is not supported by the emulation")
            w = arr(p["weights"]).astype(np.int64)
            lo, hi = datatype_range(layer["in_dtype"])
            bound = max(abs(lo), abs(hi)) * int(np.abs(w).sum(axis=0).max(initial=0))
            mm_dtype = exact_dtype(bound)
            wm = w.astype(mm_dtype)
            th = None
            if not int(attrs.get("noActivation", 1)):
                th = _Thresholds(arr(p["thresholds"]), float(attrs.get("ActVal", 0)), (-bound, bound))

            def mvau(x):
                y = x.reshape(len(x), -1).astype(mm_dtype, copy=False) @ wm
                if th is not None:
                    y = th(y)
                return y.reshape((len(x),) + out_shape)

            return mvau
        if op == "LabelSelect":
            k = int(attrs["K"])
            lo, hi = datatype_range(layer["in_dtype"])
            bound = max(abs(lo), abs(hi))
            if int(attrs.get("SeenMode", 0)) == 2:
                return functools.partial(select_unseen, k=k, n_valid=self.n_items, low=lo - 1, max_abs=bound + 1)
            return lambda x: tie_rule_topk(x.reshape(len(x), -1), k, max_abs=bound, overwrite=True)
        raise BundleError(f"{where}: op {op} is not supported by the emulation")

    def with_layer_attrs(self, op: str, **attrs) -> EmulationBackend:
        """A copy of this backend whose (single) ``op`` layer has ``attrs`` replaced, e.g.
        ``with_layer_attrs("ModalityFusion", Weights=[0, 446])``: what the design computes with
        other kernel weights (explanations and their tests). The bundle is not modified."""
        import copy

        hits = [i for i, layer in enumerate(self.layers) if layer["op"] == op]
        if len(hits) != 1:
            raise BundleError(f"{self.bundle.root}: expected one {op} layer, found {len(hits)}")
        other = copy.copy(self)
        other.layers = list(self.layers)
        layer = self.layers[hits[0]]
        other.layers[hits[0]] = {**layer, "attrs": {**layer.get("attrs", {}), **attrs}}
        other._executor = None
        other._compile_plan(fast=True)
        return other

    def layer_attrs(self, op: str) -> dict:
        """The attributes of the (single) ``op`` layer, e.g. the fusion kernel's weights."""
        hits = [layer for layer in self.layers if layer["op"] == op]
        if len(hits) != 1:
            raise BundleError(f"{self.bundle.root}: expected one {op} layer, found {len(hits)}")
        return dict(hits[0].get("attrs", {}))

    # ---------------------------------------------------------------------------- running
    def _check_ids(self, ids: np.ndarray) -> np.ndarray:
        ids = self.bundle.check_ids(ids)
        return ids.astype(np.intp, copy=False)

    def _run_steps(self, steps, tensors: dict) -> dict:
        for fn, ins, outs in steps:
            out = fn(*(tensors[i] for i in ins))
            if len(outs) == 1:
                tensors[outs[0]] = out
            else:
                tensors.update(zip(outs, out, strict=True))
        return tensors

    def _scores_raw(self, ids: np.ndarray) -> np.ndarray:
        tensors = self._run_steps(self._plan[: self._score_step], {self.input_name: self._check_ids(ids)})
        return tensors[self._plan[self._score_step][1][0]]

    @property
    def seen_input(self) -> str | None:
        """The name of the design's seen-items bitmap input (``SeenMode`` 2), or None."""
        inputs = self._plan[-1][1]
        return inputs[1] if len(inputs) > 1 else None

    def seen_bitmap(self, ids: np.ndarray, seen=None) -> np.ndarray | None:
        """The (B, N labels) bool bitmap the top-k kernel reads: ``seen`` if given (a (B, N) or
        (B, n_items) bool array), else the query's own context ids; None for designs without
        a seen input."""
        if self.seen_input is None:
            return None
        n_labels = int(self.layers[-1]["attrs"]["Labels"])
        if seen is not None:
            seen = np.asarray(seen, dtype=bool)
            if seen.ndim != 2 or len(seen) != len(ids) or seen.shape[1] not in (self.n_items, n_labels):
                raise BundleError(f"seen bitmap of shape {seen.shape}: expected ({len(ids)}, {self.n_items})")
            out = np.zeros((len(ids), n_labels), dtype=bool)
            out[:, : seen.shape[1]] = seen
            return out
        ids = self.bundle.item_ids(ids)  # an attention design's meta words: their id field
        out = np.zeros((len(ids), n_labels + 1), dtype=bool)
        np.put_along_axis(out, np.minimum(ids, n_labels), True, axis=1)
        return out[:, :n_labels]

    def select_from_scores(self, scores: np.ndarray, ids: np.ndarray, seen=None) -> np.ndarray:
        """The design's top-k stage applied to other integer scores of the real items (FINN's,
        Brevitas'), with the same seen rule as :meth:`run`. Shapes: scores (B, n_items), ids
        (B, K) -> (B, top_k) int64."""
        scores = np.asarray(scores, dtype=np.float64)
        n_labels = int(self.layers[-1]["attrs"]["Labels"])
        full = np.full((len(scores), n_labels), float(scores.min(initial=0)) - 1.0)
        full[:, : scores.shape[1]] = scores
        return self._select(full, self.seen_bitmap(np.asarray(ids), seen))

    def _select(self, scores: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
        tensors = {self._plan[self._score_step][1][0]: scores}
        if seen is not None:
            tensors[self.seen_input] = seen
        tensors = self._run_steps(self._plan[self._score_step:], tensors)
        y = tensors[self._plan[-1][2][0]]
        return y.reshape(len(y), -1).astype(np.int64)

    def _select_parallel(self, scores: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
        """The top-k stage over row slices in parallel threads (it is single-threaded numpy;
        the matrix products before it already use every core through BLAS)."""
        n = self.threads if len(scores) >= 2 * self.min_chunk else 1
        if n <= 1:
            return self._select(scores, seen)
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=self.threads)
        parts = np.array_split(np.arange(len(scores)), n)
        return np.concatenate(list(self._executor.map(
            lambda r: self._select(scores[r], None if seen is None else seen[r]), parts)))

    def run(self, ids: np.ndarray, seen=None) -> np.ndarray:
        """Top-k item ids per query. Shapes: (B, K) -> (B, top_k) int64. ``seen``: a design
        with a seen-items input excludes these items ((B, n_items) bool; default: the query's
        context ids); slots left empty hold N (the label count)."""
        return self._select_parallel(self._scores_raw(ids), self.seen_bitmap(ids, seen))

    def scores(self, ids: np.ndarray) -> np.ndarray:
        """Integer scores of the real items. Shapes: (B, K) -> (B, N) int64."""
        s = self._scores_raw(ids)
        return s.reshape(len(s), -1)[:, : self.n_items].astype(np.int64)

    def run_with_scores(self, ids: np.ndarray, seen=None) -> tuple[np.ndarray, np.ndarray]:
        """(top-k (B, top_k), integer scores of the real items (B, N)) from one pass."""
        s = self._scores_raw(ids)
        scores = s.reshape(len(s), -1)[:, : self.n_items].astype(np.int64)
        return self._select_parallel(s, self.seen_bitmap(ids, seen)), scores

    @property
    def weights_output(self) -> str | None:
        """The tensor of the design's weight stream (the AttentionAggregate layer's second
        output, a bundle built with ``emit_weights``), or None."""
        for layer in self.layers:
            if layer["op"] == "AttentionAggregate" and len(layer["outputs"]) > 1:
                return layer["outputs"][1]
        return None

    def run_with_weights(self, ids: np.ndarray, seen=None) -> tuple[np.ndarray, np.ndarray]:
        """(top-k (B, top_k) int64, attention weights (B, K) int64) from one pass, what the design's
        two output streams carry. Weights: a_j ≈ 2^W · softmax_j(s_l · l_j) over the real slots,
        integers 0..2^W (W = the layer's ``WeightBits``), in slot order, 0 on padding slots and for
        an all-padding query (kernels/attention_aggregate golden.attend). ``seen`` as :meth:`run`.
        Raises :class:`BundleError` for a bundle built without the weight stream."""
        name = self.weights_output
        if name is None:
            raise BundleError(f"{self.bundle.root}: the design has no attention weight output "
                              "(build an attention student with `fpgarec build --emit-weights`)")
        tensors = self._run_steps(self._plan[: self._score_step], {self.input_name: self._check_ids(ids)})
        if name not in tensors:  # a fast path of the plan skipped the layer (none does for the attention)
            raise BundleError(f"{self.bundle.root}: the emulation plan does not compute {name}")
        s, w = tensors[self._plan[self._score_step][1][0]], tensors[name]
        top = self._select_parallel(s, self.seen_bitmap(ids, seen))
        return top, np.asarray(w).reshape(len(w), -1).astype(np.int64)


def _with_connections(layers: list[dict]) -> list[dict]:
    """Layers with ``inputs``/``outputs`` tensor names; bundles written before the layers
    carried them are a chain (layer i reads t{i}, writes t{i+1})."""
    if all("inputs" in layer and "outputs" in layer for layer in layers):
        return layers
    return [{**layer, "inputs": [f"t{i}"], "outputs": [f"t{i + 1}"]} for i, layer in enumerate(layers)]


def _chain_names(first: dict, last: dict, consumers: dict) -> list[str]:
    """Names of the layers strictly between ``first`` and ``last`` in a single-consumer chain."""
    names, layer = [], consumers[first["outputs"][0]][0]
    while layer is not last:
        names.append(layer["name"])
        layer = consumers[layer["outputs"][0]][0]
    return names
