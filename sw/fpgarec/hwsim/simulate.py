"""Whole-design RTL simulation of a bundle in Verilator, bit for bit against the CPU emulation.

:func:`simulate` stitches the bundle (:mod:`fpgarec.hwsim.stitch`), builds it once (cached) and
runs three passes of the same C++ testbench:

1. **random**: all N queries back to back with random input gaps (``gap``) and output
   back-pressure (``backpressure``, drawn independently for each output stream): every output
   beat is compared with the emulation (the top-k; a design built with ``emit_weights`` also
   has the attention weights on out1, compared with :meth:`EmulationBackend.run_with_weights`;
   a query counts once whichever stream differs);
2. **steady**: all N queries with no gaps and no back-pressure: steady-state cycles per query
   = (t_last(N-1) - t_last(w)) / (N-1-w) over the last output beats after a warm-up of w
   queries; outputs compared again;
3. **isolated**: the first ``latency_queries`` queries one at a time (query q+1 enters after
   query q's last output): batch-1 latency = t_last_out - t_first_in + 1 cycles (the cycles
   from the clock edge that takes the first input beat to the edge that delivers the last
   output beat, both included); the maximum over those queries is reported.

The queries are generated (seeded): context ids drawn uniformly from the real items, with a
share of cold users (fewer real items, null-padded) and a few all-null queries; ids within a
query are distinct, as the host sampler's are.

FIFO depths: given by the caller (``depths``: e.g. the depths sized once for a fixed folding,
``hw/folding/*.fifo_depths.json``; they must name exactly the design's FIFOs), else the sized
depths a bundle carries (``manifest["rtl"]["fifo_depths"]``); otherwise (or with ``size=True``)
:func:`size_fifos` runs the steady pass with deep FIFOs and takes each FIFO's peak occupancy (at
least 2). Depths that are too shallow cannot hide: the steady pass measures the throughput the
design reaches with them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpgarec.hwsim import verilator as vl
from fpgarec.hwsim.stitch import MIN_DEPTH, SIZING_DEPTH, Design, stitch
from fpgarec.runtime.bundle import Bundle, load_bundle
from fpgarec.runtime.emulation import EmulationBackend

log = logging.getLogger(__name__)


def generate_queries(n: int, k: int, n_items: int, null_id: int | None, seed: int = 0,
                     cold_share: float = 0.25, empty_share: float = 0.02) -> np.ndarray:
    """(n, k) context ids: distinct real items; a ``cold_share`` of queries has 1..k-1 real
    items then ``null_id`` padding, an ``empty_share`` only padding (needs a null id)."""
    rng = np.random.default_rng(seed)
    ids = np.argsort(rng.random((n, n_items)), axis=1)[:, :k] if n_items <= 4096 else \
        np.stack([rng.choice(n_items, size=k, replace=False) for _ in range(n)])
    ids = ids.astype(np.int64)
    if null_id is None:
        return ids
    kind = rng.random(n)
    for q in np.nonzero(kind < cold_share + empty_share)[0]:
        real = 0 if kind[q] < empty_share else int(rng.integers(1, k))
        ids[q, real:] = null_id
    return ids


def generate_seen(ids: np.ndarray, n_items: int, null_id: int | None, seed: int = 0) -> np.ndarray:
    """(B, n_items) bool histories for designs with a seen-items input: each query's context
    items plus random others at a density drawn from {0, 2 %, 30 %, 99.5 %} (the last leaves
    fewer than top_k items for some queries: their empty slots are checked too)."""
    rng = np.random.default_rng(seed + 7919)
    density = rng.choice([0.0, 0.02, 0.3, 0.995], size=len(ids), p=[0.2, 0.5, 0.2, 0.1])
    seen = rng.random((len(ids), n_items)) < density[:, None]
    real = ids if null_id is None else np.where(ids == null_id, -1, ids)
    rows, cols = np.nonzero(real >= 0)
    seen[rows, real[rows, cols]] = True
    return seen


@dataclass
class SimResult:
    """What ``fpgarec sim`` prints (the last line is :meth:`summary` as JSON)."""

    queries: int
    mismatches: int
    latency_cycles: int
    cycles_per_query: float
    clock_mhz: float
    sim_seconds: float
    build_seconds: float
    build_cached: bool
    fifo_depths: dict[str, int]
    fifo_peaks: dict[str, int]
    first_mismatch: str | None = None
    layer_cycles: dict[str, int] = field(default_factory=dict)
    #: queries whose attention weights (out1) differ from the emulation's (part of ``mismatches``);
    #: None for a design without the weight stream
    weight_mismatches: int | None = None

    @property
    def latency_us(self) -> float:
        return self.latency_cycles / self.clock_mhz

    @property
    def queries_per_s(self) -> float:
        return self.clock_mhz * 1e6 / self.cycles_per_query

    def summary(self) -> dict:
        return {"queries": self.queries, "mismatches": self.mismatches,
                "latency_cycles": self.latency_cycles, "latency_us": round(self.latency_us, 4),
                "cycles_per_query": round(self.cycles_per_query, 3),
                "queries_per_s": round(self.queries_per_s, 1), "clock_mhz": self.clock_mhz,
                "sim_seconds": round(self.sim_seconds, 2),
                **({} if self.weight_mismatches is None else {"weight_mismatches": self.weight_mismatches})}


def _stall_message(design: Design, stats: dict, where: str) -> str:
    occ = stats["occupancy"]
    full = [f for f in design.fifos if occ[f.index] >= f.depth]
    empty = {f.index for f in design.fifos if occ[f.index] == 0}
    stuck = []
    for f in full:  # a layer holding a full input FIFO while all its output FIFOs are empty
        outs = [g for g in design.fifos if g.producer == f.consumer]
        if all(g.index in empty for g in outs):
            stuck.append(f.consumer)
    parts = [f"FIFO {f.index} ({f.tensor}: {f.producer} -> {f.consumer}) full at {f.depth}" for f in full]
    parts += [f"FIFO {f.index} ({f.tensor}: {f.producer} -> {f.consumer}) empty" for f in design.fifos
              if f.index in empty][:6]
    blame = f"layer {', '.join(sorted(set(stuck)))} stopped" if stuck else "no layer holds a full input FIFO"
    return (f"{where}: the design stalled at cycle {stats['cycles']} ({stats['in_beats']} input and "
            f"{stats['out_beats']} output beats moved): {blame}; " + "; ".join(parts))


class Simulator:
    """A bundle's stitched design, built once, run many times."""

    def __init__(self, bundle: Bundle | Path | str, cache: Path, depths: dict[str, int] | None = None,
                 default_depth: int = MIN_DEPTH):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.design = stitch(self.bundle, depths, default_depth)
        self.build = vl.build(self.design, cache)
        self.emulation = EmulationBackend(self.bundle)

    def pack(self, ids: np.ndarray, seen: np.ndarray | None = None) -> list[np.ndarray]:
        """The top's input beats: in0 the ids; in1 the seen bitmap (B, N labels) where the
        design has one (default: the query's context ids, as the emulation's default)."""
        d = self.design
        ids = np.asarray(ids)
        words = [vl.pack_beats(ids.reshape(-1, d.inputs[0].lanes), d.inputs[0].lanes, d.inputs[0].bits)]
        if len(d.inputs) > 1:
            bitmap = self.emulation.seen_bitmap(ids, seen)
            i1 = d.inputs[1]
            words.append(vl.pack_beats(bitmap.reshape(-1, i1.lanes), i1.lanes, i1.bits))
        return words

    def run(self, ids: np.ndarray, seen: np.ndarray | None = None, **kw) -> vl.RunResult:
        res = vl.run(self.build, self.design, self.pack(ids, seen), len(ids), **kw)
        if res.stats["status"] == 3:
            raise vl.SimulationError(_stall_message(self.design, res.stats, str(self.bundle.root)))
        if res.stats["status"] == 4:
            raise vl.SimulationError(f"{self.bundle.root}: the simulation hit its cycle limit "
                                     f"({res.stats['cycles']} cycles)")
        return res

    def topk(self, res: vl.RunResult, n: int) -> np.ndarray:
        return res.outputs.reshape(n, -1)

    def weights(self, res: vl.RunResult, n: int) -> np.ndarray | None:
        """The out1 stream (the attention weights) as (n, K) int64, None without it."""
        return None if res.out1 is None else res.out1.reshape(n, -1)

    def expected(self, ids: np.ndarray, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The emulation's (top-k (B, top_k), attention weights (B, K) or None)."""
        if self.design.out1 is None:
            return self.emulation.run(ids, seen=seen), None
        return self.emulation.run_with_weights(ids, seen=seen)

    def mismatches(self, res: vl.RunResult, ids: np.ndarray, want: tuple, name: str) -> tuple[int, int, str | None]:
        """(queries whose top-k or weights differ, those whose weights differ, a description of
        the first) of run ``res`` of ``ids`` against the emulation's ``want`` (:meth:`expected`)."""
        got, got_w = self.topk(res, len(ids)), self.weights(res, len(ids))
        bad_top = np.any(got != want[0], axis=1)
        bad_w = np.zeros(len(ids), bool) if want[1] is None else np.any(got_w != want[1], axis=1)
        bad = np.nonzero(bad_top | bad_w)[0]
        if not len(bad):
            return 0, 0, None
        q = int(bad[0])
        if bad_top[q]:
            what = f"top-k: RTL {got[q].tolist()}, emulation {want[0][q].tolist()}"
        else:
            what = f"attention weights: RTL {got_w[q].tolist()}, emulation {want[1][q].tolist()}"
        return len(bad), int(bad_w.sum()), f"{name} pass, query {q} (ids {ids[q].tolist()}): {what}"


def size_fifos(bundle: Bundle, cache: Path, queries: int = 200, seed: int = 1) -> dict[str, int]:
    """FIFO depth per edge (``producer->consumer``): the peak occupancy (at least 2) of a run with deep FIFOs whose
    queries enter at the design's rate (measured by an unpaced run first, and not faster than
    the slowest layer's cycles); unpaced, every FIFO before the slowest layer would fill to
    any depth."""
    sim = Simulator(bundle, cache, default_depth=SIZING_DEPTH)
    ids = _queries(bundle, queries, seed)
    last = np.asarray(sim.run(ids).stats["last_out"], dtype=np.float64)  # unpaced: the design's rate
    w = len(ids) // 4
    rate = (last[-1] - last[w]) / (len(ids) - 1 - w)
    res = sim.run(ids, interval=int(np.ceil(max(rate, max(r.cycles for r in sim.design.layers)))))
    return {f.key: max(MIN_DEPTH, int(res.stats["peak"][f.index])) for f in sim.design.fifos}


def stale_depths(bundle: Bundle, depths: dict[str, int]) -> str | None:
    """Why FIFO depths do not fit ``bundle``'s stitched design (they must name exactly its
    FIFOs; a folding or layer change makes a depths file stale), or None when they fit."""
    want = {f.key for f in stitch(bundle).fifos}
    if set(depths) == want:
        return None
    extra, missing = sorted(set(depths) - want), sorted(want - set(depths))
    return (f"the given FIFO depths do not match the design of {bundle.root} "
            f"(unknown {extra or 'none'}, missing {missing or 'none'})")


def _queries(bundle: Bundle, n: int, seed: int) -> np.ndarray:
    m = bundle.manifest["model"]
    pad = m.get("padding", {})
    null_id = pad.get("null_id") if pad.get("scheme") == "null" else None
    ids = generate_queries(n, int(m["k"]), int(m["n_items"]), null_id, seed)
    agg = bundle.attention
    if agg is None:
        return ids
    # an attention design's input: meta words with random behaviour types and recency buckets
    from fpgarec.compile.checks import pack_meta_words

    rng = np.random.default_rng(seed + 104729)
    types = rng.integers(0, int(agg["n_types"]), ids.shape)
    buckets = rng.integers(0, int(agg["n_buckets"]), ids.shape)
    return pack_meta_words(np.stack([ids, types, buckets], -1), agg)


def simulate(bundle_dir: Path | str, queries: int = 1000, cache: Path = Path("build/rtlsim"),
             seed: int = 0, gap: float = 0.2, backpressure: float = 0.2, latency_queries: int = 16,
             size: bool = False, depths: dict[str, int] | None = None) -> SimResult:
    """Simulate ``queries`` queries through the whole design; see the module docstring."""
    t0 = time.perf_counter()
    bundle = load_bundle(bundle_dir)
    if depths is not None and not size:
        stale = stale_depths(bundle, depths)
        if stale:
            log.warning("%s: sizing them again", stale)
            depths = None
    else:
        depths = None if size else bundle.manifest.get("rtl", {}).get("fifo_depths")
    from tqdm.auto import tqdm

    bar = tqdm(total=4 + (depths is None), desc="simulation", unit="stage", disable=None, leave=False)

    if depths is None:
        log.info("sizing the FIFOs (deep-FIFO run)")
        bar.set_postfix_str("sizing the FIFOs")
        depths = size_fifos(bundle, cache)
        bar.update(1)
    bar.set_postfix_str("verilating (cached per design)")
    sim = Simulator(bundle, cache, depths)
    bar.update(1)
    ids = _queries(bundle, queries, seed)
    seen = None
    if sim.emulation.seen_input is not None:
        m = bundle.manifest["model"]
        ctx = bundle.item_ids(ids)  # an attention design's queries are meta words: their id field
        seen = generate_seen(ctx, int(m["n_items"]), m.get("padding", {}).get("null_id"), seed)
    want = sim.expected(ids, seen)
    mismatches, bad_weights, first = 0, 0, None
    for name, kw in (("random", {"gap": gap, "backpressure": backpressure, "seed": seed + 1}),
                     ("steady", {})):
        bar.set_postfix_str(f"{name} pass, {len(ids)} queries")
        res = sim.run(ids, seen, **kw)
        bar.update(1)
        n_bad, n_w, where = sim.mismatches(res, ids, want, name)
        mismatches, bad_weights, first = mismatches + n_bad, bad_weights + n_w, first or where
        if name == "steady":
            last = np.asarray(res.stats["last_out"], dtype=np.int64)
            w = min(max(1, len(ids) // 10), 50)
            cpq = float(last[-1] - last[w]) / (len(ids) - 1 - w) if len(ids) - 1 > w else float("nan")
            peaks = {f.key: int(res.stats["peak"][f.index]) for f in sim.design.fifos}
    nl = min(latency_queries, len(ids))
    bar.set_postfix_str(f"latency pass, {nl} queries one at a time")
    res = sim.run(ids[:nl], None if seen is None else seen[:nl], isolate=True)
    bar.update(1)
    bar.close()
    n_bad, n_w, where = sim.mismatches(res, ids[:nl], tuple(None if w is None else w[:nl] for w in want), "latency")
    mismatches, bad_weights, first = mismatches + n_bad, bad_weights + n_w, first or where
    lat = int(np.max(np.asarray(res.stats["last_out"]) - np.asarray(res.stats["first_in"]) + 1))
    return SimResult(queries=len(ids), mismatches=mismatches, latency_cycles=lat, cycles_per_query=cpq,
                     clock_mhz=float(bundle.manifest["clock_mhz"]), sim_seconds=time.perf_counter() - t0,
                     build_seconds=sim.build.seconds, build_cached=sim.build.cached,
                     fifo_depths={f.key: f.depth for f in sim.design.fifos}, fifo_peaks=peaks,
                     first_mismatch=first, layer_cycles={r.name: r.cycles for r in sim.design.layers},
                     weight_mismatches=None if want[1] is None else bad_weights)

