"""Behaviour types and the target-attention sequence model (tiny synthetic data; fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fpgarec.data.behaviour import BehaviourLog, behaviour_types
from fpgarec.data.graph import normalized_adjacency
from fpgarec.data.split import UserSequences
from fpgarec.models.sequence import (
    SequenceContext,
    SequenceTeacher,
    ablated,
    history_context,
    sequence_context,
)
from fpgarec.models.teacher import HybridTeacher
from fpgarec.train.sequence import sequence_batches

N_USERS, N_ITEMS, DIM, K = 4, 12, 8, 5


def test_behaviour_types_hand_case():
    r = np.array([1, 2, 3, 4, 5, 3.5, 4.5, np.nan])
    np.testing.assert_array_equal(behaviour_types(r), [0, 0, 0, 1, 2, 0, 1, 0])
    np.testing.assert_array_equal(behaviour_types(None, 3), [0, 0, 0])
    with pytest.raises(ValueError):
        behaviour_types(None)


def _log() -> BehaviourLog:
    """4 users; user u's log is 4 + 2u items, one hour apart, types cycling view/like/comment."""
    lens = np.array([4, 6, 8, 10])
    indptr = np.concatenate([[0], np.cumsum(lens)])
    rng = np.random.default_rng(0)
    items = np.concatenate([rng.permutation(N_ITEMS)[:n] for n in lens]).astype(np.int64)
    ts = np.concatenate([3600.0 * np.arange(n) for n in lens])
    types = np.concatenate([np.arange(n) % 3 for n in lens]).astype(np.int64)
    return BehaviourLog(indptr=indptr, items=items, types=types, timestamp=ts)


def _prefix(blog: BehaviourLog, frac: float) -> UserSequences:
    """The first ``frac`` of every user's log (as the splits' train parts are)."""
    users, items = [], []
    for u in range(blog.n_users):
        lo, hi = blog.indptr[u], blog.indptr[u + 1]
        n = max(1, int(frac * (hi - lo)))
        users += [u] * n
        items += blog.items[lo : lo + n].tolist()
    return UserSequences.from_pairs(np.array(users), np.array(items), blog.n_users)


def test_log_alignment_prefix_subsequence_and_error():
    blog = _log()
    hist = _prefix(blog, 0.75)
    types, ts = blog.aligned(hist)
    for u in range(N_USERS):
        n = len(hist.of(u))
        lo = blog.indptr[u]
        np.testing.assert_array_equal(
            types[hist.indptr[u] : hist.indptr[u + 1]], blog.types[lo : lo + n]
        )
        np.testing.assert_array_equal(
            ts[hist.indptr[u] : hist.indptr[u + 1]], blog.timestamp[lo : lo + n]
        )
    # an in-order subsequence that is not a prefix: user 3 keeps items 1, 4, 7 of its log
    lo = blog.indptr[3]
    sub = UserSequences.from_pairs(
        np.array([3, 3, 3]), blog.items[lo + np.array([1, 4, 7])], N_USERS
    )
    np.testing.assert_array_equal(blog.positions(sub), lo + np.array([1, 4, 7]))
    bad = UserSequences.from_pairs(np.array([0, 0]), blog.items[[1, 0]], N_USERS)  # wrong order
    with pytest.raises(ValueError):
        blog.positions(bad)


