"""The data set's own ids <-> the internal indices the design computes with, numpy only.

Every interface (the service, :meth:`fpgarec.runtime.accelerator.Accelerator.recommend`,
``fpgarec explain``, deploy's ``run.py``) takes and returns the data set's user and item ids:
the tokens of its interaction file (MovieLens ``"196"``, ``"242"``; a RecBole data set's
``"customer_17"``, ``"sku-0001"``). Internal indices (users 0 .. U-1, items 0 .. N-1, the order
:func:`fpgarec.data.dataset.load_interactions` assigns) stay inside.

An :class:`IdMap` holds both directions for users and items and, where the data set's item file
has them, one title per item (MovieLens: ``"Kolya (1996)"``). It travels in the history file
(:meth:`fpgarec.runtime.sampler.History.save`) as string arrays ``user_ids`` (U,), ``item_ids``
(N,) and, optionally, ``item_titles`` (N,) (read with ``allow_pickle=False``).

History files written before the maps existed (``fpgarec-history/1``) get an *internal* map
(:meth:`IdMap.internal`): ids are the decimal strings of the internal indices, and a warning
says so once at load (rewrite the file with ``fpgarec serve BUNDLE --history DATA
--save-history FILE`` to get the data set's ids).
"""

from __future__ import annotations

import logging
import numbers

import numpy as np

from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)


class UnknownIdError(FpgarecError):
    """A user or item id the data set does not have (the message names the kind and the id)."""

    def __init__(self, kind: str, token):
        super().__init__(f"unknown {kind} id {token!r}")
        self.kind = kind
        self.token = token


class IdTypeError(FpgarecError):
    """An id of the wrong type (the data set's ids are strings)."""


def _strings(values, what: str, source: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise FpgarecError(f"{source}: {what} must be a 1-D array of strings")
    if arr.size == 0:
        return np.zeros(0, dtype="<U1")
    if arr.dtype.kind not in "UO":
        raise FpgarecError(f"{source}: {what} must be strings, got {arr.dtype}")
    return arr.astype(str)


class IdMap:
    """User and item ids of one data set, both directions, with optional item titles.

    ``users`` (U,) and ``items`` (N,): index -> the data set's id (distinct, non-empty strings; two
    ids that differ only by surrounding whitespace, "4" and "4 ", are refused, never merged);
    ``titles``: (N,) one per item ("" where an item has none), or None; ``internal``: the ids are
    the decimal strings of the indices (a history file without maps).
    """

    def __init__(self, users, items, titles=None, internal: bool = False, source: str = "memory"):
        self.source = source
        self.users = _strings(users, "user_ids", source)
        self.items = _strings(items, "item_ids", source)
        self.titles = None if titles is None else _strings(titles, "item_titles", source)
        if self.titles is not None and len(self.titles) != len(self.items):
            raise FpgarecError(f"{source}: {len(self.titles)} item titles for {len(self.items)} items")
        self.internal = bool(internal)
        self._user_index = self._index(self.users, "user")
        self._item_index = self._index(self.items, "item")

    def _index(self, tokens: np.ndarray, kind: str) -> dict[str, int]:
        index = {t: i for i, t in enumerate(tokens.tolist())}
        if len(index) != len(tokens):
            uniq, counts = np.unique(tokens, return_counts=True)
            raise FpgarecError(f"{self.source}: duplicate {kind} id {str(uniq[np.argmax(counts > 1)])!r}")
        if "" in index:
            raise FpgarecError(f"{self.source}: an empty {kind} id (index {index['']})")
        stripped: dict[str, str] = {}
        for token in index:
            if token.strip() == token:
                continue
            if not token.strip():
                raise FpgarecError(f"{self.source}: a whitespace-only {kind} id {token!r} (index {index[token]})")
            other = stripped.setdefault(token.strip(), token)
            other = token.strip() if token.strip() in index else other
            if other != token:  # "4 " beside "4" or " 4": refused, never merged
                raise FpgarecError(f"{self.source}: {kind} ids {other!r} and {token!r} differ only by surrounding "
                                   "whitespace")
        return index

    @classmethod
    def internal_ids(cls, n_users: int, n_items: int, source: str = "memory") -> IdMap:
        """Ids that are the indices themselves, as decimal strings (no data set's ids known)."""
        return cls(np.arange(n_users).astype(str), np.arange(n_items).astype(str), internal=True, source=source)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def kind(self) -> str:
        """``"dataset"`` (the data set's own ids) or ``"internal"`` (indices as strings)."""
        return "internal" if self.internal else "dataset"

    # ------------------------------------------------------------------ id -> index
    def _token(self, token, kind: str) -> str:
        if isinstance(token, str):
            return token
        if self.internal and isinstance(token, numbers.Integral) and not isinstance(token, bool):
            return str(int(token))
        raise IdTypeError(f"{kind} ids are the data set's ids, strings: got {type(token).__name__} {token!r}")

    def user_index(self, token) -> int:
        """The index of user ``token``; :class:`UnknownIdError` naming it if there is none."""
        i = self._user_index.get(self._token(token, "user"))
        if i is None:
            raise UnknownIdError("user", token)
        return i

    def item_index(self, token) -> int:
        """The index of item ``token``; :class:`UnknownIdError` naming it if there is none."""
        i = self._item_index.get(self._token(token, "item"))
        if i is None:
            raise UnknownIdError("item", token)
        return i

    def user_indices(self, tokens) -> np.ndarray:
        """Shapes: (B,) ids -> (B,) int64."""
        return np.fromiter((self.user_index(t) for t in tokens), dtype=np.int64)

    def item_indices(self, tokens) -> list[int]:
        """An item list's indices (order kept)."""
        return [self.item_index(t) for t in tokens]

    # ------------------------------------------------------------------ index -> id
    def user_ids(self, indices) -> list[str]:
        return self.users[np.asarray(indices, dtype=np.int64)].tolist()

    def item_ids(self, indices) -> list[str]:
        """Ids of item indices; negative indices (empty slots) are dropped."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return self.items[idx[idx >= 0]].tolist()

    def title(self, index: int) -> str | None:
        """Item ``index``'s title, None where the data set has none."""
        if self.titles is None:
            return None
        return str(self.titles[index]) or None

    # ------------------------------------------------------------------ files
    def arrays(self) -> dict[str, np.ndarray]:
        """The maps as the history file's string arrays (none for an internal map)."""
        if self.internal:
            return {}
        out = {"user_ids": self.users, "item_ids": self.items}
        if self.titles is not None:
            out["item_titles"] = self.titles
        return out

    @classmethod
    def from_arrays(cls, arrays, n_users: int, n_items: int, source: str) -> IdMap | None:
        """The map stored in a history file's arrays (``arrays``: a mapping such as an open
        ``np.load``), checked against its U and N; None where the file has no maps."""
        names = set(arrays.keys()) if hasattr(arrays, "keys") else set(arrays.files)
        if not names & {"user_ids", "item_ids"}:
            return None
        missing = {"user_ids", "item_ids"} - names
        if missing:
            raise FpgarecError(f"{source}: has {sorted(names & {'user_ids', 'item_ids'})} but not {sorted(missing)}")
        ids = cls(arrays["user_ids"], arrays["item_ids"],
                  arrays["item_titles"] if "item_titles" in names else None, source=source)
        if ids.n_users != n_users or ids.n_items != n_items:
            raise FpgarecError(f"{source}: id maps of {ids.n_users} users and {ids.n_items} items, the history "
                               f"{n_users} users and {n_items} items")
        return ids
