"""Graphs over users, items and knowledge-graph entities, as normalised sparse adjacencies.

Node numbering: users ``[0, U)``, items ``[U, U + I)``, entities ``[U + I, U + I + E)``.
The symmetric normalisation of LightGCN is used:

    Â = D^{-1/2} A D^{-1/2},   A symmetric, binary; D the degree matrix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from fpgarec.data.dataset import KnowledgeGraph
from fpgarec.data.split import UserSequences


@dataclass
class GraphLayout:
    n_users: int
    n_items: int
    n_entities: int = 0

    @property
    def n_nodes(self) -> int:
        return self.n_users + self.n_items + self.n_entities


def useful_kg_edges(kg: KnowledgeGraph, min_items: int = 2) -> tuple[np.ndarray, np.ndarray, int]:
    """Item-entity edges restricted to entities shared by at least ``min_items`` items.

    An entity seen by one item only adds a leaf that carries no signal between items.
    Returns (item, entity, n_entities) with entities renumbered 0..n_entities-1.
    """
    counts = np.bincount(kg.entity, minlength=kg.n_entities)
    keep = counts[kg.entity] >= min_items
    ents, new_ids = np.unique(kg.entity[keep], return_inverse=True)
    return kg.item[keep], new_ids.astype(np.int64), len(ents)


def normalized_adjacency(
    train: UserSequences,
    n_items: int,
    kg_edges: tuple[np.ndarray, np.ndarray, int] | None = None,
) -> tuple[torch.Tensor, GraphLayout]:
    """Â for the user-item graph, plus item-entity edges when ``kg_edges`` is given.

    Shapes: returns a sparse CSR float32 tensor (n_nodes, n_nodes) and its layout.
    """
    u, i = train.pairs()
    layout = GraphLayout(train.n_users, n_items, kg_edges[2] if kg_edges else 0)
    rows = [u, layout.n_users + i]
    cols = [layout.n_users + i, u]
    if kg_edges is not None:
        ki, ke, _ = kg_edges
        rows += [layout.n_users + ki, layout.n_users + n_items + ke]
        cols += [layout.n_users + n_items + ke, layout.n_users + ki]
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    pairs = np.unique(np.stack([r, c]), axis=1)
    deg = np.bincount(pairs[0], minlength=layout.n_nodes).astype(np.float64)
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    vals = inv[pairs[0]] * inv[pairs[1]]
    with warnings.catch_warnings():  # torch calls sparse CSR "beta"; the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        adj = torch.sparse_coo_tensor(
            torch.from_numpy(pairs), torch.from_numpy(vals.astype(np.float32)), (layout.n_nodes,) * 2,
            check_invariants=True,
        ).coalesce()
        return adj.to_sparse_csr(), layout


def symmetric_relation_adjacency(
    src: np.ndarray, dst: np.ndarray, n_nodes: int
) -> tuple[torch.Tensor, np.ndarray]:
    """The normalised adjacency Â_r of ONE relation r, its degrees counted in r alone.

    The edges ``(src[k], dst[k])`` (node ids in [0, n_nodes)) are made undirected and
    deduplicated into a binary A_r, then

        Â_r = D_r^{-1/2} A_r D_r^{-1/2},   (D_r)_vv = |N_r(v)|  (0 rows/columns where D_r = 0)

    Self-loops are dropped (a relation links distinct nodes). For the user-item relation over
    users [0, U) and items [U, U + I) this is exactly the teacher's Â
    (:func:`normalized_adjacency` without ``kg_edges``); the item-entity and user-user
    relations get their own degrees, so adding a relation never rescales another one (which
    plainly merging the KG into Â does).

    Shapes: src, dst (E,) int -> (sparse CSR float32 (n_nodes, n_nodes), degrees (n_nodes,)).
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    keep = src != dst
    r = np.concatenate([src[keep], dst[keep]])
    c = np.concatenate([dst[keep], src[keep]])
    pairs = np.unique(np.stack([r, c]), axis=1) if len(r) else np.zeros((2, 0), dtype=np.int64)
    deg = np.bincount(pairs[0], minlength=n_nodes).astype(np.float64)
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    vals = inv[pairs[0]] * inv[pairs[1]]
    return _csr(pairs, vals, (n_nodes, n_nodes)), deg


