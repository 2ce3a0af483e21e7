"""Host sampler: the K neighbour item ids the accelerator reads for one query, numpy only.

The host side of the co-design split: a query is either a *known user* (its time-ordered item
history in the training graph, a :class:`History`) or a *new user* who brings its own item
list. Either way the sequence ``s`` (oldest first) becomes K item ids with exactly the rule the
model was trained with (:mod:`fpgarec.data.sampler`, which this module reproduces without
importing ``fpgarec.data``):

* ``L = min(len(s), K)`` most recent items ``s[-L:]``, in time order;
* a sequence longer than K with ``n_recent`` set (``manifest["model"]["n_recent"]``) gives
  instead its ``n_recent`` most recent items plus ``K - n_recent`` items evenly spaced over its
  older part: ``older_j = floor(j (len - n_recent) / (K - n_recent))``, j = 0 .. K-n_recent-1;
* a sequence shorter than K is padded according to the bundle
  (``manifest["model"]["padding"]``, :class:`Padding`):

  - ``cyclic`` (no ``padding`` key; bundles built before the aggregation kernel):
    ``slots = s[-L:][arange(K) mod L]``;
  - ``null``: the L real items first, then ``K - L`` slots holding ``null_id`` (= N, a zero
    row of the lookup tables that the aggregation kernel does not count).

The selection is a deterministic function of the sequence (no random draw, so the same user
always gets the same answer, whatever the batch it lands in) and costs O(K) per query,
vectorised over a batch: two small (K, K) tables turn the slot arithmetic into gathers.

Ids are the internal item indices 0 .. N-1 of the data set the model was trained on (the
order of :func:`fpgarec.data.dataset.load_interactions`), users likewise 0 .. U-1.

History files (``.npz``, read with ``allow_pickle=False``): ``indptr`` (U+1,) int64, ``items``
(nnz,) integer, ``n_items`` () int64; user ``u`` owns ``items[indptr[u]:indptr[u+1]]``,
oldest first (:meth:`History.save`, :meth:`History.load`). Format ``fpgarec-history/2`` adds
the data set's ids: ``user_ids`` (U,) and ``item_ids`` (N,) strings and, where the item file has
titles, ``item_titles`` (N,) (:mod:`fpgarec.runtime.ids`). A ``fpgarec-history/1`` file (no
maps) still loads, with a warning: its ids are the internal indices as decimal strings.
A history may carry ``types`` (nnz,) integer: each interaction's behaviour type (0 view, 1 like,
2 comment for MovieLens, derived from ratings: :mod:`fpgarec.data.behaviour`), which an attention
design reads beside each item (its meta words, :meth:`HostSampler._meta_words`).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.runtime.ids import IdMap

log = logging.getLogger(__name__)

#: padding schemes a bundle may declare
SCHEMES = ("cyclic", "null")
#: history file format tag (stored as the ``format`` entry): /2 carries the id maps
HISTORY_FORMAT = "fpgarec-history/2"
#: format tags :meth:`History.load` reads (/1: no id maps)
HISTORY_FORMATS = ("fpgarec-history/1", HISTORY_FORMAT)


class ItemList(list):
    """A new user's item list (internal indices, oldest first) with the behaviour type of each
    item (``types``, same length; None: all 0, a view), for attention designs."""

    def __init__(self, items, types: list[int] | None = None):
        super().__init__(items)
        self.types = types


class QueryError(FpgarecError):
    """A query the sampler cannot serve (empty or over-long item list, id out of range)."""


class QueryTypeError(QueryError):
    """A query field of the wrong type (a user id that is not an integer, items not a list)."""


class UnknownUserError(QueryError):
    """A user id that is not in the history (or has no items in it)."""


class UnknownItemError(QueryError):
    """An item id that is not in the data set."""


@dataclass(frozen=True)
class Padding:
    """How a context shorter than K is filled: ``cyclic`` or ``null`` (with ``null_id``)."""

    scheme: str = "cyclic"
    null_id: int | None = None

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise FpgarecError(f"padding scheme {self.scheme!r}: expected one of {SCHEMES}")
        if self.scheme == "null" and self.null_id is None:
            raise FpgarecError("padding scheme 'null' needs a null_id")

    @classmethod
    def from_manifest(cls, manifest: dict) -> Padding:
        """The scheme a bundle declares in ``manifest["model"]["padding"]`` (absent: cyclic)."""
        model = manifest.get("model", {})
        spec = model.get("padding")
        if spec is None:
            return cls()
        if not isinstance(spec, dict) or spec.get("scheme") not in SCHEMES:
            raise FpgarecError(f"manifest model.padding {spec!r}: expected {{'scheme': one of {SCHEMES}}}")
        if spec["scheme"] == "cyclic":
            return cls()
        null_id = spec.get("null_id")
        n_items = int(model.get("n_items", 0))
        if isinstance(null_id, bool) or not isinstance(null_id, int) or null_id < n_items:
            raise FpgarecError(f"manifest model.padding.null_id {null_id!r}: expected an integer >= n_items ({n_items})")
        return cls("null", null_id)


class History:
    """Each known user's time-ordered items, CSR style (the training graph the sampler reads).

    Shapes: ``indptr`` (U+1,) int64 non-decreasing from 0, ``items`` (nnz,) int64 in [0, N).
    ``ids``: the data set's user and item ids (:class:`~fpgarec.runtime.ids.IdMap`, U users and
    N items); None: internal ids (the indices as decimal strings, ``ids.internal``).
    """

    def __init__(self, indptr: np.ndarray, items: np.ndarray, n_items: int, source: str = "memory",
                 ids: IdMap | None = None, types: np.ndarray | None = None):
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.items = np.ascontiguousarray(items, dtype=np.int64)
        self.n_items = int(n_items)
        self.source = source
        where = source
        if self.indptr.ndim != 1 or len(self.indptr) < 1 or self.items.ndim != 1:
            raise FpgarecError(f"{where}: indptr and items must be 1-D arrays")
        if self.indptr[0] != 0 or self.indptr[-1] != len(self.items) or np.any(np.diff(self.indptr) < 0):
            raise FpgarecError(f"{where}: indptr must rise from 0 to len(items) = {len(self.items)}")
        if self.items.size and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise FpgarecError(f"{where}: item ids must lie in [0, {self.n_items})")
        self.lengths = np.diff(self.indptr)
        #: each interaction's behaviour type, aligned with ``items`` (None: not recorded)
        self.types = None if types is None else np.ascontiguousarray(types, dtype=np.int64)
        if self.types is not None and (self.types.shape != self.items.shape or (self.types.size and self.types.min() < 0)):
            raise FpgarecError(f"{where}: types must be {len(self.items)} non-negative integers, one per item")
        if ids is None:
            ids = IdMap.internal_ids(self.n_users, self.n_items, source=where)
        elif ids.n_users != self.n_users or ids.n_items != self.n_items:
            raise FpgarecError(f"{where}: id maps of {ids.n_users} users and {ids.n_items} items, the history "
                               f"{self.n_users} users and {self.n_items} items")
        self.ids = ids

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_lists(cls, lists, n_items: int, ids: IdMap | None = None, types=None) -> History:
        """From one item sequence per user (oldest first); ``ids`` as in the constructor;
        ``types``: one behaviour-type list per user, aligned with ``lists`` (None: none)."""
        lens = np.array([len(x) for x in lists], dtype=np.int64)
        indptr = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])

        def flat(seqs):
            return np.concatenate([np.asarray(x, dtype=np.int64) for x in seqs]) if len(seqs) else np.zeros(0, np.int64)

        return cls(indptr, flat(lists), n_items, ids=ids, types=None if types is None else flat(types))

    def of(self, user: int) -> np.ndarray:
        """User ``user``'s items, oldest first. Shape (len,)."""
        return self.items[self.indptr[user]:self.indptr[user + 1]]

    def save(self, path: Path | str) -> Path:
        """Write an ``.npz`` history file (numpy only, no pickles)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        small = self.items.astype(np.int32) if self.n_items < 2**31 else self.items
        with open(path, "wb") as f:
            maps = self.ids.arrays()  # none for internal ids: then a /1 file, as before the maps
            if self.types is not None:
                maps["types"] = self.types.astype(np.int8 if self.types.max(initial=0) < 128 else np.int64)
            np.savez(f, format=np.array(HISTORY_FORMAT if maps else HISTORY_FORMATS[0]), indptr=self.indptr, items=small,
                     n_items=np.array(self.n_items, dtype=np.int64), **maps)
        return path

    @classmethod
    def load(cls, path: Path | str) -> History:
        """Read an ``.npz`` history file (:meth:`save`); refuses pickles and malformed files."""
        path = Path(path)
        if not path.is_file():
            raise FpgarecError(f"{path}: history file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "format" in z.files and str(z["format"]) not in HISTORY_FORMATS:
                    raise FpgarecError(f"{path}: format {str(z['format'])!r}, expected one of {HISTORY_FORMATS}")
                missing = {"indptr", "items", "n_items"} - set(z.files)
                if missing:
                    raise FpgarecError(f"{path}: not a history file (missing {sorted(missing)})")
                indptr, items, n_items = z["indptr"], z["items"], int(z["n_items"])
                if not (np.issubdtype(indptr.dtype, np.integer) and np.issubdtype(items.dtype, np.integer)):
                    raise FpgarecError(f"{path}: indptr and items must be integer arrays")
                ids = IdMap.from_arrays(z, len(indptr) - 1, n_items, source=str(path))
                types = z["types"] if "types" in z.files else None
                if types is not None and not np.issubdtype(types.dtype, np.integer):
                    raise FpgarecError(f"{path}: types must be an integer array")
        except (ValueError, OSError) as exc:  # not a zip / a pickled entry / a truncated file
            raise FpgarecError(f"{path}: not a readable .npz history file ({exc})") from exc
        if ids is None:
            log.warning("%s: no id maps (a fpgarec-history/1 file): user and item ids are internal indices; "
                        "rewrite it with `fpgarec serve BUNDLE --history DATA --save-history FILE` for the data "
                        "set's ids", path)
        return cls(indptr, items, n_items, source=str(path), ids=ids, types=types)


def _slot_tables(k: int, null: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per length L = 1..K (row L-1): the offset of each slot from the first of the L most
    recent items, and which slots are padding (null scheme). Shapes: (K, K) int64, (K, K) bool."""
    j = np.arange(k)[None, :]
    length = np.arange(1, k + 1)[:, None]
    if null:
        return np.minimum(j, length - 1).astype(np.int64), j >= length
    return (j % length).astype(np.int64), np.zeros((k, k), dtype=bool)


