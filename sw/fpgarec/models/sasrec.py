"""SASRec (Kang & McAuley, ICDM 2018), a standard sequential baseline (issue 15, item 5).

Input as GRU4Rec's (:func:`fpgarec.models.gru4rec.recent_tokens`): the last L (= ``max_len``)
history items as tokens (item + 1), oldest first, left-padded with 0. With E ∈ R^{(N+1) x D}
the item embeddings (row 0 = padding), P ∈ R^{L x D} learned positional embeddings, m_t = 1 for
a real position and 0 for padding:

    x_t^0 = Dropout(E[s_t] √D + P_t) · m_t                                   (B, L, D)

then ``blocks`` pre-norm Transformer blocks (the reference code's attention layout: normalise
the query, attend, add to the normalised query; then a standard pre-norm point-wise FFN), with h
heads of width D/h:

    q = LN(x^b),  a_t = MultiHead(q_t, K = V = x^b_{1..t})      causal: t attends to j <= t,
                                                                 padding keys j (m_j = 0) masked
    y^b = q + Dropout(a)
    x^{b+1} = (y^b + Dropout(W_2 ReLU(W_1 LN(y^b) + c_1) + c_2)) · m

    z_t = LN(x_t^{blocks})                                          (B, L, D)
    ŝ_t(i) = <z_t, E[i + 1]>                                        (B, L, N)  shared item table

The attention softmax over j <= t uses a large negative logit on masked keys (a padding query
position, whose keys are all padding, gets finite uniform weights; its output is zeroed by m).
So z_t depends on s_1..s_t only (causality, unit-tested).

Training: full-softmax cross-entropy over all N items for the next item at every real position
(L = -mean_t log softmax(ŝ_t)[s_{t+1}]). The paper trains a binary cross-entropy with one
sampled negative per position; the full softmax is the variant known to work better
(Klenitskiy & Vasilev, "Turning Dross Into Gold Loss: is BERT4Rec really better than
SASRec?", RecSys 2023; RecBole's default). ``score(users, history)`` returns
ŝ_{L-1}, the scores after the user's latest item.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fpgarec.models.gru4rec import NextItemModel

NEG = -1e9


class CausalSelfAttention(nn.Module):
    """Multi-head attention of each position over itself and the real positions before it.

    Shapes: query (B, L, D), keys/values (B, L, D), real (B, L) bool -> (B, L, D).
    """

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.o = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, kv: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        b, n, d = query.shape
        h, w = self.heads, d // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, h, L, w)
            return x.view(b, n, h, w).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(kv)), split(self.v(kv))
        logits = q @ k.transpose(-1, -2) / math.sqrt(w)  # (B, h, L, L)
        causal = torch.ones(n, n, dtype=torch.bool, device=query.device).tril()
        allowed = causal[None, None] & real[:, None, None, :]
        attn = self.drop(torch.softmax(logits.masked_fill(~allowed, NEG), dim=-1))
        return self.o((attn @ v).transpose(1, 2).reshape(b, n, d))


class SASRecBlock(nn.Module):
    """One self-attention block (module docstring's x^b -> x^{b+1})."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim, eps=1e-8)
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.norm_ffn = nn.LayerNorm(dim, eps=1e-8)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Shapes: x (B, L, D), real (B, L) bool -> (B, L, D), zero on padding positions."""
        q = self.norm_attn(x)
        y = q + self.drop(self.attn(q, x, real))
        y = y + self.drop(self.ffn(self.norm_ffn(y)))
        return y * real[..., None]


class SASRec(NextItemModel):
    """SASRec (module docstring): item + positional embeddings, causal self-attention blocks,
    scores by dot product with the shared item embeddings."""

    def __init__(self, n_items: int, dim: int = 64, blocks: int = 2, heads: int = 1,
                 dropout: float = 0.2, max_len: int = 50, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.max_len, self.dim = max_len, dim
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(SASRecBlock(dim, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim, eps=1e-8)
        for p in self.parameters():  # the reference implementation's initialisation
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """z_t for every step. Shapes: tokens (B, L) with L <= max_len -> (B, L, D); z_t depends
        on tokens[:, :t+1] only."""
        real = tokens > 0
        pos = torch.arange(tokens.shape[1], device=tokens.device) + self.max_len - tokens.shape[1]
        x = self.drop(self.item(tokens) * math.sqrt(self.dim) + self.position(pos)[None]) * real[..., None]
        for block in self.blocks:
            x = block(x, real)
        return self.norm(x)
