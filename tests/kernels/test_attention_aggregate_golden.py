"""attention_aggregate's golden model: the softmax properties, the padding scheme, closeness to
a float softmax, the exact reciprocal and exp table, parameter refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kernels._params import KernelParameterError
from kernels.attention_aggregate.golden import (
    AttentionParams,
    attend,
    exp_scale,
    exp_table,
    exps,
    hdl_params,
    logits,
    pack_meta,
    reciprocal,
    unpack_meta,
)

NULL = 1682


def demo(seed: int = 0, **kw) -> AttentionParams:
    """The demo configuration (K 20, D 64, PE 32, INT4, T 3, R 8, Q INT8, W 10, F 4, INT8 out)
    with random learned constants."""
    rng = np.random.default_rng(seed)
    base = dict(k=20, d=64, pe=32, in_bits=4, q=tuple(rng.integers(-128, 128, 64)),
                b_type=tuple(rng.integers(-128, 128, 3)), b_pos=tuple(rng.integers(-128, 128, 8)),
                m_mult=exp_scale(0.01, 12, 4), s_shift=12, id_bits=11, null_id=NULL)
    return AttentionParams(**{**base, **kw})


def queries(p: AttentionParams, n: int, seed: int = 1, n_real=None):
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (p.in_bits - 1)), (1 << (p.in_bits - 1)) - 1) if p.in_signed else (0, (1 << p.in_bits) - 1)
    x = rng.integers(lo, hi + 1, size=(n, p.k, p.d))
    ids = rng.integers(0, 1 << p.id_bits, size=(n, p.k))
    ids[ids == p.null_id] = (p.null_id + 1) % (1 << p.id_bits)
    for b in range(n):
        r = rng.integers(0, p.k + 1) if n_real is None else n_real
        ids[b, rng.permutation(p.k)[: p.k - r]] = p.null_id
    meta = np.stack([ids, rng.integers(0, p.n_types, (n, p.k)), rng.integers(0, p.n_buckets, (n, p.k))], -1)
    return x, meta


def test_weights_sum_to_2_to_the_w_within_rounding():
    p = demo()
    x, meta = queries(p, 300)
    _, a = attend(p, x, meta)
    n = (meta[..., 0] != NULL).sum(1)
    assert a.min() >= 0 and a.max() <= 1 << p.w_bits
    s = a.sum(1)
    real = n > 0
    # Σ e_j·rz <= 2^(E+W+G) (floor of the reciprocal), each a_j rounds by at most 1/2
    assert np.all(s[real] <= (1 << p.w_bits) + n[real] // 2 + 1)
    assert np.all(s[real] >= (1 << p.w_bits) - n[real]), s[real].min()
    assert np.all(s[~real] == 0)


def test_permuting_the_slots_permutes_the_weights_and_keeps_the_output():
    p = demo(3)
    x, meta = queries(p, 50, seed=4)
    u, a = attend(p, x, meta)
    rng = np.random.default_rng(5)
    for _ in range(5):
        perm = rng.permutation(p.k)
        u2, a2 = attend(p, x[:, perm], meta[:, perm])
        np.testing.assert_array_equal(u2, u)
        np.testing.assert_array_equal(a2, a[:, perm])


def test_padding_slots_get_no_weight_whatever_they_carry():
    p = demo(6)
    x, meta = queries(p, 60, seed=7)
    u, a = attend(p, x, meta)
    pad = meta[..., 0] == NULL
    assert np.all(a[pad] == 0)
    rng = np.random.default_rng(8)
    x2, meta2 = x.copy(), meta.copy()
    x2[pad] = rng.integers(-8, 8, size=(int(pad.sum()), p.d))
    meta2[..., 1][pad] = rng.integers(0, 4, size=int(pad.sum()))  # junk types, even out of range
    meta2[..., 2][pad] = rng.integers(0, 8, size=int(pad.sum()))
    u2, a2 = attend(p, x2, meta2)
    np.testing.assert_array_equal(u2, u)
    np.testing.assert_array_equal(a2, a)


def test_an_all_padding_query_outputs_zeros():
    p = demo(9, emit_weights=True)
    x, meta = queries(p, 4, seed=10, n_real=0)
    u, a = attend(p, x, meta)
    assert not u.any() and not a.any()


def test_equal_logits_get_equal_weights_and_one_item_gets_everything():
    p = demo(11)
    x = np.zeros((1, p.k, p.d), np.int64)
    x[0] = np.random.default_rng(12).integers(-8, 8, size=p.d)  # the same item in every slot
    meta = np.zeros((1, p.k, 3), np.int64)
    meta[0, :, 0] = np.arange(p.k)
    meta[0, 7:, 0] = NULL
    _, a = attend(p, x, meta)
    assert len(set(a[0, :7].tolist())) == 1 and a[0, 0] == round(1024 / 7)
    meta[0, 1:, 0] = NULL
    u, a = attend(p, x, meta)
    assert a[0, 0] == 1 << p.w_bits
    np.testing.assert_array_equal(u[0], np.clip(x[0, 0] << p.frac_bits, -128, 127))


def test_m_zero_is_a_uniform_mean():
    """M = 0: every real slot has e = 2^E, the weights are round(2^W / n)."""
    p = demo(13, m_mult=0)
    x, meta = queries(p, 40, seed=14)
    _, a = attend(p, x, meta)
    n = (meta[..., 0] != NULL).sum(1)
    for b in range(40):
        if n[b]:
            want = ((1 << 15) * ((1 << 29) // (n[b] << 15)) + (1 << 18)) >> 19
            assert set(a[b][meta[b, :, 0] != NULL].tolist()) == {want}


@pytest.mark.parametrize("s_l,fb", [(0.01, 4), (0.03, 5), (0.003, 4)])
def test_weights_and_output_match_a_float_softmax(s_l, fb):
    """a_j / 2^W == softmax(s_l · l_j) within the quantization: the exp's fraction is floored to
    2^-FB (relative error < ln2 · 2^-FB per weight), M is rounded, a_j rounds to 2^-W."""
    p = demo(15, m_mult=exp_scale(s_l, 14, fb), s_shift=14, fb=fb)
    x, meta = queries(p, 200, seed=16)
    u, a = attend(p, x, meta)
    lg = logits(p, x, meta).astype(np.float64)
    real = meta[..., 0] != NULL
    z = np.where(real, s_l * lg, -1e300)
    z -= z.max(1, keepdims=True)
    sm = np.where(real, np.exp(z), 0.0)
    sm /= np.maximum(sm.sum(1, keepdims=True), 1e-300)
    rel = math.log(2) * 2.0 ** -fb  # the exp's floor, at most this relative error
    err = np.abs(a / 1024 - sm)
    assert np.all(err <= 2 * rel * sm + 2 * 2.0 ** -p.w_bits + 1e-3), err.max()
    uf = np.einsum("bk,bkd->bd", sm, x) * 16
    assert np.abs(u - np.clip(uf, -128, 127)).max() <= 8 * (2 * rel + 0.02) * 16 + 1


def test_exp_table_and_reciprocal_are_exact():
    p = demo()
    t = exp_table(p)
    assert t[0] == 1 << p.e_bits and len(t) == 1 << p.fb and np.all(np.diff(t) < 0)
    f = np.arange(1 << p.fb)
    assert np.all(np.abs(t - 2.0 ** (p.e_bits - f / (1 << p.fb))) <= 0.5)
    z = np.arange(1 << p.e_bits, 21 << p.e_bits, 977)
    rz = reciprocal(p, z)
    num = 1 << (p.e_bits + p.w_bits + p.g_bits)
    assert np.all(rz * z <= num) and np.all((rz + 1) * z > num)
    assert reciprocal(p, np.array([0]))[0] == 0


def test_exp_of_far_logits_is_zero_and_max_slot_is_2_to_the_e():
    p = demo(m_mult=1 << 12, s_shift=12)  # y = d: i = d >> 4 (s_l = ln2 / 16)
    lg = np.array([[0, -16, -32, -16 * 16, -16 * 17, -10**5] + [0] * 14])
    real = np.zeros((1, 20), bool)
    real[0, :6] = True
    e = exps(p, lg, real)[0]
    assert e[0] == 1 << 15 and e[1] == 1 << 14 and e[2] == 1 << 13 and e[3] == 0 and e[4] == 0 and e[5] == 0
    assert not e[6:].any()


def test_meta_packing_round_trips():
    p = demo()
    _, meta = queries(p, 10)
    w = pack_meta(p, meta)
    assert w.max() < 1 << p.meta_bits and p.meta_bits == 11 + 2 + 3
    np.testing.assert_array_equal(unpack_meta(p, w), meta)


def test_hdl_params_pack_the_constants():
    p = demo(emit_weights=True)
    h = hdl_params(p)
    q = int(h["Q"].split("'h")[1], 16)
    assert [((q >> (8 * i)) & 255) - (256 if (q >> (8 * i)) & 128 else 0) for i in range(64)] == list(p.q)
    assert h["EMIT_WEIGHTS"] == 1 and h["T"] == 3 and h["R"] == 8


@pytest.mark.parametrize("kwargs,name", [
    (dict(pe=3), "PE=3 does not divide D=64"), (dict(k=0), "K=0"), (dict(q=(1,) * 63), "q: 63 values"),
    (dict(q=(200,) + (0,) * 63), r"q\[0\]=200"), (dict(b_type=(1, 2, 300)), r"b_type\[2\]=300"),
    (dict(b_pos=()), "b_pos"), (dict(m_mult=-1), "m_mult"), (dict(frac_bits=11), "frac_bits"),
    (dict(null_id=5000), "null_id=5000"), (dict(in_bits=1), "in_bits"), (dict(fb=9), "fb"),
])
def test_refuses_unbuildable_parameters(kwargs, name):
    with pytest.raises(KernelParameterError, match=name):
        demo(**kwargs)


def test_refuses_bad_inputs():
    p = demo()
    x, meta = queries(p, 2, n_real=20)
    with pytest.raises(ValueError, match="outside INT4"):
        attend(p, x + 100, meta)
    meta[0, 0, 1] = 3
    with pytest.raises(ValueError, match="type outside 0..2"):
        attend(p, x, meta)