class HostSampler:
    """The K context ids of known users (from a :class:`History`) or of explicit item lists.

    ``k``: neighbours per query (the bundle's input width); ``n_items``: N, valid ids are
    [0, N); ``padding``: :class:`Padding`; ``n_recent``: the older/recent split of long
    sequences (None: the K most recent); ``max_items``: longest item list a query may carry;
    ``cache_entries``: the known users' contexts are computed once into a (U, K) table (then a
    query is one gather) when U·K is at most this, else per query from the history.
    """

    def __init__(self, k: int, n_items: int, padding: Padding | None = None, n_recent: int | None = None,
                 history: History | None = None, max_items: int = 4096, cache_entries: int = 1 << 24,
                 attention: dict | None = None, types: np.ndarray | None = None):
        #: an attention design's ``aggregation`` record: the sampler then returns meta words
        #: (:meth:`_meta_words`); ``types``: behaviour types aligned with ``history.items``
        self.attention = attention if isinstance(attention, dict) and attention.get("mode") == "attention" else None
        if types is None and history is not None:
            types = history.types
        self.types = None if types is None else np.asarray(types, np.int64)
        if self.types is not None and (history is None or len(self.types) != len(history.items)):
            raise FpgarecError("types must be aligned with the history's items")
        if self.attention is not None and history is not None:
            self._check_history_types(history)
        self.k = int(k)
        self.n_items = int(n_items)
        self.padding = padding or Padding()
        self.n_recent = None if n_recent is None or int(n_recent) >= self.k else int(n_recent)
        if self.n_recent is not None and self.n_recent < 0:
            raise FpgarecError(f"n_recent {n_recent}: must be >= 0")
        self.max_items = int(max_items)
        if history is not None and history.n_items != self.n_items:
            raise FpgarecError(f"{history.source}: history has {history.n_items} items, the design {self.n_items}")
        self.history = history
        self._offsets, self._pad = _slot_tables(self.k, self.padding.scheme == "null")
        self._any_pad = self.padding.scheme == "null"
        self._arange = np.arange(self.k, dtype=np.int64)
        if self.n_recent is not None:
            n_old = self.k - self.n_recent
            self._old_j = np.arange(n_old, dtype=np.int64)[None, :]
            self._recent_j = np.arange(-self.n_recent, 0, dtype=np.int64)[None, :]
        self._table = None
        if history is not None and 0 < history.n_users * self.k <= cache_entries:
            self._table = self._user_table(history)

    def _user_table(self, h: History, chunk: int = 1 << 16) -> np.ndarray:
        """Contexts of every user with history (rows of users without: zeros). Shape (U, K)."""
        table = np.zeros((h.n_users, self.k), dtype=np.int64)
        known = np.flatnonzero(h.lengths > 0)
        for a in range(0, len(known), chunk):
            u = known[a:a + chunk]
            table[u] = self._from_spans(h.items, h.indptr[u], h.indptr[u + 1])
        return table

    @classmethod
    def from_manifest(cls, manifest: dict, history: History | None = None, max_items: int = 4096,
                      types: np.ndarray | None = None) -> HostSampler:
        """The sampler a bundle's model was trained with (K, N, padding, n_recent; an attention
        design's meta words: its ``aggregation`` record, ``types`` aligned with the history)."""
        model = manifest["model"]
        return cls(int(model["k"]), int(model["n_items"]), Padding.from_manifest(manifest),
                   model.get("n_recent"), history, max_items, attention=model.get("aggregation"), types=types)

    @property
    def n_users(self) -> int:
        return 0 if self.history is None else self.history.n_users

    @property
    def n_types(self) -> int:
        """Behaviour types the design knows (1 for a design without an attention layer)."""
        return int(self.attention["n_types"]) if self.attention is not None else 1

    def _check_history_types(self, history: History) -> None:
        """An attention design reads each history item's behaviour type: refuse a history
        without types (a file written before them) or with types the design has no bias for."""
        if self.types is None:
            raise FpgarecError(f"{history.source}: no behaviour types, and this attention design reads one per "
                               "item (view, like, comment); rewrite the history with `fpgarec serve BUNDLE "
                               "--history DATA --save-history FILE`")
        if self.types.size and int(self.types.max()) >= self.n_types:
            raise FpgarecError(f"{history.source}: behaviour type {int(self.types.max())} outside the design's "
                               f"{self.n_types} types (0..{self.n_types - 1})")

    def check_types(self, types, n: int) -> list[int]:
        """A new user's behaviour types (one per item, 0..n_types-1) as ints, else raise
        :class:`QueryTypeError` / :class:`QueryError` naming ``types``."""
        if not isinstance(types, (list, tuple)):
            raise QueryTypeError(f"types must be a list of integers, got {type(types).__name__}")
        if len(types) != n:
            raise QueryError(f"types has {len(types)} entries, items {n}: give one type per item")
        for t in types:
            if isinstance(t, bool) or not isinstance(t, numbers.Integral):
                raise QueryTypeError(f"types must be integers, found {type(t).__name__}")
            if not 0 <= t < self.n_types:
                raise QueryError(f"behaviour type {t} outside the design's {self.n_types} types "
                                 f"(0..{self.n_types - 1})")
        return [int(t) for t in types]

    # -------------------------------------------------------------------------- checks
    def check_user(self, user) -> int:
        """``user`` as an int if the history knows it (at least one item), else raise."""
        if isinstance(user, bool) or not isinstance(user, numbers.Integral):
            raise QueryTypeError(f"user_id must be an integer, got {type(user).__name__}")
        user = int(user)
        if self.history is None:
            raise UnknownUserError("no user history is loaded: send the user's items instead")
        if not 0 <= user < self.history.n_users or self.history.lengths[user] == 0:
            raise UnknownUserError(f"unknown user {user} (known: 0..{self.history.n_users - 1} with history)")
        return user

    def check_items(self, items) -> list[int]:
        """An item list (oldest first) as a list of ints after range and length checks."""
        if not isinstance(items, (list, tuple, np.ndarray)):
            raise QueryTypeError(f"items must be a list of integers, got {type(items).__name__}")
        n = len(items)
        if n == 0:
            raise QueryError("items is empty: at least one item id is needed")
        if n > self.max_items:
            raise QueryError(f"items has {n} ids, at most {self.max_items} are accepted")
        if isinstance(items, np.ndarray):
            if not np.issubdtype(items.dtype, np.integer):
                raise QueryTypeError("items must be integers")
            items = items.tolist()
        hi = self.n_items
        for x in items:
            if type(x) is not int:
                if isinstance(x, bool) or not isinstance(x, numbers.Integral):
                    raise QueryTypeError(f"items must be integers, found {type(x).__name__}")
            if not 0 <= x < hi:
                raise QueryError(f"item id {x} out of range [0, {hi})")
        return list(items)

    # ------------------------------------------------------------------------ sampling
    def _from_spans(self, flat: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                    flat_types: np.ndarray | None = None) -> np.ndarray:
        """K slots of each sequence ``flat[starts[b]:ends[b]]`` (non-empty); ``flat_types``:
        the behaviour types aligned with ``flat`` (attention designs; None: the history's
        types when ``flat`` is the history, else 0). Shapes: flat (nnz,), starts/ends (B,) int64
        -> (B, K) int64."""
        total = ends - starts
        length = np.minimum(total, self.k)
        pos = self._offsets[length - 1]
        pos += (ends - length)[:, None]
        if self.n_recent is not None:
            li = np.flatnonzero(total > self.k)
            if li.size:
                n_old = self.k - self.n_recent
                older = self._old_j * (total[li] - self.n_recent)[:, None]
                older //= n_old
                older += starts[li, None]
                pos[li, :n_old] = older
                pos[li, n_old:] = ends[li, None] + self._recent_j
        ctx = flat[pos]
        if self._any_pad:
            short = length < self.k
            if short.any():
                ctx[self._pad[length - 1]] = self.padding.null_id
        if self.attention is not None:
            if flat_types is None and self.types is not None and self.history is not None and flat is self.history.items:
                flat_types = self.types
            return self._meta_words(ctx, pos, ends, length, flat_types)
        return ctx

    def _meta_words(self, ctx: np.ndarray, pos: np.ndarray, ends: np.ndarray, length: np.ndarray,
                    flat_types: np.ndarray | None) -> np.ndarray:
        """An attention design's input: id | type << id_bits | bucket << (id_bits + type_bits)
        per slot. The bucket of a slot ``rank`` places before the sequence's end (0: the most
        recent) is the last r with ``bucket_edges[r] <= rank`` (the training's recency buckets,
        :func:`fpgarec.data.sampler.recency_bucket`); the type from ``flat_types`` (the
        history's types, a new user's given types; 0, a view, where none are given). Null slots
        carry type 0, bucket 0. Shapes: (B, K) -> (B, K) int64."""
        a = self.attention
        ib, tb = int(a["id_bits"]), int(a["type_bits"])
        bucket = np.searchsorted(np.asarray(a["bucket_edges"], np.int64), ends[:, None] - 1 - pos, side="right") - 1
        types = np.zeros_like(ctx) if flat_types is None else flat_types[pos]
        null = np.arange(self.k)[None, :] >= length[:, None] if self._any_pad else np.zeros_like(ctx, bool)
        bucket[null], types[null] = 0, 0
        return ctx | (types << ib) | (bucket << (ib + tb))

    def users(self, users) -> np.ndarray:
        """Context ids of known users. Shapes: (B,) -> (B, K) int64. Unknown users raise."""
        if self.history is None:
            raise UnknownUserError("no user history is loaded: send the user's items instead")
        u = np.asarray(users, dtype=np.int64).reshape(-1)
        h = self.history
        if u.size and (u.min() < 0 or u.max() >= h.n_users):
            raise UnknownUserError(f"user ids must lie in [0, {h.n_users})")
        empty = h.lengths[u] == 0
        if empty.any():
            raise UnknownUserError(f"user {int(u[np.argmax(empty)])} has no history")
        if self._table is not None:
            return self._table[u]
        return self._from_spans(h.items, h.indptr[u], h.indptr[u + 1])

    def items(self, item_lists) -> np.ndarray:
        """Context ids of new users from their item lists (each oldest first, checked with
        :meth:`check_items`). Shapes: B lists -> (B, K) int64."""
        lists = [self.check_items(x) for x in item_lists]
        return self._items_unchecked(lists)

    def _items_unchecked(self, lists: list) -> np.ndarray:
        if not lists:
            return np.zeros((0, self.k), dtype=np.int64)
        lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        ends = np.cumsum(lens)
        flat = np.fromiter((i for x in lists for i in x), dtype=np.int64, count=int(ends[-1]))
        flat_types = None
        if self.attention is not None and any(getattr(x, "types", None) is not None for x in lists):
            flat_types = np.fromiter((t for x in lists for t in (getattr(x, "types", None) or [0] * len(x))),
                                     dtype=np.int64, count=int(ends[-1]))
        return self._from_spans(flat, ends - lens, ends, flat_types)

    def contexts(self, queries: list) -> np.ndarray:
        """Mixed batch: each query is a user id (int) or an item list, already checked
        (:meth:`check_user`, :meth:`check_items`). Shapes: B queries -> (B, K) int64."""
        is_user = np.fromiter((isinstance(q, int) for q in queries), dtype=bool, count=len(queries))
        if is_user.all():
            return self.users(np.fromiter(queries, dtype=np.int64, count=len(queries)))
        out = np.empty((len(queries), self.k), dtype=np.int64)
        if is_user.any():
            out[is_user] = self.users(np.array([q for q in queries if isinstance(q, int)], dtype=np.int64))
        out[~is_user] = self._items_unchecked([q for q in queries if not isinstance(q, int)])
        return out
