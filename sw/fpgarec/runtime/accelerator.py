"""The accelerator API: one object that opens a bundle on a backend and answers queries.

::

    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.sampler import History

    with Accelerator("bitstreams/student_w4_pynq-z2", backend="auto",
                     history=History.load("build/serve/history.npz")) as acc:
        acc.recommend(users=["196", "186"], k=5)        # 2 lists of 5 item ids, known users
        acc.recommend(items=[["242", "302"]], k=10)     # 1 list of 10 item ids, a new user
        acc.ids.title(acc.ids.item_index("242"))        # "Kolya (1996)"
        acc.recommend_indices(users=[195], k=5)         # internal indices in and out, (1, 5)
        acc.execute(ids)                                # (B, K) context indices -> (B, top_k)
        acc.throughput_test()                           # queries/s of the backend

Ids: ``recommend`` and ``recommend_queries`` take and return the data set's own user and item
ids (strings: MovieLens "196", a RecBole data set's "customer_17"), mapped by the history's
:class:`~fpgarec.runtime.ids.IdMap` (``acc.ids``); an unknown id raises
:class:`~fpgarec.runtime.sampler.UnknownUserError` / ``UnknownItemError`` naming it. Without
maps (no history, or a ``fpgarec-history/1`` file) the ids are the internal indices as decimal
strings (``acc.ids.internal``; a warning at load). ``recommend_indices`` and
``recommend_queries_indices`` work on internal indices (tests, benchmarks, the service's batches).

Backends (all share ``run(ids (B, K)) -> (B, top_k) int64`` and ``close()``):

- ``pynq``: the FPGA through PYNQ (:mod:`fpgarec.runtime.pynq_backend`, on a board image);
- ``emulation``: the bit-exact CPU emulation (:class:`~fpgarec.runtime.emulation.EmulationBackend`);
- ``auto``: ``pynq`` where a board is present, else ``emulation``;
- any object with ``run(ids)``, e.g. FINN's own execution of the HW-layer graph
  (:class:`fpgarec.compile.verify.FinnServingBackend`, which ``fpgarec serve --backend finn``
  hands in: the runtime never imports FINN).

Host side of a query: the :class:`~fpgarec.runtime.sampler.HostSampler` turns a user id or an
item list into the K context ids the design was trained with (padding and older/recent split
from the bundle's manifest); the backend returns the design's ``top_k`` item ids, best first,
of which ``recommend`` keeps the first ``k``.

numpy only (no torch, finn, qonnx, brevitas import here, lazily or not; import-linter checks
it): it runs on a PYNQ image's Python 3.10 with numpy 1.x.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import Bundle, load_bundle
from fpgarec.runtime.ids import IdMap, IdTypeError, UnknownIdError
from fpgarec.runtime.sampler import (
    History,
    HostSampler,
    ItemList,
    QueryError,
    QueryTypeError,
    UnknownItemError,
    UnknownUserError,
)

log = logging.getLogger(__name__)

#: backend names :class:`Accelerator` accepts
BACKENDS = ("auto", "pynq", "emulation")

_PYNQ_MODULE = "fpgarec.runtime.pynq_backend"


_PYNQ_MISSING = ""


def _pynq_module():
    """The PYNQ backend module, or None where it cannot be imported here (not part of this
    installation, or its own imports fail off-board); the reason is kept for messages."""
    global _PYNQ_MISSING
    try:
        return importlib.import_module(_PYNQ_MODULE)
    except ImportError as exc:
        _PYNQ_MISSING = str(exc)
        log.debug("no PYNQ backend: %s", exc)
        return None


def board_present() -> bool:
    """True when the PYNQ backend is installed and reports a board."""
    mod = _pynq_module()
    return bool(mod is not None and mod.board_present())


def open_backend(bundle: Bundle, backend: str = "auto", **options):
    """The backend object for ``backend`` (see the module docstring); ``options`` go to its
    constructor (emulation: ``threads``, ``min_chunk``; PYNQ: what the PYNQ backend takes)."""
    if backend not in BACKENDS:
        raise FpgarecError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    try:
        if backend in ("auto", "pynq"):
            mod = _pynq_module()
            if mod is None:
                if backend == "pynq":
                    raise FpgarecError(f"backend 'pynq': {_PYNQ_MODULE} cannot be imported here ({_PYNQ_MISSING})")
                log.info("no PYNQ backend installed: using the CPU emulation")
            elif backend == "pynq" or (mod.board_present() and bundle.bitstream_built):
                return mod.PynqBackend(bundle, **options)
            elif backend == "auto" and not bundle.bitstream_built:
                log.info("the bundle has no bitstream (%s): using the CPU emulation",
                         bundle.manifest.get("bitstream", {}).get("reason", "not built"))
            else:
                log.info("no PYNQ board present: using the CPU emulation")
        from fpgarec.runtime.emulation import EmulationBackend

        return EmulationBackend(bundle, **options)
    except TypeError as exc:  # an option the chosen backend does not take
        raise FpgarecError(f"backend {backend!r}: bad options {sorted(options)} ({exc})") from exc


def _takes_seen(run) -> bool:
    import inspect

    try:
        params = inspect.signature(run).parameters
    except (TypeError, ValueError):
        return True  # not introspectable: let the call tell
    return "seen" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def first_unseen(row: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` ids of a best-first ``row`` (T,) that are not in ``seen``; fewer when the
    row runs out. Shape (<= k,) int64."""
    row = np.asarray(row, dtype=np.int64)
    if len(seen):
        row = row[~np.isin(row, seen)]
    return row[:k]


