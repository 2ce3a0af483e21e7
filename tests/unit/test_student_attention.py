"""The attention student (aggregation "attention"): the kernel's integers bit for bit, the
uniform start equals the mean student, the sampler's behaviour types and recency buckets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kernels.attention_aggregate.golden import attend

from fpgarec.data.behaviour import BehaviourLog
from fpgarec.data.sampler import (
    next_item_examples,
    recency_bucket,
    recent_items,
    recent_items_meta,
    slot_meta,
)
from fpgarec.data.split import UserSequences
from fpgarec.models.student import QuantStudent, StudentShape

N, D, K = 40, 16, 8


def _pair(bits: int = 4, seed: int = 0) -> tuple[QuantStudent, QuantStudent]:
    """(mean student, attention student) with the same weights, quantizers calibrated."""
    torch.manual_seed(seed)
    mean = QuantStudent(StudentShape(N, D, K, bits, bits))
    att = QuantStudent(StudentShape(N, D, K, bits, bits, aggregation="attention"))
    mean.train()
    with torch.no_grad():
        for _ in range(3):
            mean(torch.randint(0, N, (32, K)))
    missing, unexpected = att.load_state_dict(mean.state_dict(), strict=False)
    assert not unexpected and all(m.startswith("aggregate.") for m in missing)
    return mean.eval(), att.eval()


def _meta(rng: np.random.Generator, b: int = 64) -> torch.Tensor:
    """Random [id, type, bucket] contexts: rows 0-15 null-padded after L = 1..K-1 slots, rows
    16-19 all null, the padding's types and buckets junk (the kernel ignores them)."""
    ids = rng.integers(0, N, size=(b, K))
    for r in range(16):
        ids[r, 1 + r % (K - 1):] = N
    ids[16:20] = N
    return torch.from_numpy(np.stack([ids, rng.integers(0, 3, (b, K)), rng.integers(0, 8, (b, K))], -1))


@pytest.mark.parametrize("bits", [4, 8])
def test_attention_forward_is_the_golden_kernel_bit_for_bit(bits):
    _, att = _pair(bits)
    rng = np.random.default_rng(bits)
    meta = _meta(rng)
    with torch.no_grad():
        agg = att.aggregate
        agg.q.normal_(0, 0.1)
        agg.b_type.normal_(0, 0.2)
        agg.b_pos.normal_(0, 0.2)
        f_int, s_f = att.fused_integers(meta)
        agg.set_feature_scale(s_f)
        u, a = agg(f_int, meta)
        p = agg.kernel_params()
    assert any(p.q) and any(p.b_type) and any(p.b_pos) and p.m_mult > 0
    u_g, a_g = attend(p, f_int.round().long().numpy(), meta.numpy())
    np.testing.assert_array_equal(u.numpy(), u_g)
    np.testing.assert_array_equal(a.numpy(), a_g)
    assert (u_g[16:20] == 0).all() and (a_g[16:20] == 0).all()  # all-null contexts
    assert (a_g[0, 1:] == 0).all() and a_g[0, 0] == 1 << p.w_bits  # one real slot
    with torch.no_grad():
        m = att.mean_feature(meta)  # the student's aggregated feature: u · s_f 2^-P
    np.testing.assert_array_equal((m / (float(s_f) / 16)).round().numpy(), u_g)


def test_attention_scores_are_exact_integers():
    _, att = _pair()
    meta = _meta(np.random.default_rng(3))
    with torch.no_grad():
        att.aggregate.q.normal_(0, 0.1)
        z = att.integer_scores(meta)
        s = att(meta).double()
    assert z.dtype == torch.int64
    step = att.scorer.quant_weight().scale.double() * att.relu.act_quant.scale().double()
    torch.testing.assert_close(s / step, z.double(), rtol=0, atol=1e-3)


