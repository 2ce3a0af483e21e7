"""Heterogeneous message passing: the hybrid teacher with relation-specific aggregation over
user-item, item-entity (knowledge graph) and user-user (social) edges.

Nodes: users u (U), items i (I), KG entities e (E). Relations:

* ``user-item`` (UI): the train interactions (the teacher's graph);
* ``kg:<type>``, one relation r per knowledge-graph relation type (actor, genre, director, ...;
  a relation and its inverse are one type), item-entity edges from
  :func:`fpgarec.data.graph.typed_kg_edges` (``kg="single"``: all types as one relation);
* ``user-user`` (UU): a social file (:mod:`fpgarec.data.social`), symmetric.

Each relation has its OWN normalised adjacency, degrees counted in that relation alone
(:func:`fpgarec.data.graph.symmetric_relation_adjacency`,
:func:`~fpgarec.data.graph.bipartite_relation_adjacency`):

    Â_r = D_r^{-1/2} A_r D_r^{-1/2},   (D_r)_vv = |N_r(v)|

so a knowledge-graph relation never rescales the user-item messages (merging the KG into one
Â, ``teacher_kg``, did). A KG relation is split into its directed halves Â_{I←E,r} (I, E) and
Â_{E←I,r} (E, I). One layer of relation-weighted LightGCN (an R-GCN whose per-relation
transform is a diagonal gate and which has no non-linearity):

    X_{U∪I}^{(l+1)} = Â_UI X_{U∪I}^{(l)}
                      + [ (Â_UU X_U^{(l)}) diag(g_UU) ; Σ_r (Â_{I←E,r} X_E^{(l)}) diag(g_r) ]
    X_E^{(l+1)}     = Σ_r Â_{E←I,r} X_I^{(l)}
    X = 1/(L+1) Σ_{l=0..L} X^{(l)}

with learned gates g_r, g_UU ∈ R^D (one weight per channel and relation), initialised to 0.
Layer 0 is the teacher's: x_u^{(0)} = e_u for users seen in training (0 otherwise), x_i^{(0)} =
e_i + W_2 σ(W_1 t_i), x_e^{(0)} = e_e (entity embeddings, initialised to 0). Entities always
receive their items' messages (they are auxiliary nodes, never scored); only the messages
INTO users and items are gated, so g_r = 0 switches relation r off exactly:

    all g = 0  ⇒  this model = the hybrid teacher (bipartite-only), the same scores.

A user is z_u = x_u + W_c mean_{k ≤ K} x_{c_k} (the teacher's read-out; x_u = 0 for a user
unseen in training unless social edges reach it), ŝ(u, i) = <z_u, x_i>, trained with the
teacher's BPR on "recent items -> later item" examples.

Social edges and the new-user split: a user's social ties are side information known at
signup, before any rating, so a new user's edges are used at TEST time: after training, the
user-user relation is rebuilt from every edge (:meth:`HeteroTeacher.use_social`), which gives
a new user a long-term vector x_u aggregated from its friends' (trained) vectors with the
trained gate. During training and validation only edges between training users are present,
so nothing about a new user shapes the weights or the early stopping.

Shapes: Â_UI (U + I, U + I), Â_UU (U, U), Â_{I←E,r} stacked (R·I, E), Σ_r Â_{E←I,r} (E, I),
all sparse CSR; X^{(l)} (U + I, D) and (E, D); gates (R, D) and (D,).

``fpgarec study hetero-comparison [--social FILE | --generate-social]`` trains the teacher and
this model on both splits of full MovieLens-100k and prints one JSON line (bipartite vs hetero
NDCG@10 on all, cold and new users); see docs/hetero.md. The recipe that trains it is
:func:`fpgarec.train.hetero.train_hetero`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fpgarec.data.graph import (
    GraphLayout,
    TypedKnowledgeGraph,
    bipartite_relation_adjacency,
    symmetric_relation_adjacency,
    typed_kg_edges,
    useful_kg_edges,
)
from fpgarec.data.social import SocialEdges
from fpgarec.data.split import UserSequences
from fpgarec.models.teacher import HybridTeacher

log = logging.getLogger(__name__)

#: the kinds of relation; the item-entity kind is one relation per KG type, named "kg:<type>".
RELATIONS = ("user-item", "item-entity", "user-user")


@dataclass
class HeteroGraph:
    """Per-relation normalised adjacencies over one node layout, stored as the blocks that
    carry messages (no all-zero rows).

    Attributes:
        layout: node counts (users U, items I, entities E).
        ui: Â_UI over users + items, (U + I, U + I): the teacher's Â, never gated.
        kg_names: the knowledge-graph relations r = 1..R (may be empty).
        kg_to_items: the R blocks Â_{I←E,r} stacked row-wise, (R·I, E): messages INTO items,
            each gated by g_r; None without a KG.
        kg_to_entities: Σ_r Â_{E←I,r}, (E, I): messages INTO entities, ungated; None without.
        uu: Â_UU, (U, U), gated by g_UU; None without social edges.
        edges: undirected edge count per relation.
    """

    layout: GraphLayout
    ui: torch.Tensor
    kg_names: list[str]
    kg_to_items: torch.Tensor | None
    kg_to_entities: torch.Tensor | None
    uu: torch.Tensor | None
    edges: dict[str, int]


def social_adjacency(social: SocialEdges | None, n_users: int, keep_user: np.ndarray | None = None):
    """(Â_UU (U, U) CSR, edge count) from the edges between kept users; (None, 0) without any.
    Shapes: keep_user (U,) bool or None (all users)."""
    if social is None:
        return None, 0
    if keep_user is not None:
        social = social.restricted_to(keep_user)
    if len(social) == 0:
        return None, 0
    adj, _ = symmetric_relation_adjacency(social.src, social.dst, n_users)
    return adj, len(social)


KG_MODES = ("typed", "single", "none")


def kg_relations(data, mode: str = "typed") -> TypedKnowledgeGraph | None:
    """The item-entity relations of ``data`` (an InteractionData): one per KG relation type
    (``typed``, :func:`typed_kg_edges`), all types as one relation (``single``,
    :func:`useful_kg_edges`, the edges ``teacher_kg`` merged into Â), or None (``none``, or
    no knowledge graph in the data folder)."""
    if mode not in KG_MODES:
        raise ValueError(f"kg mode {mode!r} is not one of {KG_MODES}")
    if mode == "none" or data.kg is None:
        return None
    if mode == "single":
        item, ent, n = useful_kg_edges(data.kg)
        return TypedKnowledgeGraph(["kg"], [item], [ent], n)
    return typed_kg_edges(data.folder, data.name, data.item_tokens)


def build_hetero_graph(
    train: UserSequences,
    n_items: int,
    kg: TypedKnowledgeGraph | None = None,
    social: SocialEdges | None = None,
    keep_user: np.ndarray | None = None,
) -> HeteroGraph:
    """The relations' adjacencies: UI from ``train``, one item-entity relation per group of
    ``kg``, UU from ``social`` restricted to ``keep_user`` (None: all users)."""
    n_ent = kg.n_entities if kg is not None and kg.names else 0
    layout = GraphLayout(train.n_users, n_items, n_ent)
    u, i = train.pairs()
    ui, _ = symmetric_relation_adjacency(u, layout.n_users + i, layout.n_users + n_items)
    edges = {"user-item": int(np.unique(u * n_items + i).size)}
    names: list[str] = []
    to_items, to_ents = [], []
    for name, ki, ke in zip(kg.names, kg.item, kg.entity, strict=True) if n_ent else ():
        a_ie, a_ei = bipartite_relation_adjacency(ki, ke, n_items, n_ent)
        names.append(f"kg:{name}")
        to_items.append(a_ie.to_sparse_coo())
        to_ents.append(a_ei.to_sparse_coo())
        edges[f"kg:{name}"] = int(a_ie.values().numel())
    kg_to_items = kg_to_entities = None
    if names:
        kg_to_items = torch.cat(to_items, dim=0).coalesce().to_sparse_csr()
        kg_to_entities = torch.stack(to_ents).sum(0).coalesce().to_sparse_csr()
    uu, n_uu = social_adjacency(social, layout.n_users, keep_user)
    if uu is not None:
        edges["user-user"] = n_uu
    return HeteroGraph(layout, ui, names, kg_to_items, kg_to_entities, uu, edges)


class HeteroTeacher(HybridTeacher):
    """The hybrid teacher propagating over several relations with per-relation gates.

    See the module docstring for the maths. Parameters added to the teacher's: ``kg_gates``
    (R, D), one gate per knowledge-graph relation; ``social_gate`` (D,) with a user-user
    relation; ``extra`` (E, D), the entity embeddings. :meth:`gate` / :meth:`set_gate` read
    and write a gate by relation name.
    """

    def __init__(
        self,
        train: UserSequences,
        n_items: int,
        graph: HeteroGraph,
        text: np.ndarray,
        dim: int = 64,
        layers: int = 3,
        reg: float = 1e-4,
        seed: int = 0,
        k: int = 20,
        gate_init: float = 0.0,
    ):
        super().__init__(
            train,
            n_items,
            graph.ui,
            text,
            dim,
            layers,
            reg,
            seed,
            n_extra_nodes=graph.layout.n_entities,
            k=k,
        )
        self.graph = graph
        if self.extra is not None:
            nn.init.zeros_(self.extra)
        self.kg_gates = nn.Parameter(torch.full((len(graph.kg_names), dim), float(gate_init)))
        self.social_gate = (
            nn.Parameter(torch.full((dim,), float(gate_init))) if graph.uu is not None else None
        )

    @classmethod
    def from_teacher(
        cls, teacher: HybridTeacher, train: UserSequences, graph: HeteroGraph, **kw
    ) -> HeteroTeacher:
        """A hetero model whose shared parameters are copied from a trained teacher (gates 0:
        the same scores as ``teacher`` until trained)."""
        model = cls(
            train,
            teacher.n_items,
            graph,
            teacher.text.numpy(),
            teacher.item.shape[1],
            teacher.layers,
            teacher.reg,
            k=teacher.k,
            **kw,
        )
        with torch.no_grad():
            model.user.copy_(teacher.user)
            model.item.copy_(teacher.item)
            model.text_proj.load_state_dict(teacher.text_proj.state_dict())
            model.context.load_state_dict(teacher.context.state_dict())
        return model

    def relations(self) -> list[str]:
        """The relations this model propagates over."""
        return ["user-item", *self.graph.kg_names] + (
            ["user-user"] if self.social_gate is not None else []
        )

    def gate(self, relation: str) -> torch.Tensor:
        """g_r of a gated relation (a KG relation name or ``user-user``). Shape (D,)."""
        if relation == "user-user" and self.social_gate is not None:
            return self.social_gate
        if relation in self.graph.kg_names:
            return self.kg_gates[self.graph.kg_names.index(relation)]
        raise KeyError(f"no gated relation {relation!r}; have {self.relations()[1:]}")

    @torch.no_grad()
    def set_gate(self, relation: str, value) -> None:
        """Overwrite g_r with a scalar or a (D,) vector; 0 switches relation r off."""
        self.gate(relation).copy_(
            torch.as_tensor(value, dtype=torch.float32).expand(self.item.shape[1])
        )

    def use_social(self, social: SocialEdges | None) -> None:
        """Rebuild Â_UU from ``social`` over ALL users (inference time, see the module
        docstring); the trained gate g_UU is kept. Needs a model built with a social gate."""
        if self.social_gate is None:
            raise ValueError("this model was built without a user-user relation")
        uu, n = social_adjacency(social, self.graph.layout.n_users)
        self.graph.uu = uu
        self.graph.edges["user-user"] = n

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Relation-weighted propagation (module docstring). Returns (x_U (U, D), x_I (I, D))."""
        g = self.graph
        n_u, n_i = self.n_users, self.n_items
        seen = self.trained_user.unsqueeze(1).to(self.user.dtype)
        x = torch.cat([self.user * seen, self.item_ego()])  # (U + I, D)
        e = self.extra  # (E, D) or None
        acc_x, gates = x, self.kg_gates.unsqueeze(1)  # (R, 1, D)
        for _ in range(self.layers):
            nxt = torch.sparse.mm(g.ui, x)
            if g.kg_to_items is not None:
                msg = torch.sparse.mm(g.kg_to_items, e).view(len(g.kg_names), n_i, -1)
                nxt = nxt + torch.cat([torch.zeros_like(x[:n_u]), (msg * gates).sum(0)])
                e = torch.sparse.mm(g.kg_to_entities, x[n_u:])
            if g.uu is not None and self.social_gate is not None:
                soc = torch.sparse.mm(g.uu, x[:n_u]) * self.social_gate
                nxt = nxt + torch.cat([soc, torch.zeros_like(x[n_u:])])
            x = nxt
            acc_x = acc_x + x
        acc_x = acc_x / (self.layers + 1)
        return acc_x[:n_u], acc_x[n_u:]

    def user_vectors(
        self, users: torch.Tensor, ctx: torch.Tensor, x_u: torch.Tensor, x_i: torch.Tensor
    ):
        """z_u = x_u + W_c mean(x_ctx); x_u is already 0 for an unseen user without social ties.
        Shapes: users (B,), ctx (B, K), x_u (U, D), x_i (I, D) -> (B, D)."""
        return x_u[users] + self.context(x_i[ctx].mean(1))

    def gate_norms(self) -> dict[str, float]:
        """Mean |g_r| per gated relation (0 = relation switched off)."""
        return {
            r: round(float(self.gate(r).detach().abs().mean()), 4) for r in self.relations()[1:]
        }

    def report_entry(self) -> dict:
        """What the report says about this model: relations, edge counts, learned gates."""
        lay = self.graph.layout
        return {
            "model": "hetero",
            "relations": self.relations(),
            "edges": dict(self.graph.edges),
            "nodes": {"users": lay.n_users, "items": lay.n_items, "entities": lay.n_entities},
            "gate_mean_abs": self.gate_norms(),
            "normalisation": "per relation r: D_r^-1/2 A_r D_r^-1/2, degrees counted in r alone",
        }


#: the parameters the hetero model adds to the teacher (trained alone by default).
NEW_PARAMETERS = ("kg_gates", "social_gate", "extra")
