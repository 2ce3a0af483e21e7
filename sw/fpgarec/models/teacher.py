"""The float hybrid teacher: language-model text fused into LightGCN message passing, plus a
reading of the user's recent items.

Each item's layer-0 feature fuses its id embedding with a projection of its language-model
vector, so text travels through every propagation step (text and graph fused inside message
passing), optionally over item-entity edges of the knowledge graph too:

    x_i^{(0)} = e_i + W_2 σ(W_1 t_i),   t_i ∈ R^384 (MiniLM), e_i ∈ R^D
    X^{(l+1)} = Â X^{(l)},   X = 1/(L+1) Σ_l X^{(l)}

A user is its propagated node vector (long-term interest, zero for a user unseen in training)
plus an encoding of its K most recent items (current interest), which also serves new users:

    z_u = x_u [u seen in training] + W_c mean_{k ≤ K} x_{c_k}
    ŝ(u, i) = <z_u, x_i>

Trained with BPR on "recent items -> later item" examples from the train split.

Shapes: text (I, 384) float32; node embeddings (n_nodes, D); contexts (B, K) item indices.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fpgarec.data.sampler import recent_items
from fpgarec.data.split import UserSequences
from fpgarec.models.baselines import LightGCN, bpr_loss


class HybridTeacher(LightGCN):
    def __init__(
        self, train: UserSequences, n_items: int, adj: torch.Tensor, text: np.ndarray, dim: int = 64,
        layers: int = 3, reg: float = 1e-4, seed: int = 0, n_extra_nodes: int = 0, text_hidden: int = 256,
        k: int = 20, use_text: bool = True,
    ):
        super().__init__(train, n_items, adj, dim, layers, reg, seed, n_extra_nodes)
        torch.manual_seed(seed)
        self.k = k
        self.use_text = use_text
        self.register_buffer("text", torch.from_numpy(np.asarray(text, dtype=np.float32)), persistent=False)
        self.text_proj = nn.Sequential(nn.Linear(text.shape[1], text_hidden), nn.GELU(), nn.Linear(text_hidden, dim))
        self.context = nn.Linear(dim, dim)
        nn.init.eye_(self.context.weight)
        nn.init.zeros_(self.context.bias)

    def item_ego(self) -> torch.Tensor:
        return self.item + self.text_proj(self.text) if self.use_text else self.item

    def projected_text(self) -> torch.Tensor:
        """The text side of every item's layer-0 feature, W_2 σ(W_1 t_i). Shape (I, D)."""
        return self.text_proj(self.text)

    def user_vectors(self, users: torch.Tensor, ctx: torch.Tensor, x_u: torch.Tensor, x_i: torch.Tensor):
        """z_u for a batch. Shapes: users (B,), ctx (B, K), x_u (U, D), x_i (I, D) -> (B, D)."""
        seen = self.trained_user[users].unsqueeze(1).to(x_u.dtype)
        return x_u[users] * seen + self.context(x_i[ctx].mean(1))

    @torch.no_grad()
    def logits(self, users: np.ndarray, ctx: np.ndarray, propagated=None) -> torch.Tensor:
        """Scores of all items for (user, context) pairs. Shapes: (B,), (B, K) -> (B, I).

        ``propagated`` = a frozen teacher's ``propagate()`` output, to skip recomputing it.
        """
        x_u, x_i = propagated if propagated is not None else self.propagate()
        z = self.user_vectors(torch.as_tensor(users), torch.as_tensor(ctx), x_u, x_i)
        return z @ x_i.T

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return self.logits(users, recent_items(history, users, self.k)).numpy().astype(np.float64)

    def forward(self, batch):
        u, ctx, p, n = batch
        x_u, x_i = self.propagate()
        z = self.user_vectors(u, ctx, x_u, x_i)
        loss = bpr_loss((z * x_i[p]).sum(-1), (z * x_i[n]).sum(-1))
        ego = self.item_ego()
        reg = self.user[u].square().sum() + ego[p].square().sum() + ego[n].square().sum()
        return loss + self.reg * reg / len(u)