def test_uniform_start_is_the_mean_up_to_rounding():
    """q = 0, biases 0: every logit equal, a_j = round(2^W / L) via the kernel's reciprocal; for
    L a power of two (1, 2, 4, 8 = K) that is exactly 2^W / L and the attention student IS the
    mean student; otherwise the aggregated integers differ by at most one unit of 2^-P."""
    mean, att = _pair()
    rng = np.random.default_rng(5)
    meta = _meta(rng, 128)
    lengths = torch.from_numpy(rng.integers(0, K + 1, 128))
    meta[..., 0][torch.arange(K)[None, :] >= lengths[:, None]] = N  # every length 0..K
    ids = meta[..., 0]
    with torch.no_grad():
        m_mean = mean.mean_feature(ids)
        m_att = att.mean_feature(meta)
        unit = m_mean.new_tensor(float(mean.fused_integers(ids)[1]) / 16)
        diff = ((m_att - m_mean) / unit).round().abs()
        z_mean, z_att = mean.integer_scores(ids), att.integer_scores(meta)
    lengths = (ids != N).sum(1)
    exact = (lengths & (lengths - 1)) == 0  # 0, 1, 2, 4, 8
    assert exact.sum() > 40 and (~exact).sum() > 40
    assert diff.max() <= 1
    assert (diff[exact] == 0).all()
    assert torch.equal(z_mean[exact], z_att[exact])


def test_mean_student_reads_only_the_ids():
    mean, _ = _pair()
    meta = _meta(np.random.default_rng(7))
    with torch.no_grad():
        assert torch.equal(mean.integer_scores(meta), mean.integer_scores(meta[..., 0]))


def test_unknown_aggregation_is_refused():
    with pytest.raises(ValueError, match="aggregation"):
        QuantStudent(StudentShape(N, D, K, 4, 4, aggregation="max"))


# ----------------------------------------------------------------------------- sampler
def test_recency_buckets_are_log_spaced():
    rank = np.array([0, 1, 2, 3, 6, 7, 14, 15, 30, 31, 62, 63, 126, 127, 1000])
    np.testing.assert_array_equal(recency_bucket(rank), [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7])
    np.testing.assert_array_equal(recency_bucket(rank, 3), np.minimum(recency_bucket(rank), 2))
    fine = recency_bucket(np.arange(16), 16, per_octave=2)  # two buckets per doubling
    np.testing.assert_array_equal(fine, [0, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8])


def _history():
    # user 0: items 10..14 (oldest first), types 0 1 2 0 1; user 1: item 20, type 2; user 2: 30 items
    items = [np.arange(10, 15), np.array([20]), np.arange(100, 130)]
    types = [np.array([0, 1, 2, 0, 1]), np.array([2]), np.arange(30) % 3]
    users = np.repeat(np.arange(3), [len(x) for x in items])
    return UserSequences.from_pairs(users, np.concatenate(items), 3), np.concatenate(types)


def test_sampler_types_and_buckets_of_a_known_sequence():
    hist, types = _history()
    meta = recent_items_meta(hist, types, np.array([0, 1]), k=6, null_id=999)
    # slots hold the real items oldest first; rank = items after it (slot L-1: rank 0)
    np.testing.assert_array_equal(meta[0, :, 0], [10, 11, 12, 13, 14, 999])
    np.testing.assert_array_equal(meta[0, :, 1], [0, 1, 2, 0, 1, 0])
    np.testing.assert_array_equal(meta[0, :, 2], [2, 2, 1, 1, 0, 0])  # ranks 4 3 2 1 0, null
    np.testing.assert_array_equal(meta[1], [[20, 2, 0]] + [[999, 0, 0]] * 5)
    np.testing.assert_array_equal(meta[..., 0], recent_items(hist, np.array([0, 1]), 6, null_id=999))


def test_sampler_buckets_of_older_slots():
    hist, types = _history()
    meta = recent_items_meta(hist, types, np.array([2]), k=6, n_recent=3, null_id=999)[0]
    # 3 older slots evenly over positions 0..26 (0, 9, 18), then the 3 most recent (27, 28, 29)
    np.testing.assert_array_equal(meta[:, 0], [100, 109, 118, 127, 128, 129])
    np.testing.assert_array_equal(meta[:, 1], np.array([0, 9, 18, 27, 28, 29]) % 3)
    np.testing.assert_array_equal(meta[:, 2], recency_bucket(np.array([29, 20, 11, 2, 1, 0])))


