"""GRU4Rec (Hidasi et al., ICLR 2016), a standard sequential baseline (issue 15, item 5).

Items 0..N-1 are tokens 1..N; token 0 is padding. A user's input is the last L (= ``max_len``)
items of the history, oldest first, LEFT-padded with 0 to length L, so the latest item is
always at position L - 1. With E ∈ R^{(N+1) x D} the item embeddings (row 0 = padding, zero):

    e_t = Dropout(E[s_t])                               (B, L, D)
    h_t = GRU(e_1..e_t)                                 (B, L, H)   ``layers`` stacked GRU layers
    z_t = W_o h_t + b_o                                 (B, L, D)
    ŝ_t(i) = <z_t, E[i + 1]>                            (B, L, N)   score of item i after step t

Training (the improved setting of Hidasi & Karatzoglou, CIKM 2018, as RecBole trains it):
full-softmax cross-entropy over all N items for the next item at every real position of a
sequence, L = -mean_t log softmax(ŝ_t)[s_{t+1}] (the 2018 paper's point is that a ranking loss
over many negatives replaces the 2016 session-parallel TOP1/BPR with few negatives; the full
softmax is the limit of that and the strongest variant on small catalogues). Padding
positions (input 0) carry no loss. ``score(users, history)`` returns ŝ_{L-1}: the scores of
every item after the user's latest item. Items are shared between input and output (weight
tying through E), as in RecBole's GRU4Rec.

:class:`NextItemModel` holds what GRU4Rec and SASRec (:mod:`fpgarec.models.sasrec`) share:
the padded input of a history (:func:`recent_tokens`), the loss, ``score``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fpgarec.data.split import UserSequences


def recent_tokens(history: UserSequences, users: np.ndarray, max_len: int) -> torch.Tensor:
    """The last ``max_len`` items of each user's history as tokens (item + 1), oldest first,
    left-padded with 0. A user with an empty history gets an all-padding row.

    Shapes: users (B,) -> (B, max_len) int64.
    """
    users = np.asarray(users, dtype=np.int64)
    out = np.zeros((len(users), max_len), dtype=np.int64)
    for r, u in enumerate(users):
        items = history.of(u)[-max_len:]
        if len(items):
            out[r, max_len - len(items):] = items + 1
    return torch.from_numpy(out)


class NextItemModel(nn.Module):
    """A causal sequence encoder whose hidden state at step t scores the item at t + 1.

    Subclasses set ``self.item`` (nn.Embedding (N + 1, D), padding_idx 0), ``self.max_len``
    and implement ``encode(tokens (B, L)) -> (B, L, D)``, where row t depends on tokens[:, :t+1]
    only.
    """

    item: nn.Embedding
    max_len: int

    @property
    def n_items(self) -> int:
        return self.item.num_embeddings - 1

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """ŝ(i) = <z, E[i + 1]> for every item i. Shapes: (..., D) -> (..., N)."""
        return z @ self.item.weight[1:].T

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over all items of the next item at every real position.

        Shapes: inputs (B, L) tokens, targets (B, L) tokens (0 where there is no target).
        """
        inputs, targets = batch
        z = self.encode(inputs)
        real = targets > 0
        return F.cross_entropy(self.logits(z[real]), targets[real] - 1)

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        """Scores of every item after each user's latest history item (nothing masked here:
        the evaluation removes the history). Shapes: users (B,) -> (B, N) float64."""
        was_training = self.training
        self.eval()
        tokens = recent_tokens(history, users, self.max_len)
        out = self.logits(self.encode(tokens)[:, -1]).double().numpy()
        self.train(was_training)
        return out


class GRU4Rec(NextItemModel):
    """GRU4Rec (module docstring): embedding -> dropout -> GRU -> linear -> dot with E."""

    def __init__(self, n_items: int, dim: int = 64, hidden: int = 128, layers: int = 1,
                 dropout: float = 0.3, max_len: int = 50, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.max_len = max_len
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.xavier_normal_(self.item.weight)
        with torch.no_grad():
            self.item.weight[0].zero_()
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, hidden, num_layers=layers, batch_first=True, bias=False)
        self.out = nn.Linear(hidden, dim)
        for w in self.gru.parameters():  # RecBole's initialisation
            nn.init.xavier_uniform_(w)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """z_t for every step. Shapes: tokens (B, L) -> (B, L, D). Left padding is exactly
        neutral: the GRU has no biases (as RecBole's), so from h_0 = 0 a zero input (the padding
        row of E) keeps h = 0 until the first real item."""
        h, _ = self.gru(self.dropout(self.item(tokens)))
        return self.out(h)
