"""The module the student trains ``neighbor_aggregate`` with (torch; quantization-aware).

Forward is the golden model's integer arithmetic exactly (int64 inside, so the trained model
and the hardware agree bit for bit); backward is the straight-through estimate of the exact
real-valued reduction:

    mean: y = S·2^P / n  forward-replaced by  (S·Rcp[n] + C) >> SH   (see golden.py)
    sum:  y = S;   max: y = max over the real neighbours (the gradient flows to the argmax)

Inputs are the integers of the fused features (real feature = scale · integer), so the caller
multiplies the output by ``scale / 2^P`` to get back a real mean.

Shapes: x (B, K, D) float holding integers, ids (B, K) int64 -> (B, D) float holding integers.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels.neighbor_aggregate.golden import AggregateParams, reciprocals


class QuantNeighborAggregate(nn.Module):
    """Masked sum / mean / max over K neighbours with the kernel's padding and rounding.

    ``null_id`` slots are not neighbours; a query with none gives 0.
    """

    def __init__(self, k: int, mode: str = "mean", frac_bits: int = 0, null_id: int = 0,
                 in_bits: int = 8, in_signed: bool = True, id_bits: int = 16):
        super().__init__()
        self.params = AggregateParams(k=k, d=1, pe=1, in_bits=in_bits, in_signed=in_signed, mode=mode,
                                      frac_bits=frac_bits, id_bits=id_bits, null_id=null_id)
        self.register_buffer("rcp", torch.from_numpy(reciprocals(self.params)), persistent=False)

    def kernel_params(self, d: int, pe: int) -> AggregateParams:
        """The hardware parameters of this aggregation for D channels at PE lanes."""
        p = self.params
        return AggregateParams(k=p.k, d=d, pe=pe, in_bits=p.in_bits, in_signed=p.in_signed, mode=p.mode,
                               frac_bits=p.frac_bits, id_bits=p.id_bits, null_id=p.null_id)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        p = self.params
        real = (ids != p.null_id).unsqueeze(-1)  # (B, K, 1)
        n = real.sum(dim=1)  # (B, 1)
        if p.mode == "max":
            lowest = torch.finfo(x.dtype).min
            y = torch.where(real, x, torch.full_like(x, lowest)).amax(dim=1)
            return torch.where(n > 0, y, torch.zeros_like(y))
        s = (x * real).sum(dim=1)  # (B, D), exact: integers far below 2^24
        if p.mode == "sum":
            return s
        ideal = s * float(1 << p.frac_bits) / n.clamp(min=1)
        s_int = torch.round(s.detach()).to(torch.int64)
        exact = (s_int * self.rcp[n.squeeze(-1)].unsqueeze(-1) + p.rounding) >> p.shift
        return ideal + (exact.to(ideal.dtype) - ideal).detach()