def bipartite_relation_adjacency(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two directed blocks of Â_r for a bipartite relation r between node sets P and Q.

    Edges ``(rows[k], cols[k])`` (local ids: p in [0, n_rows), q in [0, n_cols)) are
    deduplicated into a binary B_r (n_rows, n_cols); with degrees counted in r alone,

        Â_r = D_r^{-1/2} [[0, B_r], [B_r^T, 0]] D_r^{-1/2},
        (Â_{P←Q})_pq = (Â_{Q←P})_qp = 1 / sqrt(|N_r(p)| |N_r(q)|)  on each edge,

    the same numbers :func:`symmetric_relation_adjacency` gives on the union of the two node
    sets, stored as the two off-diagonal blocks only (no zero rows for the other node type).

    Shapes: rows, cols (E,) int -> (Â_{P←Q} (n_rows, n_cols), Â_{Q←P} (n_cols, n_rows)),
    sparse CSR float32.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    pairs = np.unique(np.stack([rows, cols]), axis=1) if len(rows) else np.zeros((2, 0), np.int64)
    dr = np.bincount(pairs[0], minlength=n_rows).astype(np.float64)
    dc = np.bincount(pairs[1], minlength=n_cols).astype(np.float64)
    vals = (dr[pairs[0]] * dc[pairs[1]]) ** -0.5
    return _csr(pairs, vals, (n_rows, n_cols)), _csr(pairs[::-1], vals, (n_cols, n_rows))


def _csr(pairs: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """A CSR tensor from COO (2, nnz) indices and values."""
    with warnings.catch_warnings():  # torch calls sparse CSR "beta"; the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        adj = torch.sparse_coo_tensor(
            torch.from_numpy(np.ascontiguousarray(pairs, dtype=np.int64)),
            torch.from_numpy(np.asarray(vals, dtype=np.float32)), shape,
            check_invariants=True,
        ).coalesce()
        return adj.to_sparse_csr()


@dataclass
class TypedKnowledgeGraph:
    """Item-entity edges grouped by knowledge-graph relation type.

    ``names[r]`` labels relation group r (inverse relations such as ``film.film.actor`` /
    ``film.actor.film`` are one group); ``item[r]``, ``entity[r]`` are its edges, shape (E_r,)
    int64, entities numbered 0..n_entities-1 across all groups (an entity may appear in
    several groups).
    """

    names: list[str]
    item: list[np.ndarray]
    entity: list[np.ndarray]
    n_entities: int

    @property
    def n_edges(self) -> int:
        return int(sum(len(x) for x in self.item))


def typed_kg_edges(
    folder, stem: str, item_tokens: list[str], min_items: int = 2, merge_jaccard: float = 0.5
) -> TypedKnowledgeGraph | None:
    """Item-entity edges per relation type, read from ``<stem>.link`` + ``<stem>.kg``.

    As :class:`~fpgarec.data.dataset.KnowledgeGraph`: item i linked to entity e gets an edge to
    every entity x sharing a triple (e, r, x) or (x, r, e), labelled with relation r. Relations
    whose edge sets overlap with Jaccard >= ``merge_jaccard`` are merged (a relation and its
    inverse give the same edges). Within each group only entities reached by at least
    ``min_items`` items are kept (a leaf carries no signal between items, as in
    :func:`useful_kg_edges`). None when the folder has no ``.kg``/``.link``.
    """
    from pathlib import Path

    from fpgarec.data.dataset import read_kg_tables

    tables = read_kg_tables(Path(folder), stem)
    if tables is None:
        return None
    link, kg = tables
    vocab = {t: i for i, t in enumerate(item_tokens)}
    items_of: dict[str, list[int]] = {}
    for tok, e in zip(link.columns["item_id"], link.columns["entity_id"], strict=True):
        if tok in vocab:
            items_of.setdefault(e, []).append(vocab[tok])
    by_rel: dict[str, set[tuple[int, str]]] = {}
    cols = kg.columns
    triples = zip(cols["head_id"], cols["relation_id"], cols["tail_id"], strict=True)
    for h, r, t in triples:
        for film, other in ((h, t), (t, h)):
            for it in items_of.get(film, ()):
                by_rel.setdefault(r, set()).add((it, other))
    # merge relations with (nearly) the same edges: greedy, largest first, deterministic
    groups: list[tuple[list[str], set[tuple[int, str]]]] = []
    for r in sorted(by_rel, key=lambda r: (-len(by_rel[r]), r)):
        for names, edges in groups:
            inter = len(edges & by_rel[r])
            if inter / len(edges | by_rel[r]) >= merge_jaccard:
                names.append(r)
                edges |= by_rel[r]
                break
        else:
            groups.append(([r], set(by_rel[r])))
    ent_vocab: dict[str, int] = {}
    names_out, items_out, ents_out = [], [], []
    for names, edges in groups:
        pairs = sorted(edges)
        ents = [e for _, e in pairs]
        _, inv, counts = np.unique(np.asarray(ents, str), return_inverse=True, return_counts=True)
        keep = counts[inv] >= min_items
        if not keep.any():
            continue
        it = np.asarray([i for i, _ in pairs], dtype=np.int64)[keep]
        kept = (e for e, k in zip(ents, keep, strict=True) if k)
        en = np.fromiter((ent_vocab.setdefault(e, len(ent_vocab)) for e in kept), dtype=np.int64)
        names_out.append("+".join(sorted(names)))
        items_out.append(it)
        ents_out.append(en)
    return TypedKnowledgeGraph(names_out, items_out, ents_out, len(ent_vocab))