class Accelerator:
    """A compiled design opened on a backend, with the host sampler in front of it.

    ``bundle``: a bundle folder (or a loaded :class:`~fpgarec.runtime.bundle.Bundle`);
    ``backend``: one of :data:`BACKENDS`, or an object with ``run(ids)`` (and optionally
    ``close()``); ``history``: the known users' item histories (a :class:`History` or the path
    of a history ``.npz``), needed for ``recommend(users=...)`` only, and whose id maps
    (``history.ids``) name users and items; ``ids``: the maps where there is no history (None:
    the history's, else internal ids); ``max_items``: the longest item list a query may carry;
    ``options``: passed to the backend's constructor.

    Attributes: ``k`` (context ids per query), ``top_k`` (ids the design returns),
    ``n_items``, ``sampler``, ``ids``, ``backend_name``.
    """

    def __init__(self, bundle: Bundle | Path | str, backend="auto", history: History | Path | str | None = None,
                 max_items: int = 4096, ids: IdMap | None = None, **options):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        model = self.bundle.manifest["model"]
        self.k = int(model["k"])
        self.top_k = int(model["top_k"])
        self.n_items = int(model["n_items"])
        if history is not None and not isinstance(history, History):
            history = History.load(history)
        self.sampler = HostSampler.from_manifest(self.bundle.manifest, history, max_items)
        if ids is None:
            ids = history.ids if history is not None else IdMap.internal_ids(0, self.n_items, "no history")
        if ids.n_items != self.n_items:
            raise FpgarecError(f"{ids.source}: id map of {ids.n_items} items, the design {self.n_items}")
        #: the data set's ids <-> internal indices (:mod:`fpgarec.runtime.ids`)
        self.ids = ids
        if isinstance(backend, str):
            self.backend = open_backend(self.bundle, backend, **options)
        elif callable(getattr(backend, "run", None)):
            self.backend = backend
        else:
            raise FpgarecError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)} or an object with run()")
        self.backend_name = str(getattr(self.backend, "name", type(self.backend).__name__))
        #: the design has a seen-items input (``fpgarec build --exclude-seen``): recommend()
        #: sends each query's seen items and the design never returns them
        self.seen_on_chip = "seen" in self.bundle.manifest.get("io", {})
        if self.seen_on_chip and not _takes_seen(self.backend.run):
            raise FpgarecError(f"backend {self.backend_name}: the design has a seen-items input, but its "
                               "run() takes no seen= bitmap")
        log.info("design %s on backend %s (K=%d, top_k=%d, %d items, %d known users, padding %s)",
                 self.bundle.manifest.get("design"), self.backend_name, self.k, self.top_k, self.n_items,
                 self.sampler.n_users, self.sampler.padding.scheme)

    # ----------------------------------------------------------------------------- queries
    def execute(self, batch: np.ndarray) -> np.ndarray:
        """Run context ids through the design. Shapes: (B, K) integers -> (B, top_k) int64,
        best first (equal scores: lower item id first)."""
        try:
            ids = self.bundle.check_ids(batch)
        except ValueError as exc:
            raise QueryError(f"execute: {exc}") from exc
        if len(ids) == 0:
            return np.zeros((0, self.top_k), dtype=np.int64)
        return np.asarray(self.backend.run(ids), dtype=np.int64)

    def check_k(self, k) -> int:
        """``k`` (None: the design's top_k) as an int in [1, top_k], else :class:`QueryError`."""
        if k is None:
            return self.top_k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise QueryTypeError(f"k must be an integer, got {type(k).__name__}")
        if not 1 <= int(k) <= self.top_k:
            raise QueryError(f"k = {k} out of range: the design returns 1..{self.top_k} items")
        return int(k)

    def contexts(self, users=None, items=None) -> np.ndarray:
        """The K context ids of known ``users`` (B,) or of new users' ``items`` (B lists of
        item ids, oldest first). Exactly one of the two. Shapes: -> (B, K) int64."""
        if (users is None) == (items is None):
            raise QueryError("give exactly one of users and items")
        if users is not None:
            return self.sampler.users(users)
        return self.sampler.items(items)

    # ------------------------------------------------------------------- data set's ids
    def user_query(self, user) -> int:
        """A known user's data-set id -> its internal index, checked (it has history).
        Raises :class:`UnknownUserError` / :class:`QueryTypeError` naming the id."""
        if self.sampler.history is None:
            raise UnknownUserError("no user history is loaded: send the user's items instead")
        try:
            index = self.ids.user_index(user)
        except UnknownIdError:
            raise UnknownUserError(f"unknown user {user!r}") from None
        except IdTypeError as exc:
            raise QueryTypeError(str(exc)) from None
        if index >= self.sampler.history.n_users or self.sampler.history.lengths[index] == 0:
            raise UnknownUserError(f"user {user!r} has no history")
        return index

    def items_query(self, items, types=None) -> list[int]:
        """A new user's item list (data-set ids, oldest first) -> internal indices, checked;
        ``types``: the behaviour type of each item (attention designs; None: all 0, a view),
        then an :class:`~fpgarec.runtime.sampler.ItemList` carrying them.
        Raises :class:`UnknownItemError` / :class:`QueryTypeError` / :class:`QueryError`."""
        if not isinstance(items, (list, tuple)):
            raise QueryTypeError(f"items must be a list of item ids, got {type(items).__name__}")
        if len(items) > self.sampler.max_items:
            raise QueryError(f"items has {len(items)} ids, at most {self.sampler.max_items} are accepted")
        try:
            indices = self.ids.item_indices(items)
        except UnknownIdError as exc:
            raise UnknownItemError(f"unknown item {exc.token!r}") from None
        except IdTypeError as exc:
            raise QueryTypeError(str(exc)) from None
        checked = self.sampler.check_items(indices)
        if types is None:
            return checked
        return ItemList(checked, self.sampler.check_types(types, len(checked)))

    def query(self, q) -> int | list[int]:
        """One query in data-set ids (a user id, or a list of item ids) -> internal, checked."""
        return self.items_query(q) if isinstance(q, (list, tuple)) else self.user_query(q)

    def item_ids(self, rows) -> list[list[str]]:
        """Rows of internal item indices (-1: an empty slot, dropped) -> the data set's ids."""
        return [self.ids.item_ids(row) for row in np.asarray(rows, dtype=np.int64)]

    def recommend(self, users=None, items=None, k: int | None = None, exclude_seen: bool = False) -> list[list[str]]:
        """Top-``k`` item ids for known ``users`` or new users' ``items`` lists, all as the data
        set's own ids (strings; see the module docstring).

        B users or B item lists -> B lists of at most ``k`` item ids, best first (shorter where
        seen items were dropped and fewer than ``k`` remain). Unknown ids raise
        :class:`UnknownUserError` / :class:`UnknownItemError` naming them; other rules as in
        :meth:`recommend_indices`.
        """
        if (users is None) == (items is None):
            raise QueryError("give exactly one of users and items")
        if users is not None:
            if isinstance(users, (str, bytes)):
                raise QueryTypeError("users must be a list of user ids")
            idx = np.array([self.user_query(u) for u in users], dtype=np.int64)
            top = self.recommend_indices(users=idx, k=k, exclude_seen=exclude_seen)
        else:
            top = self.recommend_indices(items=[self.items_query(x) for x in items], k=k, exclude_seen=exclude_seen)
        return self.item_ids(top)

    def recommend_queries(self, queries: list) -> list[list[str]]:
        """Top-``top_k`` item ids for a mixed batch, each query a user id or a list of item ids,
        in the data set's ids. B queries -> B lists of item ids (shorter where a seen-on-chip
        design leaves slots empty)."""
        return self.item_ids(self.recommend_queries_indices([self.query(q) for q in queries]))

    # ------------------------------------------------------------------- internal indices
    def recommend_indices(self, users=None, items=None, k: int | None = None,
                          exclude_seen: bool = False) -> np.ndarray:
        """Top-``k`` internal item indices for known users' internal indices or new users'
        lists of internal item indices (tests, benchmarks; :meth:`recommend` for data-set ids).

        Shapes: users (B,) or B item lists -> (B, k) int64, best first. ``k`` in
        [1, top_k] (default top_k). Unknown users, empty or over-long lists, ids out of range
        raise :class:`~fpgarec.runtime.sampler.QueryError`.

        A design built with a seen-items input drops each query's seen items (a known user's
        whole history, a new user's given items) on chip, whatever ``exclude_seen`` says; a row
        holds -1 where fewer than ``k`` items are left.

        ``exclude_seen`` (designs without that input): drop the seen items from the design's
        top_k list on the host and keep the best ``k`` of the rest;
        a row is padded with -1 where fewer than ``k`` unseen ids remain. The design ranks seen
        items too (with the demo model about 6 of a known user's top 10), so build it with a
        larger ``top_k`` (``fpgarec build --top-k 64``) when serving this way.
        """
        k = self.check_k(k)
        ctx = self.contexts(users, items)
        queries = [int(u) for u in np.asarray(users).reshape(-1)] if users is not None else list(items)
        if self.seen_on_chip:  # the design drops each query's seen items before selection
            return self._run_seen(ctx, queries)[:, :k]
        top = self.execute(ctx)
        if not exclude_seen:
            return top[:, :k]
        out = np.full((len(top), k), -1, dtype=np.int64)
        for b, query in enumerate(queries):
            row = first_unseen(top[b], self.seen(query), k)
            out[b, :len(row)] = row
        return out

    def seen(self, query) -> np.ndarray:
        """What a query has seen: a known user's (int) whole history, or the given item list."""
        if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
            user = self.sampler.check_user(query)
            return self.sampler.history.of(user)
        return np.asarray(query, dtype=np.int64)

    def recommend_queries_indices(self, queries: list) -> np.ndarray:
        """Top-``top_k`` internal indices for a mixed batch, each query a user index (int) or a
        list of item indices, already checked (:meth:`query`; the service's batches).
        Shapes: B queries -> (B, top_k) int64 (-1 in slots a seen-on-chip design leaves empty)."""
        if not self.seen_on_chip:
            return self.execute(self.sampler.contexts(queries))
        return self._run_seen(self.sampler.contexts(queries), queries)

    def _run_seen(self, ctx: np.ndarray, queries: list) -> np.ndarray:
        """A seen-on-chip design on contexts ``ctx`` (B, K) with each query's seen items (a
        known user's history, a new user's given items) as the bitmap. -> (B, top_k) int64,
        -1 where fewer than top_k unseen items are left."""
        if len(ctx) == 0:
            return np.zeros((0, self.top_k), dtype=np.int64)
        seen = np.zeros((len(ctx), self.n_items), dtype=bool)
        for b, query in enumerate(queries):
            seen[b, self.seen(query)] = True
        top = np.asarray(self.backend.run(self.bundle.check_ids(ctx), seen=seen), dtype=np.int64)
        return np.where(top < self.n_items, top, -1)

    # ---------------------------------------------------------------- attention weights
    @property
    def emits_weights(self) -> bool:
        """Whether the design emits each query's attention weights (an attention design built
        with ``fpgarec build --emit-weights``) and the backend reads them."""
        agg = self.bundle.attention
        return bool(agg and agg.get("emit_weights")) and callable(getattr(self.backend, "run_with_weights", None))

    def behaviour_names(self) -> list[str]:
        """Names of the design's behaviour types (the bundle's ``model.aggregation.type_names``;
        ``"type t"`` where it has none; one ``"view"`` for a design without attention)."""
        agg = self.bundle.attention
        if agg is None:
            return ["view"]
        names = agg.get("type_names")
        n = int(agg["n_types"])
        return [str(x) for x in names] if isinstance(names, list) and len(names) == n else [f"type {t}" for t in range(n)]

    def explain_queries_indices(self, queries: list) -> dict[str, np.ndarray]:
        """Top-``top_k`` and the attention weights the design computed for a mixed batch
        (queries as for :meth:`recommend_queries_indices`), in one run of the design.

        Returns arrays of shape (B, K) unless noted, slot order (slot 0: the oldest context
        item): ``top`` (B, top_k) item indices (-1: an empty slot), ``items`` the context item
        indices (-1: a null slot), ``types`` behaviour types, ``buckets`` recency buckets,
        ``weights`` the integer weights a_j in [0, 2^W] (Σ_j a_j ≈ 2^W over the real slots;
        kernels/attention_aggregate golden.attend), and ``weight_bits`` W (a scalar).
        """
        if not self.emits_weights:
            raise QueryError(f"design {self.bundle.manifest.get('design')}: no attention weights to explain with "
                             "(an attention student built with `fpgarec build --emit-weights` emits them)")
        agg = self.bundle.attention
        words = self.bundle.check_ids(self.sampler.contexts(queries))
        if self.seen_on_chip:
            seen = np.zeros((len(words), self.n_items), dtype=bool)
            for b, query in enumerate(queries):
                seen[b, self.seen(query)] = True
            top, weights = self.backend.run_with_weights(words, seen=seen)
        else:
            top, weights = self.backend.run_with_weights(words)
        top = np.asarray(top, dtype=np.int64)
        ib, tb = int(agg["id_bits"]), int(agg["type_bits"])
        items = self.bundle.item_ids(words)
        return {"top": np.where(top < self.n_items, top, -1), "items": np.where(items < self.n_items, items, -1),
                "types": (words >> ib) & ((1 << tb) - 1), "buckets": words >> (ib + tb),
                "weights": np.asarray(weights, dtype=np.int64), "weight_bits": int(agg["weight_bits"])}

    def throughput_test(self, batch: int = 1000, seconds: float = 2.0, seed: int = 0,
                        max_batches: int = 10_000) -> dict:
        """Queries/s of the backend on random contexts (real ids, padding as the bundle says).

        Runs batches of ``batch`` queries for about ``seconds`` (at least one, at most
        ``max_batches``). Returns ``{"backend", "batch", "batches", "queries", "seconds",
        "queries_per_s", "us_per_query", "ms_per_batch"}``.
        """
        rng = np.random.default_rng(seed)
        lengths = rng.integers(1, 2 * self.k + 1, size=batch)
        ends = np.cumsum(lengths)
        flat = rng.integers(0, self.n_items, size=int(ends[-1]))
        ids = self.sampler._from_spans(flat, ends - lengths, ends)
        self.execute(ids[:1])  # warm-up (lazy allocations, thread pools)
        n, t0 = 0, time.perf_counter()
        while True:
            self.execute(ids)
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds or n >= max_batches:
                break
        q = n * batch
        return {
            "backend": self.backend_name,
            "batch": int(batch),
            "batches": n,
            "queries": q,
            "seconds": round(elapsed, 4),
            "queries_per_s": round(q / elapsed, 1),
            "us_per_query": round(elapsed / q * 1e6, 3),
            "ms_per_batch": round(elapsed / n * 1e3, 4),
        }

    # ------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the backend (the board's buffers, thread pools)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