def test_sequence_context_hand_case():
    items = np.array([5, 6, 7, 8, 9])
    types = np.array([0, 1, 2, 0, 1])
    ts = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    ctx = sequence_context(items, types, ts, np.array([0, 3]), np.array([5, 4]), k=3)
    np.testing.assert_array_equal(ctx.items, [[7, 8, 9], [8, 0, 0]])
    np.testing.assert_array_equal(ctx.types, [[2, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(ctx.dt, [[20.0, 10.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(ctx.mask, [[True, True, True], [True, False, False]])
    with pytest.raises(ValueError):
        sequence_context(items, types, ts, np.array([2]), np.array([2]), k=3)


@pytest.fixture(scope="module")
def setup():
    blog = _log()
    train = _prefix(blog, 0.75)
    adj, _ = normalized_adjacency(train, N_ITEMS)
    text = np.random.default_rng(1).normal(size=(N_ITEMS, 16)).astype(np.float32)
    teacher = HybridTeacher(train, N_ITEMS, adj, text, DIM, 2, seed=0, text_hidden=8, k=K).eval()
    return blog, train, teacher


def _model(setup, randomise=True, decay_init=0.3) -> SequenceTeacher:
    blog, train, teacher = setup
    model = SequenceTeacher.from_teacher(
        teacher, train, blog, attn_dim=4, decay_init=decay_init, chunk=5
    )
    if randomise:
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith(("attention.", "type_value")):
                    p.copy_(torch.randn(p.shape, generator=gen))
    return model.eval()


def _seq(n_real=(3, 5), seed=0) -> tuple[np.ndarray, SequenceContext]:
    rng = np.random.default_rng(seed)
    b = len(n_real)
    mask = np.arange(K)[None, :] < np.array(n_real)[:, None]
    ctx = SequenceContext(
        items=np.where(mask, rng.integers(0, N_ITEMS, (b, K)), 0),
        types=np.where(mask, rng.integers(0, 3, (b, K)), 0),
        dt=np.where(mask, rng.uniform(0, 1e5, (b, K)), 0).astype(np.float32),
        mask=mask,
    )
    return np.arange(b) % N_USERS, ctx


def _weights(model, users, ctx, cand):
    with torch.no_grad():
        return model.attention_weights(torch.as_tensor(users), ctx.tensors(), torch.as_tensor(cand))


def test_attention_sums_to_one_and_depends_on_target(setup):
    model = _model(setup)
    users, ctx = _seq()
    cand = np.array([[0, 1, 2], [3, 4, 5]])
    a = _weights(model, users, ctx, cand)
    assert a.shape == (2, 3, K)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 3))
    assert torch.all(a[0, :, 3:] == 0)  # padded slots
    assert not torch.allclose(a[:, 0], a[:, 1])  # another candidate, other weights


def test_time_decay_lowers_old_items_weight(setup):
    model = _model(setup, randomise=False, decay_init=0.5)  # W_q = 0: only the decay differs
    users = np.array([0])
    ctx = SequenceContext(
        items=np.array([[1, 2, 3, 4, 5]]),
        types=np.zeros((1, K), np.int64),
        dt=np.array([[1e6, 1e5, 1e4, 1e3, 0.0]], np.float32),
        mask=np.ones((1, K), bool),
    )
    a = _weights(model, users, ctx, np.array([[7]]))[0, 0]
    assert torch.all(a[:-1] < a[1:])  # older -> lower weight
    with torch.no_grad():
        model.attention.decay_raw += 1.0  # a stronger decay
    b = _weights(model, users, ctx, np.array([[7]]))[0, 0]
    assert b[0] < a[0] and b[-1] > a[-1]


def test_scores_change_with_each_attention_input(setup):
    model = _model(setup)
    users, ctx = _seq()
    base = model.logits(users, ctx)
    for field in ("items", "types", "dt"):
        other = SequenceContext(ctx.items.copy(), ctx.types.copy(), ctx.dt.copy(), ctx.mask)
        arr = getattr(other, field)
        arr[1, 2] = {
            "items": (arr[1, 2] + 1) % N_ITEMS,
            "types": (arr[1, 2] + 1) % 3,
            "dt": arr[1, 2] * 10 + 1e4,
        }[field]
        changed = model.logits(users, other)
        torch.testing.assert_close(changed[0], base[0])  # the other row is untouched
        assert not torch.allclose(changed[1], base[1]), field


def test_slot_order_and_padded_slots_irrelevant(setup):
    model = _model(setup)
    users, ctx = _seq(n_real=(3, 5))
    base = model.logits(users, ctx)
    perm = np.array([2, 0, 1, 3, 4])  # permute the real slots of row 0
    rows = [perm, np.array([4, 2, 0, 3, 1])]  # row 1 has no padding: any permutation
    shuffled = SequenceContext(
        *(
            np.stack([getattr(ctx, f)[r, p] for r, p in enumerate(rows)])
            for f in ("items", "types", "dt", "mask")
        )
    )
    torch.testing.assert_close(model.logits(users, shuffled), base)
    junk = SequenceContext(ctx.items.copy(), ctx.types.copy(), ctx.dt.copy(), ctx.mask)
    junk.items[0, 3:], junk.types[0, 3:], junk.dt[0, 3:] = 9, 2, 5e5
    torch.testing.assert_close(model.logits(users, junk), base)


def test_chunked_scores_match_explicit_user_vectors(setup):
    model = _model(setup)
    users, ctx = _seq()
    full = model.logits(users, ctx)  # chunks of 5 items over 12
    with torch.no_grad():
        x_u, x_i = model.propagate()
        cand = torch.arange(N_ITEMS).repeat(2, 1)
        z = model.user_vectors_for(torch.as_tensor(users), ctx.tensors(), cand, x_u, x_i)
        explicit = (z * x_i[cand]).sum(-1)
    torch.testing.assert_close(full, explicit, rtol=1e-5, atol=1e-5)


def test_without_sequences_it_is_the_teacher(setup):
    """Uniform attention (W_q = 0, no type terms, ~no decay) reads out the teacher's mean."""
    blog, train, teacher = setup
    model = _model(setup, randomise=False, decay_init=1e-6)
    users = np.array([2, 3])  # histories of 6 and 7 items >= K: the cyclic mean is the exact mean
    a = model.score(users, train)
    b = teacher.score(users, train)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_history_context_and_training_step(setup):
    blog, train, _ = setup
    model = _model(setup)
    ctx = history_context(blog, train, np.array([0, 3]), K)
    assert ctx.mask.sum(1).tolist() == [3, 5]
    assert ctx.dt[1, 4] == 0 and np.all(ctx.dt[1, :4] > ctx.dt[1, 1:5])  # ages fall with recency
    batch = next(sequence_batches(train, blog, N_ITEMS, K, 3, 8)(np.random.default_rng(0)))
    assert [t.shape for t in batch] == [(8,), (8, K), (8, K), (8, K), (8, K), (8,), (8,)]
    model.train()
    loss = model(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert (
        model.attention.query.weight.grad is not None and model.attention.decay_raw.grad is not None
    )
    model.zero_grad()
    entry = model.eval().report_entry()
    assert (
        entry["attention"].startswith("host") and "derived from ratings" in entry["behaviour_types"]
    )


def test_ablations(setup):
    blog, train, teacher = setup
    model = _model(setup)
    users, ctx = _seq()
    base = model.logits(users, ctx)
    uniform = ablated(model, "uniform")
    torch.testing.assert_close(model.logits(users, ctx), base)  # the original is untouched
    np.testing.assert_allclose(  # uniform read-out = the teacher (users with >= K items)
        uniform.score(np.array([2, 3]), train),
        teacher.score(np.array([2, 3]), train),
        rtol=1e-4,
        atol=1e-5,
    )
    a = _weights(ablated(model, "no_target"), users, ctx, np.array([[0, 1], [2, 3]]))
    torch.testing.assert_close(a[:, 0], a[:, 1])  # no longer depends on the candidate
    with pytest.raises(ValueError):
        ablated(model, "nothing")