def test_training_examples_carry_the_same_meta():
    hist, types = _history()
    rng = np.random.default_rng(0)
    users, ctx, pos = next_item_examples(hist, 6, 1, rng, null_id=999, types=types)
    assert ctx.shape == (len(users), 6, 3)
    ends = np.array([np.flatnonzero(hist.items[hist.indptr[u]:hist.indptr[u + 1]] == p)[0]
                     for u, p in zip(users, pos, strict=True)])  # horizon 1: the context ends before the target
    for row, (u, e) in enumerate(zip(users, ends, strict=True)):
        seq = hist.items[hist.indptr[u]:hist.indptr[u] + e]
        t = types[hist.indptr[u]:hist.indptr[u] + e]
        sub = UserSequences.from_pairs(np.zeros(len(seq), np.int64), seq, 1)
        np.testing.assert_array_equal(ctx[row], recent_items_meta(sub, t, np.array([0]), 6, null_id=999)[0])


def test_slot_meta_zeroes_null_slots():
    t, r = slot_meta(np.array([[0, 1, 1]]), np.array([2]), np.array([2]), np.array([2, 1]))
    np.testing.assert_array_equal(t, [[2, 1, 0]])
    np.testing.assert_array_equal(r, [[1, 0, 0]])


def test_score_reads_types_from_the_behaviour_log():
    _, att = _pair()
    hist, types = _history()
    hist = UserSequences(hist.indptr, hist.items % N)
    blog = BehaviourLog(hist.indptr, hist.items, types, np.arange(len(types), dtype=np.float64))
    with torch.no_grad():
        att.aggregate.b_type.copy_(torch.tensor([0.0, 0.5, 1.0]))
        plain = att.score(np.arange(3), hist)
        att.use_behaviour(blog)
        typed = att.score(np.arange(3), hist)
        ctx = recent_items_meta(hist, types, np.arange(3), K, att.shape.n_recent, N)
        direct = att.integer_scores(torch.from_numpy(ctx)).numpy()
    with torch.no_grad():
        step = float(att.scorer.quant_weight().scale) * float(att.relu.act_quant.scale())
    np.testing.assert_array_equal(typed, direct.astype(np.float64) * step)
    assert not np.array_equal(plain, typed)


def test_sequence_scores_read_the_window_before_the_context_end():
    """Distillation from the sequence model: the window it reads ends at the student's most
    recent context item, whatever the student's slot layout (null padding, n_recent)."""
    from fpgarec.models.sequence import sequence_context
    from fpgarec.train.recipes import SequenceScores

    hist, types = _history()
    blog = BehaviourLog(hist.indptr, hist.items, types, np.arange(len(types), dtype=np.float64) * 60)

    class Fake:  # records the windows it is asked to score
        n_items, k = 200, 6

        def __init__(self):
            self.blog, self.seen = blog, None

        def eval(self):
            return self

        def logits(self, users, seq, propagated=None):
            self.seen = seq
            return torch.zeros(len(users), self.n_items)

    fake = Fake()
    scores = SequenceScores(fake, hist)
    rng = np.random.default_rng(0)
    users, ctx, _ = next_item_examples(hist, 6, 4, rng, n_recent=3, null_id=200, types=types)
    scores.logits(users, ctx)
    ends = [int(np.flatnonzero(hist.items == c[(c[:, 0] != 200).sum() - 1, 0])[0]) + 1 for c in ctx]
    want = sequence_context(hist.items, types, blog.timestamp, hist.indptr[users], np.array(ends), 6)
    for field in ("items", "types", "dt", "mask"):
        np.testing.assert_array_equal(getattr(fake.seen, field), getattr(want, field))


def test_attention_student_checkpoint_round_trip(tmp_path):
    from fpgarec.train.checkpoint import load_student, save_student

    _, att = _pair()
    meta = _meta(np.random.default_rng(11))
    with torch.no_grad():
        att.aggregate.q.normal_(0, 0.1)
        att.aggregate.b_pos.normal_(0, 0.1)
        want = att.integer_scores(meta)
    save_student(att, tmp_path / "s")
    back = load_student(tmp_path / "s")
    assert back.shape == att.shape and back.attention
    with torch.no_grad():
        assert torch.equal(back.integer_scores(meta), want)
