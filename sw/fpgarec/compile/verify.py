"""Bit-exactness across the three executions of a design, on many queries.

- ``emulation``: :class:`fpgarec.runtime.emulation.EmulationBackend` (numpy, the bundle);
- ``finn``: FINN's own numpy execution (:func:`finn.core.onnx_exec.execute_onnx`) of the
  bundle's ``model/dataflow.onnx`` (specialised layers through their generic view), one query
  at a time — :class:`FinnBackend`, kept for verification (it needs finn, so it lives here and
  not in the numpy-only runtime);
- ``brevitas``: the trained student's forward, its scores divided by ``score_scale`` (integers)
  and ranked with the tie rule.

:func:`compare` counts queries whose integer scores or top-k lists differ.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from fpgarec.compile import checks
from fpgarec.runtime.bundle import Bundle, BundleError, load_bundle
from fpgarec.runtime.emulation import EmulationBackend
from fpgarec.runtime.topk import tie_rule_topk

log = logging.getLogger(__name__)


class FinnBackend:
    """FINN's execution of a bundle's HW-layer graph. ``run_with_scores(ids)`` like the emulation."""

    name = "finn"

    def __init__(self, bundle: Bundle | Path | str):
        from qonnx.core.modelwrapper import ModelWrapper

        from fpgarec.compile._finn import register_kernels

        register_kernels()
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.model = checks.generic_view(ModelWrapper(str(self.bundle.root / "model" / "dataflow.onnx")))
        self.n_items = int(self.bundle.manifest["model"]["n_items"])
        node = checks._topk_node(self.model)
        self.scores_name, self.topk_name = node.input[0], node.output[0]
        #: the attention weights tensor of a design with the weight stream (``emit_weights``), or None
        self.weights_name = checks.weights_tensor(self.model)
        #: the graph has the top-k layer's seen bitmap input (bundles built with --exclude-seen
        #: before it was part of FINN's graph have not)
        self.has_seen_input = len(self.model.graph.input) > 1

    def run_with_scores(self, ids: np.ndarray, workers: int = 1, seen: np.ndarray | None = None,
                        progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(top-k (B, k), integer scores (B, N)); see :meth:`run_all`."""
        return self.run_all(ids, workers, seen, progress)[:2]

    def run_all(self, ids: np.ndarray, workers: int = 1, seen: np.ndarray | None = None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(top-k (B, k), integer scores (B, N), attention weights (B, K) or None for a design
        without the weight stream). Shapes: ids (B, K); ``seen`` (B, N labels) bool, the bitmap
        of a graph with a seen input (None: nothing seen).

        ``workers`` > 1 spreads the queries over that many processes (FINN runs one query at a
        time, about 10 ms each for the demo design). ``progress``: a bar over the queries (shown
        on a terminal only).
        """
        from tqdm.auto import tqdm

        ids = np.asarray(ids)
        bar = tqdm(total=len(ids), desc="FINN execution", unit="query", disable=None if progress else True)
        if workers > 1 and len(ids) >= 2 * workers:
            import multiprocessing as mp

            parts = np.array_split(np.arange(len(ids)), max(workers, len(ids) // 50))  # ~50 queries a chunk
            chunks = [(ids[p], None if seen is None else np.asarray(seen)[p]) for p in parts]
            ctx = mp.get_context("spawn")
            done = []
            with ctx.Pool(workers, initializer=_worker_init, initargs=(str(self.bundle.root),)) as pool:
                for part in pool.imap(_worker_run, chunks):  # in order
                    done.append(part)
                    bar.update(len(part[0]))
            bar.close()
            weights = None if done[0][2] is None else np.concatenate([p[2] for p in done])
            return np.concatenate([p[0] for p in done]), np.concatenate([p[1] for p in done]), weights
        tops, scores, weights = [], [], []
        for i, row in enumerate(ids):
            ctx = checks.execute(self.model, row, None if seen is None else np.asarray(seen)[i])
            tops.append(np.asarray(ctx[self.topk_name]).reshape(-1))
            scores.append(np.asarray(ctx[self.scores_name]).reshape(-1)[: self.n_items])
            if self.weights_name is not None:
                weights.append(np.asarray(ctx[self.weights_name]).reshape(-1))
            bar.update(1)
        bar.close()
        w = np.rint(np.stack(weights)).astype(np.int64) if weights else None
        return np.stack(tops).astype(np.int64), np.rint(np.stack(scores)).astype(np.int64), w


class FinnServingBackend:
    """FINN's execution as an accelerator backend (``run``/``close``, one query at a time), for
    ``fpgarec serve --backend finn``: the numpy-only runtime does not import FINN; the caller
    hands this object to :class:`fpgarec.runtime.accelerator.Accelerator`."""

    name = "finn"

    def __init__(self, bundle: Bundle | Path | str, workers: int = 1):
        self.workers = int(workers)
        self._finn = FinnBackend(bundle)

    def run(self, ids: np.ndarray) -> np.ndarray:
        return self._finn.run_with_scores(ids, workers=self.workers)[0]

    def close(self) -> None:
        pass


_WORKER: FinnBackend | None = None


def _worker_init(root: str) -> None:
    global _WORKER
    _WORKER = FinnBackend(root)


def _worker_run(chunk: tuple[np.ndarray, np.ndarray | None]):
    ids, seen = chunk
    return _WORKER.run_all(ids, seen=seen, progress=False)


def brevitas_reference(student, ids: np.ndarray, top_k: int, weights: bool = False) -> tuple:
    """(top-k, integer scores) of the Brevitas student under the tie rule; with ``weights``
    (an attention student) also its attention weights (B, K)."""
    import torch

    from fpgarec.compile.export import attention_weights, integer_scores, student_contexts

    ctx = student_contexts(student, ids)  # ids: the design inputs (meta words)
    s = integer_scores(student, ctx)
    if not weights:
        return tie_rule_topk(s, top_k), s
    return tie_rule_topk(s, top_k), s, attention_weights(student, torch.as_tensor(ctx)).numpy()


def _mismatches(a: tuple, b: tuple) -> dict:
    """Queries whose top-k, scores or (where both sides have them, a third element) attention
    weights differ: ``{"topk", "scores", ["weights",] "any"}``."""
    top = (a[0] != b[0]).any(axis=1)
    sc = (a[1] != b[1]).any(axis=1)
    out = {"topk": int(top.sum()), "scores": int(sc.sum())}
    bad = top | sc
    if len(a) > 2 and len(b) > 2 and a[2] is not None and b[2] is not None:
        w = (a[2] != b[2]).any(axis=1)
        out["weights"] = int(w.sum())
        bad = bad | w
    return {**out, "any": int(bad.sum())}


def _emulate(emu: EmulationBackend, ids: np.ndarray, batch: int) -> tuple:
    """(top-k, scores, weights or None) of the emulation, in batches of ``batch`` queries."""
    parts = []
    for i in range(0, len(ids), batch):
        top, scores = emu.run_with_scores(ids[i:i + batch])
        weights = emu.run_with_weights(ids[i:i + batch])[1] if emu.weights_output is not None else None
        parts.append((top, scores, weights))
    weights = None if emu.weights_output is None else np.concatenate([p[2] for p in parts])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), weights


def compare(bundle_dir: Path, student=None, n_queries: int = 10_000, finn_queries: int | None = None,
            seed: int = 0, batch: int = 1024, workers: int = 1, progress: bool = True) -> dict:
    """Emulation vs FINN execution (on ``finn_queries``, default all) vs Brevitas (if a student
    is given), on ``n_queries`` random contexts (a third of them null-padded cold-start users
    when the bundle pads with a null id; an attention design's with random behaviour types and
    recency buckets, as meta words). Returns counts of mismatching queries; a design with the
    attention weight stream also compares the weights (a ``weights`` count, part of ``any``)."""
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest["model"]
    ids = checks.sample_inputs(m, int(m["n_items"]), int(m["k"]), n_queries, seed)[:n_queries]
    emu = EmulationBackend(bundle)
    t0 = time.perf_counter()
    e = _emulate(emu, ids, batch)
    out = {"queries": n_queries, "emulation_seconds": time.perf_counter() - t0}
    nf = n_queries if finn_queries is None else min(finn_queries, n_queries)
    if nf:
        t0 = time.perf_counter()
        finn = FinnBackend(bundle)
        seen = emu.seen_bitmap(ids[:nf]) if finn.has_seen_input else None  # FINN's own seen filter
        f = finn.run_all(ids[:nf], workers=workers, seen=seen, progress=progress)
        out["finn_queries"] = nf
        out["finn_seconds"] = time.perf_counter() - t0
        if emu.seen_input is not None and not finn.has_seen_input:  # an older graph: same rule on its scores
            f = (emu.select_from_scores(f[1], ids[:nf]), f[1], f[2])
        if (f[2] is None) != (e[2] is None):
            raise BundleError(f"{bundle.root}: the emulation and FINN's graph disagree on the weight output")
        out["emulation_vs_finn"] = _mismatches(tuple(x if x is None else x[:nf] for x in e), f)
    if student is not None:
        b = brevitas_reference(student, ids, int(m["top_k"]), weights=e[2] is not None)
        if emu.seen_input is not None:
            b = (emu.select_from_scores(b[1], ids), *b[1:])
        out["emulation_vs_brevitas"] = _mismatches(e, b)
    log.info("bit-exactness on %d queries: %s", n_queries, out)
    return out


def _best_rate(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return batch / best


def bench(bundle_dir: Path, student=None, batch: int = 1024, repeats: int = 20, seed: int = 0) -> dict:
    """Queries per second at ``batch`` of: the emulation; a plain float32 PyTorch forward of the
    same query path (one lookup of the float fused table, mean over K, Linear, ReLU, scoring
    Linear, ``torch.topk``); and the Brevitas student (when given). Best of ``repeats``.

    Returns ``{"emulation_qps", "torch_float_qps", "brevitas_qps", "batch"}``.
    """
    import torch

    bundle = load_bundle(bundle_dir)
    m = bundle.manifest["model"]
    n, k, top = int(m["n_items"]), int(m["k"]), int(m["top_k"])
    ids = np.random.default_rng(seed).integers(0, n, size=(batch, k))
    emu = EmulationBackend(bundle)
    out = {"emulation_qps": _best_rate(lambda: emu.run(ids), batch, repeats)}
    tids = torch.from_numpy(ids)
    if student is not None:
        with torch.no_grad():
            a = student.modality_weights()
            table = (a[0] * student.id_table.weight + a[1] * student.text_table.weight).float()
            w1, b1 = student.transform.weight.float(), student.transform.bias.float()
            w2 = student.scorer.weight.float()
    else:  # same shapes, random weights
        d = int(m["dim"])
        table, w1, b1, w2 = torch.randn(n, d), torch.randn(d, d), torch.randn(d), torch.randn(n, d)

    @torch.no_grad()
    def torch_float():
        u = torch.relu(torch.nn.functional.linear(table[tids].mean(1), w1, b1))
        return torch.topk(u @ w2.T, top).indices

    out["torch_float_qps"] = _best_rate(torch_float, batch, repeats)
    if student is not None:
        student = student.eval()

        @torch.no_grad()
        def brevitas():
            return torch.topk(student(tids), top).indices

        out["brevitas_qps"] = _best_rate(brevitas, batch, max(3, repeats // 4))
    else:
        out["brevitas_qps"] = None
    out["batch"] = batch
    return out
