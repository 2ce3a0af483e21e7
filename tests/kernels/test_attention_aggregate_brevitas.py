"""attention_aggregate's training module: its forward on integer inputs is the golden model bit
for bit (u and the weights, padding included), and gradients reach the query, the biases and
the items through the float softmax surrogate."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kernels.attention_aggregate.brevitas_module import QuantAttentionAggregate  # noqa: E402
from kernels.attention_aggregate.golden import attend  # noqa: E402


def module(seed: int, k=20, d=64, n_types=3, n_buckets=8, logit_scale=0.004, **kw) -> QuantAttentionAggregate:
    torch.manual_seed(seed)
    m = QuantAttentionAggregate(k, d, n_types, n_buckets, logit_scale, id_bits=11, null_id=1682, **kw)
    with torch.no_grad():
        m.q.uniform_(-140, 140)   # beyond the INT8 range too: clamped
        m.b_type.uniform_(-100, 100)
        m.b_pos.uniform_(-100, 100)
    return m


def batch(m: QuantAttentionAggregate, n: int, seed: int):
    p = m.kernel_params()
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (p.in_bits - 1)), (1 << (p.in_bits - 1)) - 1) if p.in_signed else (0, (1 << p.in_bits) - 1)
    x = rng.integers(lo, hi + 1, size=(n, p.k, p.d))
    meta = np.stack([rng.integers(0, 1682, (n, p.k)), rng.integers(0, p.n_types, (n, p.k)),
                     rng.integers(0, p.n_buckets, (n, p.k))], -1)
    for b in range(n):
        meta[b, rng.permutation(p.k)[: rng.integers(0, p.k + 1)], 0] = 1682
    meta[0, :, 0] = 1682
    return x, meta


@pytest.mark.parametrize("kw", [{}, dict(in_bits=3, in_signed=False, w_bits=7, g_bits=2, frac_bits=2, out_bits=6,
                                         fb=3, e_bits=12, logit_scale=0.02),
                                dict(k=3, d=4, n_types=1, n_buckets=1, in_bits=5, w_bits=6, g_bits=0, frac_bits=6,
                                     out_bits=12, logit_scale=0.05)])
def test_forward_is_the_golden_model(kw):
    m = module(0, **kw)
    p = m.kernel_params()
    for seed in range(4):
        x, meta = batch(m, 64, seed)
        u, a = m(torch.from_numpy(x).float(), torch.from_numpy(meta))
        gu, ga = attend(p, x, meta)
        np.testing.assert_array_equal(u.detach().numpy().astype(np.int64), gu)
        np.testing.assert_array_equal(a.detach().numpy().astype(np.int64), ga)
        assert np.all(u.detach().numpy() == np.round(u.detach().numpy()))


def test_gradients_reach_the_query_biases_and_items():
    m = module(1)
    x, meta = batch(m, 16, 5)
    xt = torch.from_numpy(x).float().requires_grad_(True)
    u, a = m(xt, torch.from_numpy(meta))
    (u.float().pow(2).mean() + a[:, 0].float().mean()).backward()
    for g in (m.q.grad, m.b_type.grad, m.b_pos.grad, xt.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_kernel_params_hold_the_clamped_integers():
    m = module(2)
    p = m.kernel_params(pe=32, emit_weights=True)
    assert p.pe == 32 and p.emit_weights and max(p.q) <= 127 and min(p.q) >= -128
    assert p.m_mult == m.m_mult and len(p.b_type) == 3 and len(p.b_pos) == 8
