"""The quantized student: permutation invariance over neighbours, shapes, padding, QONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fpgarec.data.sampler import context_slots, items_as_context
from fpgarec.models.student import QuantStudent, StudentShape


def _calibrated(n_items=50, dim=16, k=6, bits=4, seed=0) -> QuantStudent:
    torch.manual_seed(seed)
    st = QuantStudent(StudentShape(n_items, dim, k, bits, bits))
    st.train()
    with torch.no_grad():  # let the activation quantizers collect their statistics
        for _ in range(3):
            st(torch.randint(0, n_items, (32, k)))
    return st.eval()


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_scores_invariant_to_neighbour_order(bits):
    st = _calibrated(bits=bits)
    rng = np.random.default_rng(1)
    ctx = torch.from_numpy(rng.integers(0, 50, size=(64, 6)))
    perm = torch.from_numpy(rng.permutation(6))
    with torch.no_grad():
        a, b = st(ctx), st(ctx[:, perm])
    assert a.shape == (64, 50)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_scores_change_with_neighbours():
    st = _calibrated()
    with torch.no_grad():
        a = st(torch.zeros(1, 6, dtype=torch.long))
        b = st(torch.arange(6).unsqueeze(0))
    assert not torch.equal(a, b)


def test_scores_lie_on_one_quantization_grid():
    """Every score is an integer multiple of one scale: the hardware's integer accumulator."""
    st = _calibrated(bits=4)
    with torch.no_grad():
        s = st(torch.randint(0, 50, (16, 6))).double()
        u_scale = st.relu.act_quant.scale().double() if callable(getattr(st.relu.act_quant, "scale", None)) else None
    if u_scale is None:
        pytest.skip("this brevitas version does not expose the activation scale")
    w_scale = st.scorer.quant_weight().scale.double()
    ints = s / (u_scale * w_scale)
    # float32 arithmetic in brevitas leaves ~1e-5 of rounding noise; the grid spacing is 1
    torch.testing.assert_close(ints, ints.round(), rtol=0, atol=1e-3)
    assert ints.abs().max() > 1


def test_cyclic_padding_keeps_the_mean_exact_when_count_divides_k():
    ctx = items_as_context([np.array([3, 7, 9, 11, 12])], k=20)
    assert ctx.shape == (1, 20)
    counts = np.bincount(ctx[0], minlength=13)
    assert set(counts[[3, 7, 9, 11, 12]]) == {4}
    assert counts.sum() == 20


def test_context_slots_take_the_most_recent_items():
    pos = context_slots(np.array([0, 10]), np.array([30, 13]), k=4)
    np.testing.assert_array_equal(pos[0], [26, 27, 28, 29])
    np.testing.assert_array_equal(pos[1], [10, 11, 12, 10])
    with pytest.raises(ValueError):
        context_slots(np.array([5]), np.array([5]), k=4)


def test_context_slots_mix_recent_and_evenly_spaced_older_items():
    # a 40-item history at positions 100..139, K = 8 with 5 recent slots: the 3 older slots are
    # spread over the 35 older positions (100 + floor(j * 35 / 3) = 100, 111, 123)
    pos = context_slots(np.array([100]), np.array([140]), k=8, n_recent=5)
    np.testing.assert_array_equal(pos[0], [100, 111, 123, 135, 136, 137, 138, 139])
    # short histories keep the cyclic rule, so a 4-item user is still exact
    short = context_slots(np.array([0]), np.array([4]), k=8, n_recent=5)
    np.testing.assert_array_equal(short[0], [0, 1, 2, 3, 0, 1, 2, 3])


def test_ease_is_the_closed_form():
    """EASE's weights solve min ||X - XB||² + λ||B||² with diag(B) = 0 (Steck 2019)."""
    from fpgarec.data.split import UserSequences
    from fpgarec.models.ease import EASE

    rng = np.random.default_rng(0)
    x = (rng.random((30, 6)) < 0.4).astype(float)
    u, i = np.nonzero(x)
    seqs = UserSequences.from_pairs(u, i, 30)
    model = EASE(seqs, 6, lam=2.0)
    b = model.weights
    assert np.allclose(np.diag(b), 0)
    # stationarity: (XᵀX + λI) B - XᵀX is zero off the diagonal
    g = x.T @ x
    resid = (g + 2.0 * np.eye(6)) @ b - g
    assert np.allclose(resid - np.diag(np.diag(resid)), 0, atol=1e-9)
    np.testing.assert_allclose(model.score(np.arange(3), seqs), x[:3] @ b)


def test_evaluation_scores_keep_integer_ties_exact():
    """score() ranks the exact integers z the hardware ranks: equal z give bit-equal scores (so
    the tie rule, not float summation order, decides), and z agrees with the float forward."""
    from fpgarec.data.split import UserSequences

    st = _calibrated(bits=2, n_items=60)  # 2 bits: many equal integer scores
    rng = np.random.default_rng(3)
    items = np.concatenate([rng.choice(60, size=8, replace=False) for _ in range(40)])
    history = UserSequences.from_pairs(np.repeat(np.arange(40), 8), items, 40)
    s = st.score(np.arange(40), history)
    from fpgarec.data.sampler import recent_items

    ctx = torch.from_numpy(recent_items(history, np.arange(40, dtype=np.int64), st.k, st.shape.n_recent,
                                        null_id=st.shape.null_id))
    z = st.integer_scores(ctx).numpy()
    for b in range(40):
        for value in np.unique(z[b]):
            assert np.unique(s[b][z[b] == value]).size == 1
    assert (np.diff(s[b][np.argsort(z[b], kind="stable")]) >= 0).all()
    with torch.no_grad():
        f = st(ctx).double().numpy()
    np.testing.assert_allclose(s, f, rtol=0, atol=1e-4 * np.abs(f).max())
