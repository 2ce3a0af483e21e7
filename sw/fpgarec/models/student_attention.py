"""The attention student's aggregation: ``attention_aggregate`` with real-valued learned parameters.

The kernel's Brevitas module (kernels/attention_aggregate/brevitas_module.py) keeps its query
and biases in integer units. The student trains them in real units instead, so that one Adam
step moves them by a similar real amount whatever the scales (an integer-unit parameter at
lr 1e-3 would need about a thousand steps to change by one):

    q_real = γ θ_q                  (D,)   real query, applied to the real fused vectors
    b_real = γ θ_b                  (T,), (R,)  real logit biases (type, recency bucket)
    s_q    = 2^-Q                   the query's scale: q_int = round(q_real / s_q) (q_bits signed)
    s_l    = s_q · s_f              the logit's real scale (s_f: the fused features' scale), so
                                    s_l · (q_int · x_int) = (s_q q_int) · (s_f x_int) ≈ q_real · x_real
    b_int  = round(b_real / s_l)    (bias_bits signed)
    M      = round(s_l / ln 2 · 2^(S+FB))   the kernel's exp multiplier (golden.exp_scale)

γ (``gain``) is a learning-rate gain of the parametrisation only. s_f is Brevitas' learned
output scale of the fusion, so s_l follows it: :meth:`StudentAttention.set_feature_scale` is
called with the current s_f before every forward (and before an export reads
:meth:`kernel_params`). The forward is then the kernel's integers exactly (the module's
golden-equal arithmetic on q_int, b_int, M).

With θ = 0 every logit is 0, softmax is uniform over the real slots and the output is the mean
up to the kernel's rounding (a_j = round(2^W / L) instead of an exact 1/L).

Shapes: x (B, K, D) float holding integers, meta (B, K, 3) int64 [id, type, bucket] ->
(u (B, D) integers in units of 2^-F, a (B, K) integers in units of 2^-W).
"""

from __future__ import annotations

import torch
from kernels._params import int_range
from kernels.attention_aggregate.brevitas_module import QuantAttentionAggregate, _ste_round


class StudentAttention(QuantAttentionAggregate):
    """:class:`QuantAttentionAggregate` whose q, b_type, b_pos parameters are θ in real units
    divided by γ (module docstring); the integers the kernel is built with come from them."""

    def __init__(self, k: int, d: int, n_types: int, n_buckets: int, q_frac_bits: int = 5,
                 gain: float = 10.0, feature_scale: float = 1.0, **settings):
        self.q_scale = 2.0 ** -q_frac_bits
        self.gain = float(gain)
        super().__init__(k, d, n_types, n_buckets, logit_scale=self.q_scale * feature_scale, **settings)

    def set_feature_scale(self, s_f: torch.Tensor | float) -> None:
        """s_l = s_q · s_f for the fused features' current scale ``s_f``."""
        self.logit_scale = self.q_scale * float(s_f)

    def real_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q_real (D,), b_type_real (T,), b_pos_real (R,)) = γ θ."""
        return self.gain * self.q, self.gain * self.b_type, self.gain * self.b_pos

    def integers(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q_int = round(q_real / s_q), b_int = round(b_real / s_l), clamped (straight-through)."""
        s = self.settings
        qr, br = int_range(s["q_bits"], True), int_range(s["bias_bits"], True)
        q, bt, bp = self.real_parameters()
        return (_ste_round(q / self.q_scale, *qr), _ste_round(bt / self.logit_scale, *br),
                _ste_round(bp / self.logit_scale, *br))

    @torch.no_grad()
    def set_query(self, q_real: torch.Tensor) -> None:
        """Start from a real query vector (θ_q = q_real / γ). Shape (D,)."""
        self.q.copy_(q_real / self.gain)


def attention_settings(shape, in_bits: int) -> dict:
    """The kernel settings of a student shape's attention (``shape``: a StudentShape)."""
    return dict(in_bits=in_bits, in_signed=True, q_bits=shape.att_q_bits, bias_bits=shape.att_bias_bits,
                s_shift=shape.att_s_shift, frac_bits=shape.agg_frac_bits, out_bits=in_bits + shape.agg_frac_bits,
                id_bits=max(1, int(shape.null_id).bit_length()), null_id=shape.null_id)


def build_attention(shape) -> StudentAttention:
    """The attention aggregation of a StudentShape with ``aggregation == "attention"``."""
    return StudentAttention(shape.k, shape.dim, shape.att_types, shape.att_buckets, shape.att_q_frac_bits,
                            shape.att_gain, **attention_settings(shape, shape.act_bits))


def context_ids(ctx: torch.Tensor) -> torch.Tensor:
    """The ids of a context: (B, K) as is, (B, K, 3) [id, type, bucket] -> its ids (B, K)."""
    return ctx[..., 0] if ctx.dim() == 3 else ctx


def context_meta(ctx: torch.Tensor) -> torch.Tensor:
    """(B, K, 3) [id, type, bucket] as is; bare ids (B, K) -> type 0, bucket 0 for every slot."""
    if ctx.dim() == 3:
        return ctx
    zeros = torch.zeros_like(ctx)
    return torch.stack([ctx, zeros, zeros], dim=-1)
