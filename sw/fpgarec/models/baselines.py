"""Baselines: popularity, BPR matrix factorisation and LightGCN (ids only).

All score with ``score(users, history) -> (B, N)``. BPR-MF and LightGCN learn one embedding
per training user and so cannot serve a user unseen in training: for those rows they fall back
to popularity, as the evaluation protocol prescribes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fpgarec.data.split import UserSequences


class Popularity:
    """Score = number of train interactions of the item (the same for every user)."""

    def __init__(self, train: UserSequences, n_items: int):
        self.counts = np.bincount(train.items, minlength=n_items).astype(np.float64)

    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """L = -mean log σ(s_pos - s_neg). Shapes: (B,), (B,) -> scalar."""
    return F.softplus(neg - pos).mean()


class TransductiveScorer(nn.Module):
    """Shared scoring for models with per-user embeddings and a popularity fallback.

    Subclasses implement ``final_embeddings() -> (users (U, D), items (I, D))``.
    """

    def __init__(self, train: UserSequences, n_items: int):
        super().__init__()
        self.popularity = Popularity(train, n_items)
        self.register_buffer("trained_user", torch.from_numpy(train.lengths() > 0), persistent=False)

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        users = np.asarray(users)
        u_emb, i_emb = self.final_embeddings()
        scores = (u_emb[torch.from_numpy(users)] @ i_emb.T).numpy().astype(np.float64)
        unseen = ~self.trained_user.numpy()[users]
        if unseen.any():  # no trained embedding: the protocol's popularity fallback
            scores[unseen] = self.popularity.score(users[unseen], history)
        return scores


class BPRMF(TransductiveScorer):
    """Matrix factorisation ŝ(u, i) = <p_u, q_i> trained with the BPR loss + L2 on the batch."""

    def __init__(self, train: UserSequences, n_items: int, dim: int = 64, reg: float = 1e-4, seed: int = 0):
        super().__init__(train, n_items)
        gen = torch.Generator().manual_seed(seed)
        self.user = nn.Parameter(torch.randn(train.n_users, dim, generator=gen) * 0.1)
        self.item = nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.1)
        self.reg = reg

    def final_embeddings(self):
        return self.user, self.item

    def forward(self, batch):
        u, p, n = batch
        pu, qp, qn = self.user[u], self.item[p], self.item[n]
        loss = bpr_loss((pu * qp).sum(-1), (pu * qn).sum(-1))
        return loss + self.reg * (pu.square().sum() + qp.square().sum() + qn.square().sum()) / len(u)


class LightGCN(TransductiveScorer):
    """LightGCN (He et al., 2020): linear propagation, mean over layers.

        X^{(0)} = [E_user; E_item(+entities)],  X^{(l+1)} = Â X^{(l)},
        X = 1/(L+1) Σ_l X^{(l)},   ŝ(u, i) = <x_u, x_i>

    Shapes: Â (n_nodes, n_nodes) sparse; embeddings (n_nodes, D).
    """

    def __init__(
        self, train: UserSequences, n_items: int, adj: torch.Tensor, dim: int = 64, layers: int = 3,
        reg: float = 1e-4, seed: int = 0, n_extra_nodes: int = 0,
    ):
        super().__init__(train, n_items)
        gen = torch.Generator().manual_seed(seed)
        self.n_users, self.n_items, self.layers, self.reg = train.n_users, n_items, layers, reg
        self.user = nn.Parameter(torch.randn(train.n_users, dim, generator=gen) * 0.1)
        self.item = nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.1)
        self.extra = nn.Parameter(torch.randn(n_extra_nodes, dim, generator=gen) * 0.1) if n_extra_nodes else None
        self.adj = adj

    def item_ego(self) -> torch.Tensor:
        """Layer-0 item features (I, D); the hybrid teacher overrides this."""
        return self.item

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self.user, self.item_ego()] + ([self.extra] if self.extra is not None else [])
        x = torch.cat(parts)
        acc = x
        for _ in range(self.layers):
            x = torch.sparse.mm(self.adj, x)
            acc = acc + x
        acc = acc / (self.layers + 1)
        return acc[: self.n_users], acc[self.n_users : self.n_users + self.n_items]

    def final_embeddings(self):
        return self.propagate()

    def forward(self, batch):
        u, p, n = batch
        users, items = self.propagate()
        pu, qp, qn = users[u], items[p], items[n]
        loss = bpr_loss((pu * qp).sum(-1), (pu * qn).sum(-1))
        ego = self.user[u].square().sum() + self.item_ego()[p].square().sum() + self.item_ego()[n].square().sum()
        return loss + self.reg * ego / len(u)
