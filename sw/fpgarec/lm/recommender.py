"""The text tower's head: item, user and score maps over encoder vectors, and its loss.

With ``h_i`` the encoder vector of item ``i`` (:mod:`fpgarec.lm.tower`)::

    v_i = P h_i [+ e_i]                                      (I, d)    item vector
    z_u = W · (1/L) Σ_{j ∈ recent_K(u)} v_j                  (B, d)    user vector, L ≤ K real items
    s_ui = z_u · v_i + b_i                                   (B, I)    score

``P`` (d × 384), ``W`` (d × d, initialised to the identity), the item bias ``b`` (I,) and the
optional id embedding ``e`` (I × d) are the *head*. The objective is the softmax
cross-entropy of "K recent items -> a later item" examples
(:func:`fpgarec.data.sampler.next_item_examples`, the examples of
:func:`fpgarec.train.sampling.next_item_batches`: every train interaction after a user's first
is a target, its context the K items before a gap drawn in 0..horizon-1)::

    loss = mean_(u, ctx, p) [ log Σ_{i=1..I} exp s_ui - s_up ]

over all I items (``n_negatives=None``, the default: 1,682 items make the exact softmax cheap),
or a sampled softmax with log Q correction (``n_negatives`` shared negatives).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fpgarec.data.sampler import recent_items
from fpgarec.data.split import UserSequences
from fpgarec.lm.config import TEXT_DIM


class TextTowerRecommender(nn.Module):
    """The head of the module docstring's model, scoring from a fixed item-text table.

    ``table`` (I, 384) holds the encoder vectors h used by :meth:`score` (set after training).
    The context slot value ``n_items`` is the null item (not counted in the mean).
    """

    def __init__(self, n_items: int, dim: int, k: int, id_embedding: bool, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.n_items, self.k = n_items, k
        self.proj = nn.Linear(TEXT_DIM, dim, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, TEXT_DIM, generator=gen) / math.sqrt(TEXT_DIM))
        self.item_emb = (
            nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.01) if id_embedding else None
        )
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.context = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.context.weight.copy_(torch.eye(dim))
        self.register_buffer("table", torch.zeros(n_items, TEXT_DIM))

    def item_vectors(self, h: torch.Tensor) -> torch.Tensor:
        """(I, 384) -> (I, d): P h [+ e]."""
        v = self.proj(h)
        return v + self.item_emb if self.item_emb is not None else v

    def user_vectors(self, v: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """v (I, d), ctx (B, K) null-padded -> (B, d): W · mean of the real context items."""
        real = (ctx < self.n_items).to(v.dtype)
        rows = v[ctx.clamp_max(self.n_items - 1)] * real.unsqueeze(-1)
        return self.context(rows.sum(1) / real.sum(1, keepdim=True).clamp_min(1.0))

    def logits(self, h: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Scores of every item, (B, I)."""
        v = self.item_vectors(h)
        return self.user_vectors(v, ctx) @ v.T + self.item_bias

    def loss(
        self,
        h: torch.Tensor,
        ctx: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor | None = None,
        log_q: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Softmax cross-entropy of the targets ``pos`` (B,).

        ``neg`` None: over all I items. Otherwise sampled softmax over {pos} ∪ ``neg`` (N,), the
        negatives shared by the batch and drawn from q (``log_q`` (I,) = log(N q_i)); every
        candidate's score is corrected to ``s_ui - log(N q_i)`` (the log Q correction, which
        makes the sampled loss estimate the full one), and a negative equal to a row's target is
        masked out of that row.
        """
        if neg is None:
            return F.cross_entropy(self.logits(h, ctx), pos)
        v = self.item_vectors(h)
        z = self.user_vectors(v, ctx)
        s_pos = (z * v[pos]).sum(-1, keepdim=True) + self.item_bias[pos, None]
        s_neg = z @ v[neg].T + self.item_bias[neg]
        if log_q is not None:
            s_pos, s_neg = s_pos - log_q[pos, None], s_neg - log_q[neg]
        s_neg = s_neg.masked_fill(neg[None, :] == pos[:, None], float("-inf"))
        return F.cross_entropy(
            torch.cat([s_pos, s_neg], 1), torch.zeros(len(pos), dtype=torch.long)
        )

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        """(B,) users, their histories -> (B, I) float32. A user without history gets the item
        biases alone."""
        users = np.asarray(users, dtype=np.int64)
        ctx = np.full((len(users), self.k), self.n_items, dtype=np.int64)
        has = history.lengths()[users] > 0
        if has.any():
            ctx[has] = recent_items(history, users[has], self.k, null_id=self.n_items)
        return self.logits(self.table, torch.from_numpy(ctx)).numpy()
