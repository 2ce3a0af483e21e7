"""The quantized student: exactly the accelerator's hot path, built from Brevitas modules.

For a query with K neighbour items c_1..c_K (the user's most recent items, see
:mod:`fpgarec.data.sampler`) and bit width b:

    e_k = Q_w(E_id)[c_k],  t_k = Q_w(E_txt)[c_k]          two table lookups (id, text)
    f_k = Q_a(α_id e_k + α_txt t_k),  α = softmax(g)        modality fusion (weights readable)
    m   = Q_a(1/K Σ_k f_k)                                   neighbour aggregation (mean)
    u   = Q_u(ReLU(W m + β))                                 quantized transform (MVAU+thresholds)
    s   = Q_w(S) u                                           scoring against the item table
    top-k(s)                                                 label select (ties: lower index)

Q_w: b-bit signed per-tensor weights; Q_a: b-bit signed activations; Q_u: b-bit unsigned.
E_txt holds the language-model vectors projected offline (the teacher's text projection).

The tensors are laid out the way FINN maps them (TOOLCHAIN.md): ids (B, K, 1) -> lookups
(B, K, 1, D) in NHWC -> permute -> AdaptiveAvgPool2d(1) (GlobalAccPool) -> (B, D).

Shapes: ctx (B, K) int64 -> scores (B, I) float (integers times one scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from brevitas.nn import QuantEmbedding, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from fpgarec.data.sampler import recent_items
from fpgarec.data.split import UserSequences


@dataclass
class StudentShape:
    """Sizes and bit widths of a student (what the hardware is built for)."""

    n_items: int
    dim: int = 64
    k: int = 20
    weight_bits: int = 8
    act_bits: int = 8
    #: context slots given to the most recent items; the rest sample older history (None: all).
    n_recent: int | None = None


class QuantStudent(nn.Module):
    def __init__(self, shape: StudentShape):
        super().__init__()
        self.shape = shape
        n, d, wb, ab = shape.n_items, shape.dim, shape.weight_bits, shape.act_bits
        self.id_table = QuantEmbedding(n, d, weight_bit_width=wb)
        self.text_table = QuantEmbedding(n, d, weight_bit_width=wb)
        self.gate = nn.Parameter(torch.zeros(2))
        self.fuse_quant = QuantIdentity(bit_width=ab)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.agg_quant = QuantIdentity(bit_width=ab)
        self.transform = QuantLinear(d, d, bias=True, weight_bit_width=wb)
        self.relu = QuantReLU(bit_width=ab)
        self.scorer = QuantLinear(d, n, bias=False, weight_bit_width=wb)

    @property
    def k(self) -> int:
        return self.shape.k

    def modality_weights(self) -> torch.Tensor:
        """α = softmax(g): the weight of (id, text) in every item's fused feature. Shape (2,)."""
        return torch.softmax(self.gate, dim=0)

    @torch.no_grad()
    def init_from(self, items: torch.Tensor, text: torch.Tensor, context: torch.Tensor) -> None:
        """Start from the teacher: tables from its item and projected-text vectors, the scorer
        from its item vectors, the transform from its context encoder (weight (D, D), bias)."""
        self.id_table.weight.copy_(items)
        self.text_table.weight.copy_(text)
        self.scorer.weight.copy_(items)
        self.transform.weight.copy_(context.weight)
        self.transform.bias.copy_(context.bias)

    def user_vector(self, ctx: torch.Tensor) -> torch.Tensor:
        """u for a batch of contexts. Shapes: (B, K) -> (B, D)."""
        ids = ctx.unsqueeze(-1)  # (B, K, 1)
        a = self.modality_weights()
        fused = self.fuse_quant(a[0] * self.id_table(ids) + a[1] * self.text_table(ids))  # (B,K,1,D)
        pooled = self.pool(fused.permute(0, 3, 1, 2)).flatten(1)  # (B, D)
        return self.relu(self.transform(self.agg_quant(pooled)))

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        """Scores of all items. Shapes: (B, K) -> (B, I)."""
        return self.scorer(self.user_vector(ctx))

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        ctx = torch.from_numpy(recent_items(history, np.asarray(users, dtype=np.int64), self.k, self.shape.n_recent))
        return self(ctx).numpy().astype(np.float64)


class DistillationObjective(nn.Module):
    """The student's training loss, wrapping the student so DDP sees one ``forward(batch)``.

        L = (1 - λ) CE(softmax(s), pos) + λ τ² KL(softmax(t / τ) || softmax(s / τ))

    with t the teacher's scores for the same (user, context); λ = 0 trains without teacher.
    """

    def __init__(self, student: QuantStudent, teacher=None, weight: float = 0.5, temperature: float = 1.0):
        super().__init__()
        self.student = student
        self.teacher = teacher  # not a submodule: frozen, not trained, not synchronised
        self.weight = weight if teacher is not None else 0.0
        self.temperature = temperature
        if teacher is not None:
            teacher.eval()
            with torch.no_grad():  # frozen: propagate the graph once, not once per batch
                self._propagated = teacher.propagate()

    def forward(self, batch):
        u, ctx, pos, _neg = batch
        s = self.student(ctx)
        loss = F.cross_entropy(s, pos)
        if self.weight > 0:
            with torch.no_grad():
                t = self.teacher.logits(u.numpy(), ctx.numpy(), self._propagated)
            tau = self.temperature
            kd = F.kl_div(F.log_softmax(s / tau, 1), F.log_softmax(t / tau, 1), log_target=True, reduction="batchmean")
            loss = (1 - self.weight) * loss + self.weight * tau * tau * kd
        return loss

    def score(self, users, history):
        return self.student.score(users, history)
