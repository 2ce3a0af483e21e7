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
