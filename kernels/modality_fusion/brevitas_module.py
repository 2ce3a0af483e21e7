"""The module the student trains ``modality_fusion`` with (torch; quantization-aware).

M modality features arrive as integers x_m with real scales s_m (Brevitas' quantized
embeddings); the fused feature is y·s_y with

    a = softmax(g)                                   learned modality weights (explanations)
    W_m = clamp(round(a_m · s_m / s_y · 2^F), INT(w_bits))          (straight-through round)
    y   = clamp(floor((Σ_m W_m x_m + 2^(F-1)) / 2^F), INT(out_bits))  (straight-through)

exactly as the kernel computes (golden.py). F is the largest shift (<= ``max_frac_bits``) at
which every W_m still fits ``w_bits``: a power-of-two scale for the weights, chosen from the
current values (not learned). s_y is the learned scale of a Brevitas ``QuantIdentity`` applied
to the real fusion z = Σ_m a_m s_m x_m; its output q = s_y·clamp(round(z/s_y)) carries the
gradient (for a, s_y and the tables), the forward value is the kernel's y:

    y = q/s_y + (y_kernel - q/s_y).detach()

Shapes: xs M tensors (..., D) float holding integers, scales (M,) -> ((..., D) integers y, s_y).
"""

from __future__ import annotations

import math

import torch
from brevitas.nn import QuantIdentity
from torch import nn

from kernels.modality_fusion.golden import FusionParams


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class QuantModalityFusion(nn.Module):
    def __init__(self, m: int = 2, out_bits: int = 8, w_bits: int = 10, max_frac_bits: int = 16):
        super().__init__()
        self.m, self.out_bits, self.w_bits, self.max_frac_bits = m, out_bits, w_bits, max_frac_bits
        self.gate = nn.Parameter(torch.zeros(m))
        # holds the learned output scale s_y (its forward is not used: the rounding is the kernel's)
        self.out_quant = QuantIdentity(bit_width=out_bits)

    def modality_weights(self) -> torch.Tensor:
        """a = softmax(g). Shape (M,)."""
        return torch.softmax(self.gate, dim=0)

    def out_scale(self) -> torch.Tensor:
        return self.out_quant.act_quant.scale()

    def integer_weights(self, scales: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(W (M,) float holding integers, with straight-through gradient; F)."""
        ratio = self.modality_weights() * scales / self.out_scale()
        w_max = (1 << (self.w_bits - 1)) - 1
        biggest = float(ratio.detach().abs().max())
        frac = self.max_frac_bits if biggest == 0 else int(math.floor(math.log2(w_max / biggest)))
        frac = max(0, min(self.max_frac_bits, frac))
        w = _round_ste(ratio * (1 << frac)).clamp(-w_max - 1, w_max)
        return w, frac

    def kernel_params(self, scales: torch.Tensor, d: int, pe: int, in_bits: int) -> FusionParams:
        """The hardware parameters for the current weights (D channels at PE lanes)."""
        with torch.no_grad():
            w, frac = self.integer_weights(scales)
        return FusionParams(weights=tuple(int(v) for v in w.round().tolist()), d=d, pe=pe, in_bits=in_bits,
                            w_bits=self.w_bits, frac_bits=frac, out_bits=self.out_bits)

    def forward(self, xs: list[torch.Tensor], scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.modality_weights()
        z = sum(a[i] * scales[i] * xs[i] for i in range(self.m))
        q = self.out_quant(z)  # Brevitas' quantizer: learns s_y, gives the gradient
        s_y = self.out_scale()
        surrogate = q / s_y
        with torch.no_grad():
            w, frac = self.integer_weights(scales)
            acc = sum(w[i] * xs[i] for i in range(self.m))  # exact: |acc| < 2^24
            y = torch.floor((acc + (1 << frac >> 1)) / (1 << frac)) if frac else acc
            lo, hi = -(1 << (self.out_bits - 1)), (1 << (self.out_bits - 1)) - 1
            y = y.clamp(lo, hi)
        return surrogate + (y - surrogate).detach(), s_y
