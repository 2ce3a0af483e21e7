"""The kernels' golden models: the rounding claims, the padding scheme, parameter refusals."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from kernels._params import KernelParameterError
from kernels.modality_fusion.golden import FusionParams, contributions, fuse
from kernels.neighbor_aggregate.golden import AggregateParams, aggregate, reciprocals

NULL = 15


def _query(values: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
    feats = np.zeros((1, k, 1), np.int64)
    ids = np.full((1, k), NULL)
    feats[0, : len(values), 0] = values
    ids[0, : len(values)] = 1
    return feats, ids


def _split(total: int, n: int, lo: int, hi: int) -> list[int]:
    """n values in [lo, hi] that sum to total."""
    out, rem = [], total
    for j in range(n):
        left = n - j - 1
        v = min(hi, rem - left * lo) if rem >= 0 else max(lo, rem - left * hi)
        v = min(hi, max(lo, v))
        out.append(v)
        rem -= v
    assert rem == 0
    return out


@pytest.mark.parametrize("b,signed,k,frac", [(3, True, 5, 0), (3, True, 5, 2), (2, False, 7, 1),
                                             (4, True, 3, 3), (2, True, 8, 0), (3, False, 6, 0)])
def test_mean_is_the_exactly_rounded_mean(b, signed, k, frac):
    """Every reachable sum S and count n: y == floor(S·2^P/n + 1/2), checked exhaustively."""
    p = AggregateParams(k=k, d=1, pe=1, in_bits=b, in_signed=signed, mode="mean", frac_bits=frac,
                        id_bits=4, null_id=NULL)
    lo, hi = (-(1 << (b - 1)), (1 << (b - 1)) - 1) if signed else (0, (1 << b) - 1)
    for n in range(1, k + 1):
        for s in range(n * lo, n * hi + 1):
            y = int(aggregate(p, *_query(_split(s, n, lo, hi), k))[0, 0])
            assert y == math.floor(Fraction(s * 2**frac, n) + Fraction(1, 2)), (n, s)


def test_mean_of_fewer_than_k_neighbours_ignores_the_padding():
    """A cold-start user with 3 items padded to K=20 gets the mean of its 3 items."""
    p = AggregateParams(k=20, d=4, pe=2, in_bits=8, mode="mean", frac_bits=0, id_bits=11, null_id=1682)
    rng = np.random.default_rng(0)
    feats = rng.integers(-128, 128, size=(1, 20, 4))
    ids = np.full((1, 20), 1682)
    ids[0, :3] = [5, 9, 11]
    want = np.floor(feats[0, :3].sum(0) / 3 + 0.5).astype(np.int64)
    np.testing.assert_array_equal(aggregate(p, feats, ids)[0], want)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_aggregation_is_invariant_to_neighbour_order(mode):
    p = AggregateParams(k=6, d=8, pe=4, in_bits=4, mode=mode, id_bits=4, null_id=NULL)
    rng = np.random.default_rng(1)
    feats = rng.integers(-8, 8, size=(5, 6, 8))
    ids = rng.integers(0, 16, size=(5, 6))
    perm = rng.permutation(6)
    np.testing.assert_array_equal(aggregate(p, feats, ids), aggregate(p, feats[:, perm], ids[:, perm]))


def test_sum_max_and_empty_queries():
    p_sum = AggregateParams(k=3, d=2, pe=1, in_bits=4, mode="sum", id_bits=4, null_id=NULL)
    p_max = AggregateParams(k=3, d=2, pe=1, in_bits=4, mode="max", id_bits=4, null_id=NULL)
    feats = np.array([[[1, -8], [7, 2], [-3, 5]], [[1, 1], [1, 1], [1, 1]]])
    ids = np.array([[0, 1, NULL], [NULL, NULL, NULL]])
    np.testing.assert_array_equal(aggregate(p_sum, feats, ids), [[8, -6], [0, 0]])
    np.testing.assert_array_equal(aggregate(p_max, feats, ids), [[7, 2], [0, 0]])
    assert p_sum.out_bits == 6 and p_max.out_bits == 4


def test_output_datatypes_hold_every_output():
    rng = np.random.default_rng(2)
    for mode, signed in itertools.product(["sum", "mean", "max"], [True, False]):
        p = AggregateParams(k=20, d=4, pe=4, in_bits=4, in_signed=signed, mode=mode,
                            frac_bits=3 if mode == "mean" else 0, id_bits=5, null_id=31)
        lo, hi = (-8, 7) if signed else (0, 15)
        for extreme in (lo, hi):
            feats = np.full((1, 20, 4), extreme)
            y = aggregate(p, feats, np.zeros((1, 20), np.int64))
            olo, ohi = (-(1 << (p.out_bits - 1)), (1 << (p.out_bits - 1)) - 1) if signed else (0, (1 << p.out_bits) - 1)
            assert olo <= y.min() and y.max() <= ohi, (mode, signed, extreme)
        feats = rng.integers(lo, hi + 1, size=(50, 20, 4))
        assert aggregate(p, feats, rng.integers(0, 32, size=(50, 20))).shape == (50, 4)


def test_reciprocal_table():
    p = AggregateParams(k=4, d=1, pe=1, in_bits=2, mode="mean", id_bits=3, null_id=7)
    r = reciprocals(p)
    assert r[0] == 0 and r[1] == 1 << p.shift and r[3] == -(-(1 << p.shift) // 3)


@pytest.mark.parametrize("kwargs,name", [
    (dict(k=0, d=8, pe=2, in_bits=8), "K=0"),
    (dict(k=4, d=8, pe=3, in_bits=8), "PE=3 does not divide D=8"),
    (dict(k=4, d=8, pe=2, in_bits=1), "in_bits=1"),
    (dict(k=4, d=8, pe=2, in_bits=8, mode="median"), "mode='median'"),
    (dict(k=4, d=8, pe=2, in_bits=8, mode="sum", frac_bits=2), "frac_bits=2"),
    (dict(k=4, d=8, pe=2, in_bits=8, id_bits=4, null_id=16), "null_id=16"),
])
def test_aggregate_refuses_unbuildable_parameters(kwargs, name):
    with pytest.raises(KernelParameterError, match=name.replace("(", r"\(")):
        AggregateParams(**kwargs)


def test_fusion_matches_the_formula():
    p = FusionParams(weights=(90, -37, 5), d=4, pe=2, in_bits=4, w_bits=8, frac_bits=6, out_bits=4)
    rng = np.random.default_rng(3)
    x = rng.integers(-8, 8, size=(3, 10, 4))
    acc = 90 * x[0] - 37 * x[1] + 5 * x[2]
    want = np.clip(np.floor(acc / 64 + 0.5), -8, 7)
    np.testing.assert_array_equal(fuse(p, x), want)
    np.testing.assert_allclose(contributions(p, x).sum(0), acc / 64)


def test_fusion_without_fraction_and_unsigned_output():
    p = FusionParams(weights=(1, 2), d=2, pe=1, in_bits=3, in_signed=False, frac_bits=0,
                     out_bits=4, out_signed=False)
    np.testing.assert_array_equal(fuse(p, [[[7, 1]], [[7, 0]]]), [[15, 1]])


@pytest.mark.parametrize("kwargs,name", [
    (dict(weights=(), d=8, pe=2, in_bits=4), "weights"),
    (dict(weights=(1, 2), d=8, pe=3, in_bits=4), "PE=3 does not divide D=8"),
    (dict(weights=(1, 200), d=8, pe=2, in_bits=4, w_bits=8), r"weights\[1\]=200"),
    (dict(weights=(1, 2), d=8, pe=2, in_bits=40), "in_bits=40"),
    (dict(weights=(1, 2), d=0, pe=2, in_bits=4), "D=0"),
])
def test_fusion_refuses_unbuildable_parameters(kwargs, name):
    with pytest.raises(KernelParameterError, match=name):
        FusionParams(**kwargs)
