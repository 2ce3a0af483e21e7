"""The interaction data set: ids mapped to contiguous indices, item text, knowledge-graph edges.

A data folder holds RecBole atomic files sharing one stem: ``<name>.inter`` (required, with
``user_id``, ``item_id`` and ``timestamp`` columns; a ``rating`` float column is read where
present) and optionally ``<name>.item`` (item side information; its text columns become the
language-model input), ``<name>.user``, ``<name>.kg`` (``head_id relation_id tail_id``
triples) and ``<name>.link`` (``item_id entity_id``).

The default folder is MovieLens-100k as shipped inside the installed ``recbole`` package; it is
read from there and never copied into the repository (its licence forbids redistribution).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.data.atomic import AtomicTable, read_atomic
from fpgarec.errors import DataFormatError

log = logging.getLogger(__name__)

#: item columns that are not text, whatever their type.
_NON_TEXT_ITEM_COLUMNS = {"item_id"}


def default_data_dir() -> Path:
    """MovieLens-100k inside the installed ``recbole`` package (not imported, only located)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DataFormatError(
            "recbole", "the recbole package is not installed; run `make venv` or pass --data PATH"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"


@dataclass
class KnowledgeGraph:
    """Item-entity edges derived from ``.link`` + ``.kg``.

    Every item linked to entity ``e`` gets an edge to each entity that shares a triple with
    ``e`` (as head or tail), and to ``e`` itself. Entities are numbered 0..n_entities-1.

    Shapes: ``item`` and ``entity`` are int64 arrays of shape (n_edges,).
    """

    item: np.ndarray
    entity: np.ndarray
    n_entities: int
    n_relations: int
    n_triples: int
    n_linked_items: int


@dataclass
class InteractionData:
    """A whole data set with contiguous indices.

    Attributes:
        name: the file stem (e.g. ``ml-100k``).
        folder: where it was read from.
        user_tokens / item_tokens: index -> original id.
        user / item / timestamp: one entry per interaction, shape (n_interactions,), sorted by
            (user, timestamp, original line order).
        item_text: one string per item index, the language-model input (may be empty).
        kg: knowledge-graph edges, or None where the folder has no ``.kg``/``.link``.
        rating: the ``.inter`` file's ``rating`` column aligned with ``user``/``item``, shape
            (n_interactions,) float64, or None where the file has no float ``rating`` column.
    """

    name: str
    folder: Path
    user_tokens: list[str]
    item_tokens: list[str]
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    item_text: list[str]
    kg: KnowledgeGraph | None
    rating: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_tokens)

    @property
    def n_items(self) -> int:
        return len(self.item_tokens)

    @property
    def n_interactions(self) -> int:
        return len(self.user)

    def summary(self) -> str:
        kg = (
            f", KG {self.kg.n_triples} triples / {self.kg.n_relations} relations "
            f"linked to {self.kg.n_linked_items} items"
            if self.kg
            else ""
        )
        return (
            f"{self.name}: {self.n_users} users, {self.n_items} items, "
            f"{self.n_interactions} interactions{kg}"
        )


def _raw_fields(table: AtomicTable, column: str) -> list[str]:
    """``column``'s values as the file spells them, one per row of ``table`` (the atomic reader
    strips token values; the id checks need the surrounding whitespace)."""
    raw = table.path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    chunks = raw.split(b"\n")
    col = list(table.types).index(column)
    out = []
    for lineno in table.line_numbers.tolist():
        chunk = chunks[lineno - 1].rstrip(b"\r")
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            line = chunk.decode("latin-1")
        out.append(line.split("\t")[col])
    return out


def _check_timestamps(inter: AtomicTable) -> None:
    """Refuse a missing, not-a-number or infinite timestamp, naming its line."""
    ts = inter.columns["timestamp"]
    bad = np.flatnonzero(~np.isfinite(ts))
    if len(bad) == 0:
        return
    row = int(bad[0])
    value = _raw_fields(inter, "timestamp")[row]
    if not value.strip():
        message = "empty timestamp"
    elif np.isnan(ts[row]):
        message = f"timestamp {value.strip()!r} is not a number"
    else:
        message = f"timestamp {value.strip()!r} is not finite"
    raise DataFormatError(inter.path, message, int(inter.line_numbers[row]))


def _check_ids(table: AtomicTable, *columns: str) -> None:
    """Refuse an empty (or whitespace-only) id, naming its line, and two ids of one column that
    differ only by surrounding whitespace ("4" and "4 "), naming both: the reader strips ids,
    so they would silently become one."""
    for column in columns:
        values = table.columns[column]
        for i, tok in enumerate(values):
            if not tok:
                raise DataFormatError(table.path, f"empty {column} (blank or whitespace only)",
                                      int(table.line_numbers[i]))
        raw = _raw_fields(table, column)
        if raw == values:
            continue
        spelling: dict[str, str] = {}
        for i, (tok, written) in enumerate(zip(values, raw, strict=True)):
            first = spelling.setdefault(tok, written)
            if first != written:
                raise DataFormatError(
                    table.path, f"{column}s {first!r} and {written!r} differ only by surrounding whitespace; "
                    "make them one id or two different ids", int(table.line_numbers[i]))


