"""The quantized student: exactly the accelerator's hot path, built from Brevitas modules.

For a query with K neighbour slots c_1..c_K (the user's L <= K most recent items, then K - L
slots holding the null id N, see :mod:`fpgarec.data.sampler`) and bit width b:

    e_k = Q_w(E_id)[c_k],  t_k = Q_w(E_txt)[c_k]      two table lookups (integers, scales s_id, s_txt)
    f_k = fuse(e_k, t_k)                              modality_fusion kernel: gated sum with
                                                      integer weights W = round(α s_m / s_f 2^F),
                                                      α = softmax(g) (readable), b-bit output
    m   = s_f 2^-P · agg(f_1..f_K; c)                 neighbor_aggregate kernel: exact mean over
                                                      the L real slots, P fractional bits; or
                                                      (aggregation "attention") attention_aggregate:
                                                      Σ_k a_k f_k, a = softmax_k(q·f_k + b_type[τ_k]
                                                      + b_pos[r_k]) over the real slots
                                                      (:mod:`fpgarec.models.student_attention`)
    u   = Q_u(ReLU(W Q_a(m) + β))                     quantized transform (MVAU + thresholds)
    s   = Q_w(S) u                                    scoring against the item table
    top-k(s)                                          label select (ties: lower index)

Q_w: b-bit signed per-tensor weights; Q_a: b-bit signed activations; Q_u: b-bit unsigned.
E_txt holds the language-model vectors projected offline (the teacher's text projection).
The fusion and aggregation are the kernels' own Brevitas modules (kernels/*/brevitas_module.py),
whose forward is the kernels' integer arithmetic, so training, export and hardware agree.

Shapes: ctx (B, K) int64 ids, or (B, K, 3) [id, behaviour type τ, recency bucket r]
(:func:`fpgarec.data.sampler.recent_items_meta`; the mean reads the ids only) -> scores (B, I)
float (integers times one scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from brevitas.nn import QuantEmbedding, QuantIdentity, QuantLinear, QuantReLU
from kernels.modality_fusion.brevitas_module import QuantModalityFusion
from kernels.neighbor_aggregate.brevitas_module import QuantNeighborAggregate
from torch import nn

from fpgarec.data.behaviour import BehaviourLog
from fpgarec.data.sampler import null_to_cyclic, recent_items, recent_items_meta
from fpgarec.data.split import UserSequences
from fpgarec.models.student_attention import build_attention, context_ids, context_meta


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
    #: fractional bits P of the aggregated mean
    agg_frac_bits: int = 4
    #: width of the fusion kernel's integer modality weights
    fusion_w_bits: int = 10
    #: "mean" (neighbor_aggregate) or "attention" (attention_aggregate)
    aggregation: str = "mean"
    #: attention: behaviour types T (view, like, comment) and recency buckets R
    #: (:func:`fpgarec.data.sampler.recency_bucket`)
    att_types: int = 3
    att_buckets: int = 8
    att_per_octave: int = 1
    #: attention: q_int's width and scale s_q = 2^-att_q_frac_bits; the biases' width
    att_q_bits: int = 8
    att_q_frac_bits: int = 5
    att_bias_bits: int = 12
    #: attention: the exp's shift S (M = round(s_l / ln 2 · 2^(S+FB)))
    att_s_shift: int = 16
    #: attention: learning-rate gain γ of the real-unit parameters (models/student_attention.py)
    att_gain: float = 10.0

    @property
    def null_id(self) -> int:
        """The padding id of an empty neighbour slot: N (one past the last item)."""
        return self.n_items


class QuantStudent(nn.Module):
    def __init__(self, shape: StudentShape):
        super().__init__()
        self.shape = shape
        n, d, wb, ab = shape.n_items, shape.dim, shape.weight_bits, shape.act_bits
        self.id_table = QuantEmbedding(n, d, weight_bit_width=wb)
        self.text_table = QuantEmbedding(n, d, weight_bit_width=wb)
        self.fusion = QuantModalityFusion(m=2, out_bits=ab, w_bits=shape.fusion_w_bits)
        if shape.aggregation not in ("mean", "attention"):
            raise ValueError(f"aggregation={shape.aggregation!r}: 'mean' or 'attention'")
        if shape.aggregation == "attention":
            self.aggregate = build_attention(shape)
        else:
            self.aggregate = QuantNeighborAggregate(
                shape.k, mode="mean", frac_bits=shape.agg_frac_bits, null_id=shape.null_id, in_bits=ab,
                id_bits=max(1, int(shape.null_id).bit_length()),
            )
        #: behaviour log giving the attention's types at evaluation (None: every slot a view)
        self.behaviour: BehaviourLog | None = None
        self._types_cache: tuple[object, np.ndarray] | None = None
        self.agg_quant = QuantIdentity(bit_width=ab)
        self.transform = QuantLinear(d, d, bias=True, weight_bit_width=wb)
        self.relu = QuantReLU(bit_width=ab)
        self.scorer = QuantLinear(d, n, bias=False, weight_bit_width=wb)

    @property
    def k(self) -> int:
        return self.shape.k

    @property
    def attention(self) -> bool:
        return self.shape.aggregation == "attention"

    def use_behaviour(self, blog: BehaviourLog | None) -> None:
        """The behaviour log :meth:`score` reads the attention's types from (aligned with the
        history it is given)."""
        self.behaviour, self._types_cache = blog, None

    def context(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        """The K slots of each user: ids (B, K) for the mean; (B, K, 3) [id, type, bucket] for
        the attention (types from :attr:`behaviour`, 0 without one)."""
        s = self.shape
        if not self.attention:
            return recent_items(history, users, s.k, s.n_recent, null_id=s.null_id)
        if self._types_cache is None or self._types_cache[0] is not history:
            types = (self.behaviour.aligned(history)[0] if self.behaviour is not None
                     else np.zeros(len(history.items), np.int64))
            self._types_cache = (history, types)
        return recent_items_meta(history, self._types_cache[1], users, s.k, s.n_recent, s.null_id, s.att_buckets,
                                 s.att_per_octave)

    def modality_weights(self) -> torch.Tensor:
        """α = softmax(g): the weight of (id, text) in every item's fused feature. Shape (2,)."""
        return self.fusion.modality_weights()

    def integer_tables(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """([E_id_int, E_txt_int] (N, D) floats holding integers, scales (2,)), with gradients."""
        ints, scales = [], []
        for table in (self.id_table, self.text_table):
            qw = table.quant_weight()
            x = qw.value / qw.scale
            ints.append(x + (torch.round(x) - x).detach())
            scales.append(qw.scale.reshape(()))
        return ints, torch.stack(scales)

    def fused_integers(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_int (B, K, D), s_f): the fusion kernel's output for every slot (null slots read
        row 0; the aggregation ignores them). ctx: (B, K) ids or (B, K, 3)."""
        ctx = context_ids(ctx)
        tables, scales = self.integer_tables()
        safe = torch.where(ctx == self.shape.null_id, torch.zeros_like(ctx), ctx)
        return self.fusion([F.embedding(safe, t) for t in tables], scales)

    @torch.no_grad()
    def init_from(self, items: torch.Tensor, text: torch.Tensor, context: torch.Tensor) -> None:
        """Start from the teacher: tables from its item and projected-text vectors, the scorer
        from its item vectors, the transform from its context encoder (weight (D, D), bias)."""
        self.id_table.weight.copy_(items)
        self.text_table.weight.copy_(text)
        self.scorer.weight.copy_(items)
        self.transform.weight.copy_(context.weight)
        self.transform.bias.copy_(context.bias)

    def mean_feature(self, ctx: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """m = m_int · s_f 2^-P: the aggregated neighbour feature, real-valued; float64 when
        ``exact`` (the product of an integer below 2^24 and a float32 is exact there).
        Shapes: (B, K) or (B, K, 3) -> (B, D)."""
        f_int, s_f = self.fused_integers(ctx)
        if self.attention:
            self.aggregate.set_feature_scale(s_f.detach())
            m_int, _ = self.aggregate(f_int, context_meta(ctx))
        else:
            m_int = self.aggregate(f_int, context_ids(ctx))
        if exact:
            return m_int.double() * (s_f.double() / (1 << self.shape.agg_frac_bits))
        return m_int * (s_f / (1 << self.shape.agg_frac_bits))

    def user_vector(self, ctx: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """u = Q_u(ReLU(W Q_a(m) + β)) for a batch of contexts. Shapes: (B, K) -> (B, D) float32.

        ``exact`` (the default, in training and evaluation): the two activation quantizers see
        their input computed in float64, so they round the exact real value half to even, as
        the hardware's integer thresholds do (:mod:`fpgarec.compile.exact_rounding`). For Q_a
        this is exact: m_int · s_f 2^-P / s_a is correctly rounded from an exact product, and a
        quotient of those widths that is not a tie lies much further than 2^-53 from one. For
        Q_u, W Q_a(m) + β sums D products of float32 values in float64 (relative error about
        2^-50 against the float32 step of the plain forward). The float32 forward
        (``exact=False``) is what Brevitas exports and qonnx executes: it rounds
        m_int · s_f 2^-P / s_a in float32 first, so a value like 6.50000019 becomes the tie 6.5
        and rounds to 6 where the exact value rounds to 7.
        """
        q = self.agg_quant(self.mean_feature(ctx, exact))
        if not exact:
            return self.relu(self.transform(q))
        w = self.transform.quant_weight().value.double()
        bias = self.transform.bias.double() if self.transform.bias is not None else None
        return self.relu(F.linear(q, w, bias)).float()  # u_int · s_u: exact in float32

    def forward(self, ctx: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """Scores of all items. Shapes: (B, K) -> (B, I)."""
        return self.scorer(self.user_vector(ctx, exact))

    @torch.no_grad()
    def integer_scores(self, ctx: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """z = u_int · S_intᵀ, the integers the hardware ranks: u_int = Q_u output / s_u and
        S_int = Q_w(S) / s_S, multiplied in int64 (exact at any bit width). ``exact``: as in
        :meth:`user_vector`. Shapes: (B, K) -> (B, I) int64."""
        u = self.user_vector(ctx, exact)
        s_u = self.relu.act_quant.scale().detach()
        qw = self.scorer.quant_weight()
        w_int = torch.round(qw.value / qw.scale).to(torch.int64)
        return torch.round(u / s_u).to(torch.int64) @ w_int.T

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        """Scores for evaluation: s = z · s_S s_u with z the exact integer scores, so equal
        integers stay exactly equal and the tie rule (lower index first) decides between them,
        as on chip. (The float32 forward sums its products in an order that depends on the
        BLAS kernel and thread count, which broke integer ties at random: the same saved
        student_w4 scored NDCG@10 0.1633 in its training worker and 0.1651 re-evaluated in
        another process; with exact integers 0.1656, what the design's own output scores.)
        Shapes: users (B,) -> (B, I) float64."""
        ctx = self.context(np.asarray(users, dtype=np.int64), history)
        z = self.integer_scores(torch.from_numpy(ctx)).numpy()
        step = float(self.scorer.quant_weight().scale) * float(self.relu.act_quant.scale())
        return z.astype(np.float64) * step


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
                if getattr(self.teacher, "reads_slots", False):  # e.g. the sequence model's scores
                    t = self.teacher.logits(u.numpy(), ctx.numpy(), self._propagated)
                else:
                    cyclic = null_to_cyclic(context_ids(ctx).numpy(), self.student.shape.null_id)  # the teacher's padding
                    t = self.teacher.logits(u.numpy(), cyclic, self._propagated)
            tau = self.temperature
            kd = F.kl_div(F.log_softmax(s / tau, 1), F.log_softmax(t / tau, 1), log_target=True, reduction="batchmean")
            loss = (1 - self.weight) * loss + self.weight * tau * tau * kd
        return loss

    def score(self, users, history):
        return self.student.score(users, history)
