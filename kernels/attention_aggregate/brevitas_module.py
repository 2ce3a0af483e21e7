"""The module the student trains ``attention_aggregate`` with (torch; quantization-aware).

Forward is the golden model's integer arithmetic exactly (int64 inside: the trained model and
the hardware agree bit for bit); backward goes through a float surrogate of the same maths:

    learned integers:  q = round(q̃), b_type = round(b̃_type), b_pos = round(b̃_pos) (straight-through,
                       clamped to q_bits / bias_bits signed)
    surrogate:         ã_j = softmax_j(s_l · l_j) over the real slots,  ũ = 2^F · Σ_j ã_j x_j
    forward values:    a = a_exact + (2^W ã - (2^W ã).detach()),  u = u_exact + (ũ - ũ.detach())
                       (exactly the integers: v - v == 0 in floating point, unlike
                       ũ + (u_exact - ũ).detach(), which float32 may round off by one)

where l_j = q . x_j + b_type[t_j] + b_pos[r_j] is exact in float32 (|l| < 2^24 for the widths the
kernel builds) and a_exact, u_exact are golden.py's integer exp / reciprocal / rounding
(``s_l`` is the logit's real scale: M = round(s_l / ln 2 · 2^(S+FB)), ``golden.exp_scale``).
The inputs are the integers of the fused item vectors (real vector = scale · integer); the
caller multiplies u by ``scale / 2^F`` to get a real vector back.

Shapes: x (B, K, D) float holding integers, meta (B, K, 3) int64 [id, type, bucket] ->
(u (B, D) float holding integers, a (B, K) float holding integers).
"""

from __future__ import annotations

import torch
from torch import nn

from kernels._params import int_range
from kernels.attention_aggregate.golden import AttentionParams, exp_scale, exp_table


def _ste_round(v: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    r = torch.clamp(torch.round(v.detach()), lo, hi)
    return r + (v - v.detach())


class QuantAttentionAggregate(nn.Module):
    """Attention pooling over K slots with the kernel's integer softmax (padding: ``null_id``
    slots get weight 0; a query without real slots gives zeros)."""

    def __init__(self, k: int, d: int, n_types: int, n_buckets: int, logit_scale: float,
                 in_bits: int = 4, in_signed: bool = True, q_bits: int = 8, bias_bits: int = 8,
                 s_shift: int = 12, fb: int = 4, e_bits: int = 15, w_bits: int = 10, g_bits: int = 4,
                 frac_bits: int = 4, out_bits: int = 8, id_bits: int = 16, null_id: int = 0):
        super().__init__()
        self.k, self.d = k, d
        self.settings = dict(in_bits=in_bits, in_signed=in_signed, q_bits=q_bits, bias_bits=bias_bits,
                             s_shift=s_shift, fb=fb, e_bits=e_bits, w_bits=w_bits, g_bits=g_bits,
                             frac_bits=frac_bits, out_bits=out_bits, id_bits=id_bits, null_id=null_id)
        self.logit_scale = float(logit_scale)
        self.q = nn.Parameter(torch.zeros(d))
        self.b_type = nn.Parameter(torch.zeros(n_types))
        self.b_pos = nn.Parameter(torch.zeros(n_buckets))
        self.kernel_params(pe=1)  # refuse unbuildable settings now
        self.register_buffer("table", torch.from_numpy(exp_table(self.kernel_params(pe=1))), persistent=False)

    @property
    def m_mult(self) -> int:
        return exp_scale(self.logit_scale, self.settings["s_shift"], self.settings["fb"])

    def integers(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The learned q, b_type, b_pos as rounded values (straight-through gradients)."""
        s = self.settings
        qr, br = int_range(s["q_bits"], True), int_range(s["bias_bits"], True)
        return _ste_round(self.q, *qr), _ste_round(self.b_type, *br), _ste_round(self.b_pos, *br)

    def kernel_params(self, pe: int = 1, emit_weights: bool = False) -> AttentionParams:
        """The hardware parameters of this module (its learned integers) at PE lanes."""
        q, bt, bp = (tuple(int(v) for v in t.detach().round().long().tolist()) for t in self.integers())
        return AttentionParams(k=self.k, d=self.d, pe=pe, q=q, b_type=bt, b_pos=bp, m_mult=self.m_mult,
                               emit_weights=emit_weights, **self.settings)

    def forward(self, x: torch.Tensor, meta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.settings
        q, bt, bp = self.integers()
        meta = meta.long()
        real = meta[..., 0] != s["null_id"]                                       # (B, K)
        types = meta[..., 1].remainder(len(bt))
        buckets = meta[..., 2].remainder(len(bp))
        logits = x @ q + bt[types] + bp[buckets]                                  # (B, K), exact
        # float surrogate (gradients)
        z = torch.where(real, self.logit_scale * logits, torch.full_like(logits, -1e30))
        a_f = torch.softmax(z, dim=1) * real
        a_f = a_f * real.any(dim=1, keepdim=True)
        scale_w = float(1 << s["w_bits"])
        u_f = torch.einsum("bk,bkd->bd", a_f, x) * float(1 << s["frac_bits"])
        # exact integer forward (golden.py)
        a_i, u_i = self._exact(x.detach().round().long(), logits.detach().round().long(), real)
        # value + (g - g.detach()): the value exactly (x - x == 0 in floating point), g's gradient
        a = a_i.to(a_f.dtype) + (a_f * scale_w - (a_f * scale_w).detach())
        u = u_i.to(u_f.dtype) + (u_f - u_f.detach())
        return u, a

    def _exact(self, x: torch.Tensor, logits: torch.Tensor, real: torch.Tensor):
        s = self.settings
        lowest = torch.iinfo(torch.int64).min
        m = torch.where(real, logits, torch.full_like(logits, lowest)).amax(dim=1, keepdim=True)
        d = torch.where(real, m - logits, torch.zeros_like(logits))
        y = (d * self.m_mult) >> s["s_shift"]
        i = torch.clamp(y >> s["fb"], max=s["e_bits"] + 1)
        f = y & ((1 << s["fb"]) - 1)
        e = torch.where(real, self.table[f] >> i, torch.zeros_like(f))
        z = e.sum(dim=1, keepdim=True)
        num = 1 << (s["e_bits"] + s["w_bits"] + s["g_bits"])
        rz = torch.where(z > 0, torch.div(num, z.clamp(min=1), rounding_mode="floor"), torch.zeros_like(z))
        sh = s["e_bits"] + s["g_bits"]
        a = torch.where(rz > 0, (e * rz + (1 << (sh - 1))) >> sh, torch.zeros_like(e))
        acc = (a.unsqueeze(-1) * x).sum(dim=1)
        shu = s["w_bits"] - s["frac_bits"]
        u = (acc + ((1 << (shu - 1)) if shu else 0)) >> shu
        lo, hi = int_range(s["out_bits"], s["in_signed"])
        return a, u.clamp(lo, hi)