def _find_stem(folder: Path) -> str:
    if not folder.is_dir():
        raise DataFormatError(folder, "data folder not found")
    inters = sorted(folder.glob("*.inter"))
    if not inters:
        raise DataFormatError(folder, "no .inter file in the data folder")
    if len(inters) > 1:
        raise DataFormatError(folder, f"more than one .inter file: {[p.name for p in inters]}")
    return inters[0].stem


def _vocab(tokens: list[str], table: AtomicTable, column: str) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        if tok in vocab:
            raise DataFormatError(
                table.path, f"duplicate {column} {tok!r}", int(table.line_numbers[i])
            )
        vocab[tok] = len(vocab)
    return vocab


def _index(tokens: list[str], vocab: dict[str, int] | None, table: AtomicTable, column: str):
    """Map tokens to indices. With a fixed vocab, an unknown token is an error naming its line."""
    if vocab is None:
        uniq, idx = np.unique(np.asarray(tokens, dtype=object).astype(str), return_inverse=True)
        # order the vocabulary numerically where every token is an integer (ml-100k ids)
        if all(t.isdigit() for t in uniq):
            order = np.argsort(uniq.astype(np.int64), kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            return [str(t) for t in uniq[order]], rank[idx].astype(np.int64)
        return [str(t) for t in uniq], idx.astype(np.int64)
    out = np.empty(len(tokens), dtype=np.int64)
    for i, tok in enumerate(tokens):
        j = vocab.get(tok)
        if j is None:
            raise DataFormatError(
                table.path,
                f"unknown {column} {tok!r} (not in the {column.split('_')[0]} file)",
                int(table.line_numbers[i]),
            )
        out[i] = j
    return list(vocab), out


def _item_text(table: AtomicTable | None, item_vocab: dict[str, int], n_items: int) -> list[str]:
    """Join an item's text columns: title, year and genres for MovieLens."""
    texts = [""] * n_items
    if table is None:
        return texts
    text_cols = [
        c for c, t in table.types.items() if t in ("token", "token_seq") and c not in _NON_TEXT_ITEM_COLUMNS
    ]
    ids = table.columns["item_id"]
    for row, tok in enumerate(ids):
        parts = []
        for c in text_cols:
            v = table.columns[c][row]
            v = " ".join(v) if isinstance(v, list) else v
            if v:
                parts.append(f"{c.replace('_', ' ')}: {v}")
        texts[item_vocab[tok]] = "; ".join(parts)
    return texts


def read_kg_tables(folder: Path, stem: str) -> tuple[AtomicTable, AtomicTable] | None:
    """(link, kg) atomic tables of a folder, columns checked; None without ``.kg``/``.link``."""
    kg_path, link_path = folder / f"{stem}.kg", folder / f"{stem}.link"
    if not (kg_path.exists() and link_path.exists()):
        return None
    link = read_atomic(link_path)
    link.require("item_id", "entity_id")
    kg = read_atomic(kg_path)
    kg.require("head_id", "relation_id", "tail_id")
    return link, kg


def _knowledge_graph(folder: Path, stem: str, item_vocab: dict[str, int]) -> KnowledgeGraph | None:
    tables = read_kg_tables(folder, stem)
    if tables is None:
        return None
    link, kg = tables
    ent_vocab: dict[str, int] = {}

    def ent(tok: str) -> int:
        return ent_vocab.setdefault(tok, len(ent_vocab))

    item_of_entity: dict[int, list[int]] = {}
    for tok, e in zip(link.columns["item_id"], link.columns["entity_id"], strict=True):
        if tok in item_vocab:  # links to items without interactions are ignored
            item_of_entity.setdefault(ent(e), []).append(item_vocab[tok])
    heads = np.fromiter((ent(h) for h in kg.columns["head_id"]), dtype=np.int64)
    tails = np.fromiter((ent(t) for t in kg.columns["tail_id"]), dtype=np.int64)
    n_rel = len(set(kg.columns["relation_id"]))
    items, ents = [], []
    for e, its in item_of_entity.items():
        for it in its:
            items.append(it)
            ents.append(e)
    for a, b in ((heads, tails), (tails, heads)):
        for e, other in zip(a.tolist(), b.tolist(), strict=True):
            for it in item_of_entity.get(e, ()):
                items.append(it)
                ents.append(other)
    pairs = np.unique(np.stack([np.asarray(items), np.asarray(ents)], axis=1), axis=0)
    linked = len({i for its in item_of_entity.values() for i in its})
    return KnowledgeGraph(
        item=pairs[:, 0].astype(np.int64),
        entity=pairs[:, 1].astype(np.int64),
        n_entities=len(ent_vocab),
        n_relations=n_rel,
        n_triples=len(heads),
        n_linked_items=linked,
    )


def load_interactions(folder: Path | str | None = None) -> InteractionData:
    """Read a RecBole-format folder (default: MovieLens-100k from the recbole package).

    Raises:
        DataFormatError: naming the file and line of the first problem found.
    """
    folder = Path(folder) if folder is not None else default_data_dir()
    stem = _find_stem(folder)
    inter = read_atomic(folder / f"{stem}.inter")
    inter.require("user_id", "item_id", "timestamp")
    if inter.types["timestamp"] != "float":
        raise DataFormatError(inter.path, "column 'timestamp' must have type float", 1)
    if len(inter) == 0:
        raise DataFormatError(inter.path, "no interactions")
    ts = inter.columns["timestamp"]
    _check_timestamps(inter)
    _check_ids(inter, "user_id", "item_id")

    item_table = None
    item_vocab = user_vocab = None
    if (folder / f"{stem}.item").exists():
        item_table = read_atomic(folder / f"{stem}.item")
        item_table.require("item_id")
        _check_ids(item_table, "item_id")
        item_vocab = _vocab(item_table.columns["item_id"], item_table, "item_id")
    if (folder / f"{stem}.user").exists():
        user_table = read_atomic(folder / f"{stem}.user")
        user_table.require("user_id")
        _check_ids(user_table, "user_id")
        user_vocab = _vocab(user_table.columns["user_id"], user_table, "user_id")

    item_tokens, item = _index(inter.columns["item_id"], item_vocab, inter, "item_id")
    user_tokens, user = _index(inter.columns["user_id"], user_vocab, inter, "user_id")
    order = np.lexsort((np.arange(len(user)), ts, user))
    rating = None
    if inter.types.get("rating") == "float":
        rating = np.asarray(inter.columns["rating"], dtype=np.float64)[order]
    item_vocab = {t: i for i, t in enumerate(item_tokens)}
    data = InteractionData(
        name=stem,
        folder=folder,
        user_tokens=user_tokens,
        item_tokens=item_tokens,
        user=user[order],
        item=item[order],
        timestamp=ts[order],
        item_text=_item_text(item_table, item_vocab, len(item_tokens)),
        kg=_knowledge_graph(folder, stem, item_vocab),
        rating=rating,
    )
    log.info("loaded %s", data.summary())
    return data


#: item text parts that hold a title, first found wins (``movie title``: MovieLens)
TITLE_PARTS = ("movie title", "title", "name")


def item_titles(data: InteractionData) -> list[str] | None:
    """One title per item from its text (:attr:`InteractionData.item_text`): the first of
    :data:`TITLE_PARTS`, with `` (year)`` where a ``release year`` part is present (MovieLens:
    "Kolya (1996)"); "" for an item without one. None where no item has a title."""
    out = []
    for text in data.item_text:
        parts = dict(p.split(": ", 1) for p in text.split("; ") if ": " in p) if text else {}
        title = next((parts[k] for k in TITLE_PARTS if parts.get(k)), "")
        if title and parts.get("release year"):
            title = f"{title} ({parts['release year']})"
        out.append(title)
    return out if any(out) else None


def subsample_users(data: InteractionData, n_users: int, seed: int = 0) -> InteractionData:
    """A seeded subsample of ``n_users`` users with all their interactions (for quick runs).

    Items nobody in the sample interacted with are dropped and indices are renumbered; the
    knowledge graph is dropped, the ratings are kept. The result is labelled
    ``<name>-sub<n_users>``.
    """
    if n_users >= data.n_users:
        return data
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(data.n_users, size=n_users, replace=False))
    keep = np.isin(data.user, users)
    items = np.unique(data.item[keep])
    user_map = np.full(data.n_users, -1, dtype=np.int64)
    user_map[users] = np.arange(len(users))
    item_map = np.full(data.n_items, -1, dtype=np.int64)
    item_map[items] = np.arange(len(items))
    return InteractionData(
        name=f"{data.name}-sub{n_users}",
        folder=data.folder,
        user_tokens=[data.user_tokens[u] for u in users],
        item_tokens=[data.item_tokens[i] for i in items],
        user=user_map[data.user[keep]],
        item=item_map[data.item[keep]],
        timestamp=data.timestamp[keep],
        item_text=[data.item_text[i] for i in items],
        kg=None,
        rating=None if data.rating is None else data.rating[keep],
    )
