"""Behaviour sequences: the hybrid teacher with a target-attention read-out of the user's
recent items, aware of each interaction's behaviour type and age.

Behaviour types τ ∈ {view, like, comment} are DERIVED from MovieLens ratings (1-3 -> view,
4 -> like, 5 -> comment; :mod:`fpgarec.data.behaviour` gives the reasons). Timestamps are the
``.inter`` file's, in seconds.

The teacher (:class:`fpgarec.models.teacher.HybridTeacher`) reads a user's K most recent items
c_1..c_K by their mean. This model replaces the mean by DIN-style TARGET ATTENTION: the
weight of context item k depends on the candidate item i being scored. With x the teacher's
propagated vectors (D = dim), Δt_k = t_latest - t_{c_k} >= 0 the time between the context
interaction and the user's latest interaction in the history, A = attn_dim:

    q_i     = W_q x_i                                            (A,)    query of candidate i
    k_k     = W_k x_{c_k} + E^K_{τ_k}                            (A,)    key: item and type
    a_k(i)  = <q_i, k_k> / √A + b_{τ_k} - λ_{τ_k} log(1 + Δt_k / 1 min)    λ_τ = softplus(ρ_τ)
    α_k(i)  = softmax_k a_k(i) over the L <= K real slots (padded slots get weight 0)
    v_k     = x_{c_k} + E^V_{τ_k}                                (D,)    value: item and type
    z_u(i)  = x_u [u seen in training] + W_c Σ_k α_k(i) v_k + b_c
    ŝ(u, i) = <z_u(i), x_i>

λ_τ >= 0 is a learned time decay per behaviour type (an old view can fade faster than an old
comment), b_τ a learned type bias and E^K, E^V type embeddings (the type's relevance depends
on the candidate through <q_i, E^K_τ>). The attention has no positional encoding: the slots
form a set, so permuting them leaves every score unchanged, and padded slots are masked, so
their content is irrelevant.

Without sequences this is the teacher: with W_q = 0, E^K = E^V = 0, b = 0 and λ = 0 the
weights are uniform over the L real slots and z_u(i) = z_u of the teacher (whose cyclic
padding gives the same mean when L divides K, e.g. every user with >= K items).
:meth:`SequenceTeacher.from_teacher` starts there (teacher weights copied; only W_k random and
λ = ``decay_init``); the recipe that trains it is :func:`fpgarec.train.sequence.train_sequence`.

Full ranking stays O(B I K (A + D)) and is computed in item chunks: since Σ_k α_k(i) = 1,

    ŝ(u, i) = <x_u, x_i> + Σ_k α_k(i) <W_c v_k + b_c, x_i>,

two (B, K, ·) x (C, ·) products per chunk of C items; no (B, I, D) tensor is formed.

Hardware: the attention runs on the host (:data:`ATTENTION_MAPPING`, docs/sequence.md).

``fpgarec study sequence-ablations`` trains the teacher and this model on both splits of full
MovieLens-100k and prints one JSON line (teacher vs sequence NDCG@10 on all, cold and new
users, with read-out ablations); see docs/sequence.md.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fpgarec.data.behaviour import BEHAVIOURS, MAPPING_TEXT, BehaviourLog
from fpgarec.data.split import UserSequences
from fpgarec.models.baselines import bpr_loss
from fpgarec.models.teacher import HybridTeacher

log = logging.getLogger(__name__)

#: the report's sentence on where the attention runs.
ATTENTION_MAPPING = (
    "host: the target attention (a softmax over the K context items for each of the I "
    "candidate items) runs on the host CPU, like the teacher. finn-plus 1.6.1 has an FP32 "
    "HWSoftmax and an HLS ScaledDotProductAttention layer, but InferScaledDotProductAttention "
    "rejects dynamic masks and additive biases (our padding mask and type/time-decay bias), "
    "the fused layer's HLS library (attention.hpp) is not installed, and building it from "
    "MVAU + HWSoftmax layers would stream the item table 2K = 40 times per query instead of "
    "once; the FPGA student keeps the mean read-out"
)


@dataclass
class SequenceContext:
    """The K context slots of B (user, time) pairs, real slots first, in time order.

    Shapes: ``items``, ``types`` (B, K) int64; ``dt`` (B, K) float32 seconds since the slot's
    interaction, measured at the latest real slot (>= 0); ``mask`` (B, K) bool, True = real.
    Padded slots hold item 0, type 0, Δt 0 and are ignored by the model.
    """

    items: np.ndarray
    types: np.ndarray
    dt: np.ndarray
    mask: np.ndarray

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(self.items),
            torch.as_tensor(self.types),
            torch.as_tensor(self.dt),
            torch.as_tensor(self.mask),
        )

    def rows(self, idx: np.ndarray) -> SequenceContext:
        return SequenceContext(self.items[idx], self.types[idx], self.dt[idx], self.mask[idx])


def sequence_context(
    items: np.ndarray,
    types: np.ndarray,
    ts: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    k: int,
) -> SequenceContext:
    """Slots from the windows ``[starts[b], ends[b])`` of flat time-ordered arrays: the last
    L_b = min(ends - starts, K) interactions, then K - L_b padded slots.

    Δt_{b,j} = ts[ends_b - 1] - ts[slot j] (seconds to the window's latest interaction).

    Shapes: items, types, ts (nnz,); starts, ends (B,) with ends > starts -> (B, K) arrays.
    """
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    length = np.minimum(ends - starts, k)
    if np.any(length <= 0):
        raise ValueError("a user with no history has no behaviour sequence")
    first = ends - length
    mask = np.arange(k)[None, :] < length[:, None]
    pos = np.where(mask, first[:, None] + np.arange(k)[None, :], first[:, None])
    dt = np.where(mask, ts[ends - 1][:, None] - ts[pos], 0.0)
    return SequenceContext(
        items=np.where(mask, items[pos], 0).astype(np.int64),
        types=np.where(mask, types[pos], 0).astype(np.int64),
        dt=np.maximum(dt, 0.0).astype(np.float32),
        mask=mask,
    )


def history_context(
    blog: BehaviourLog, history: UserSequences, users: np.ndarray, k: int
) -> SequenceContext:
    """Each user's K most recent interactions of ``history`` with types and ages (the query a
    deployed host builds from its interaction log). Shapes: users (B,) -> (B, K) slots."""
    users = np.asarray(users, dtype=np.int64)
    types, ts = blog.aligned(history)
    return sequence_context(
        history.items, types, ts, history.indptr[users], history.indptr[users + 1], k
    )


class TargetAttention(nn.Module):
    """Attention logits of K context slots for C candidates (module docstring's a_k(i), α_k(i)).

    Initialised to uniform weights over the real slots up to the small time decay:
    W_q = 0, E^K = 0, b = 0, λ = ``decay_init``.
    """

    def __init__(
        self, dim: int, attn_dim: int, n_types: int, dt_unit: float = 60.0, decay_init: float = 0.05
    ):
        super().__init__()
        self.attn_dim, self.dt_unit = attn_dim, dt_unit
        self.query = nn.Linear(dim, attn_dim, bias=False)
        nn.init.zeros_(self.query.weight)
        self.key = nn.Linear(dim, attn_dim, bias=False)
        self.type_key = nn.Parameter(torch.zeros(n_types, attn_dim))
        self.type_bias = nn.Parameter(torch.zeros(n_types))
        # λ = softplus(ρ); ρ = log(exp(λ0) - 1)
        self.decay_raw = nn.Parameter(
            torch.full((n_types,), math.log(math.expm1(max(decay_init, 1e-6))))
        )

    def decay(self) -> torch.Tensor:
        """λ_τ >= 0 per type. Shape (n_types,)."""
        return F.softplus(self.decay_raw)

    @torch.no_grad()
    def set_decay(self, value: float) -> None:
        """λ_τ = ``value`` for every type."""
        self.decay_raw.fill_(math.log(math.expm1(max(value, 1e-6))))

    def slot_bias(self, types: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """b_τ - λ_τ log(1 + Δt / unit), -inf on padded slots. Shapes: (B, K) x3 -> (B, K)."""
        bias = self.type_bias[types] - self.decay()[types] * torch.log1p(
            dt.clamp_min(0) / self.dt_unit
        )
        return bias.masked_fill(~mask, float("-inf"))

    def weights(self, x_cand: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """α_k(i). Shapes: x_cand (B, C, D) per row or (C, D) shared, keys (B, K, A),
        bias (B, K) -> (B, C, K), rows summing to 1 over the real slots."""
        q = self.query(x_cand)
        eq = "bca,bka->bck" if q.dim() == 3 else "ca,bka->bck"
        logits = torch.einsum(eq, q, keys) / math.sqrt(self.attn_dim) + bias[:, None, :]
        return torch.softmax(logits, dim=-1)


class SequenceTeacher(HybridTeacher):
    """The hybrid teacher with the target-attention read-out (module docstring).

    ``blog`` supplies the behaviour types and timestamps of whatever history the model is
    asked to score from (aligned by :meth:`BehaviourLog.aligned`).
    """

    def __init__(
        self,
        train: UserSequences,
        n_items: int,
        adj: torch.Tensor,
        text: np.ndarray,
        blog: BehaviourLog,
        dim: int = 64,
        layers: int = 3,
        reg: float = 1e-4,
        seed: int = 0,
        n_extra_nodes: int = 0,
        text_hidden: int = 256,
        use_text: bool = True,
        k: int = 20,
        attn_dim: int = 32,
        dt_unit: float = 60.0,
        decay_init: float = 0.05,
        chunk: int = 512,
    ):
        super().__init__(
            train,
            n_items,
            adj,
            text,
            dim,
            layers,
            reg,
            seed,
            n_extra_nodes,
            text_hidden,
            k,
            use_text,
        )
        torch.manual_seed(seed + 1)
        self.blog = blog
        self.chunk = chunk
        self.attention = TargetAttention(dim, attn_dim, len(BEHAVIOURS), dt_unit, decay_init)
        self.type_value = nn.Parameter(torch.zeros(len(BEHAVIOURS), dim))
        self._frozen: tuple[torch.Tensor, torch.Tensor] | None = None

    def sequence_parameters(self) -> list[str]:
        """Names of the parameters this model adds to the teacher's."""
        return [n for n, _ in self.named_parameters() if n.startswith(("attention.", "type_value"))]

    def freeze_teacher(self, frozen: bool = True) -> None:
        """Train only the sequence parameters (True) or everything (False). While frozen the
        teacher's propagation is computed once and reused (it cannot change)."""
        new = set(self.sequence_parameters())
        for name, p in self.named_parameters():
            p.requires_grad_(name in new or not frozen)
        self._frozen = None
        if frozen:
            with torch.no_grad():
                self._frozen = super().propagate()

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._frozen if self._frozen is not None else super().propagate()

    @classmethod
    def from_teacher(
        cls, teacher: HybridTeacher, train: UserSequences, blog: BehaviourLog, **kw
    ) -> SequenceTeacher:
        """A sequence model whose shared parameters are copies of ``teacher``'s, trained on
        ``train`` (the attention starts near-uniform: the teacher's scores up to the small
        initial decay)."""
        n_extra = 0 if teacher.extra is None else teacher.extra.shape[0]
        model = cls(
            train,
            teacher.n_items,
            teacher.adj,
            teacher.text.numpy(),
            blog,
            teacher.item.shape[1],
            teacher.layers,
            teacher.reg,
            n_extra_nodes=n_extra,
            text_hidden=teacher.text_proj[0].out_features,
            use_text=teacher.use_text,
            k=teacher.k,
            **kw,
        )
        missing, unexpected = model.load_state_dict(teacher.state_dict(), strict=False)
        if unexpected or any(not m.startswith(("attention.", "type_value")) for m in missing):
            raise ValueError(
                f"teacher weights do not fit: missing {missing}, unexpected {unexpected}"
            )
        return model

    def user_vectors(self, users, ctx, x_u, x_i):
        raise NotImplementedError("z_u depends on the candidate here: use user_vectors_for")

    def _parts(
        self,
        users: torch.Tensor,
        seq: tuple[torch.Tensor, ...],
        x_u: torch.Tensor,
        x_i: torch.Tensor,
    ):
        """(x_u masked by seen (B, D), keys (B, K, A), slot bias (B, K), W_c v + b_c (B, K, D))."""
        items, types, dt, mask = seq
        # both maps are affine, so project the I items once and gather (not B K rows):
        # W_k x_c + E^K_τ and W_c (x_c + E^V_τ) + b_c = (W_c x_c + b_c) + W_c E^V_τ
        keys = self.attention.key(x_i)[items] + self.attention.type_key[types]
        bias = self.attention.slot_bias(types, dt, mask)
        values = self.context(x_i)[items] + (self.type_value @ self.context.weight.T)[types]
        seen = self.trained_user[users].unsqueeze(1).to(x_u.dtype)
        return x_u[users] * seen, keys, bias, values

    def user_vectors_for(
        self,
        users: torch.Tensor,
        seq: tuple[torch.Tensor, ...],
        cand: torch.Tensor,
        x_u: torch.Tensor,
        x_i: torch.Tensor,
    ) -> torch.Tensor:
        """z_u(i) for each row's candidates, explicitly (tests and explanations; scoring uses the
        chunked form). Shapes: users (B,), seq 4 x (B, K), cand (B, C) -> (B, C, D)."""
        xu, keys, bias, values = self._parts(users, seq, x_u, x_i)
        alpha = self.attention.weights(x_i[cand], keys, bias)
        return xu[:, None, :] + torch.einsum("bck,bkd->bcd", alpha, values)

    def attention_weights(
        self,
        users: torch.Tensor,
        seq: tuple[torch.Tensor, ...],
        cand: torch.Tensor,
        propagated=None,
    ) -> torch.Tensor:
        """α_k(i) for each row's candidates. Shapes: (B,), 4 x (B, K), (B, C) -> (B, C, K)."""
        x_u, x_i = propagated if propagated is not None else self.propagate()
        _, keys, bias, _ = self._parts(users, seq, x_u, x_i)
        return self.attention.weights(x_i[cand], keys, bias)

    def candidate_scores(
        self,
        users: torch.Tensor,
        seq: tuple[torch.Tensor, ...],
        cand: torch.Tensor,
        x_u: torch.Tensor,
        x_i: torch.Tensor,
    ) -> torch.Tensor:
        """ŝ(u, i) for each row's candidates. Shapes: (B,), 4 x (B, K), (B, C) -> (B, C)."""
        xu, keys, bias, values = self._parts(users, seq, x_u, x_i)
        xc = x_i[cand]
        alpha = self.attention.weights(xc, keys, bias)
        s = torch.einsum("bcd,bkd->bck", xc, values)
        return (alpha * s).sum(-1) + torch.einsum("bd,bcd->bc", xu, xc)

    @torch.no_grad()
    def logits(self, users: np.ndarray, seq: SequenceContext, propagated=None) -> torch.Tensor:
        """Scores of all I items, ``self.chunk`` items at a time. Shapes: (B,), (B, K) slots ->
        (B, I)."""
        x_u, x_i = propagated if propagated is not None else self.propagate()
        users_t = torch.as_tensor(np.asarray(users, dtype=np.int64))
        xu, keys, bias, values = self._parts(users_t, seq.tensors(), x_u, x_i)
        out = torch.empty(len(users_t), x_i.shape[0])
        for lo in range(0, x_i.shape[0], self.chunk):
            xc = x_i[lo : lo + self.chunk]
            alpha = self.attention.weights(xc, keys, bias)
            s = torch.einsum("cd,bkd->bck", xc, values)
            out[:, lo : lo + self.chunk] = (alpha * s).sum(-1) + xu @ xc.T
        return out

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        seq = history_context(self.blog, history, users, self.k)
        return self.logits(users, seq).numpy().astype(np.float64)

    def forward(self, batch):
        u, items, types, dt, mask, p, n = batch
        x_u, x_i = self.propagate()
        s = self.candidate_scores(u, (items, types, dt, mask), torch.stack([p, n], 1), x_u, x_i)
        loss = bpr_loss(s[:, 0], s[:, 1])
        if self._frozen is not None:  # the teacher's embeddings are fixed: no L2 term to add
            return loss
        ego = self.item_ego()
        reg = self.user[u].square().sum() + ego[p].square().sum() + ego[n].square().sum()
        return loss + self.reg * reg / len(u)

    def report_entry(self) -> dict:
        """What the report says about this model (mapping, hardware placement, learned decay)."""
        att = self.attention
        return {
            "model": "sequence",
            "behaviour_types": MAPPING_TEXT + " (MovieLens-100k has ratings only; the types are "
            "a modelling assumption, not logged behaviours)",
            "attention": ATTENTION_MAPPING,
            "read_out": "target attention over the K most recent items: a_k(i) = <W_q x_i, "
            f"W_k x_ck + E_type> / sqrt(A) + b_type - lambda_type log(1 + dt / {att.dt_unit:g} s)",
            "k": self.k,
            "time_decay_per_type": {
                b: round(float(v), 4) for b, v in zip(BEHAVIOURS, att.decay().detach(), strict=True)
            },
            "type_bias": {
                b: round(float(v), 4)
                for b, v in zip(BEHAVIOURS, att.type_bias.detach(), strict=True)
            },
        }


#: read-out variants of a trained model (the ``sequence-ablations`` study).
ABLATIONS = ("uniform", "decay_only", "no_target", "no_types")


@torch.no_grad()
def ablated(model: SequenceTeacher, which: str) -> SequenceTeacher:
    """A copy of a trained model with parts of the read-out switched off:

    * ``uniform``: W_q = 0, no type terms, λ = 0: the mean over the real slots (the teacher's
      read-out with the teacher's weights, up to padding);
    * ``decay_only``: W_q = 0, no type embeddings or bias; the learned per-type λ kept;
    * ``no_target``: W_q = 0 (the weights no longer depend on the candidate), the rest kept;
    * ``no_types``: E^K = E^V = 0, b = 0 and every λ_τ set to their mean.
    """
    if which not in ABLATIONS:
        raise ValueError(f"unknown ablation {which!r}; choose from {ABLATIONS}")
    shared = {"adj": model.adj, "blog": model.blog}  # read-only; the sparse Â cannot be deep-copied
    for name in shared:
        setattr(model, name, None)
    try:
        m = copy.deepcopy(model)
    finally:
        for name, value in shared.items():
            setattr(model, name, value)
    for name, value in shared.items():
        setattr(m, name, value)
    att = m.attention
    if which in ("uniform", "decay_only", "no_target"):
        att.query.weight.zero_()
    if which in ("uniform", "decay_only", "no_types"):
        att.type_key.zero_()
        att.type_bias.zero_()
        m.type_value.zero_()
    if which == "no_types":
        att.set_decay(float(att.decay().mean()))
    if which == "uniform":
        att.set_decay(0.0)
    return m.eval()
