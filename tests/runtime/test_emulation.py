"""The CPU emulation is bit-exact with FINN's execution of the HW-layer graph and with the
Brevitas student: integer scores and top-k lists (tie rule: lower index first)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def test_emulation_equals_finn_and_brevitas(small_bundle, small_student):
    from fpgarec.compile.verify import compare

    res = compare(small_bundle, small_student[0], n_queries=3000, finn_queries=120, seed=1)
    assert res["emulation_vs_finn"] == {"topk": 0, "scores": 0, "any": 0}
    assert res["emulation_vs_brevitas"] == {"topk": 0, "scores": 0, "any": 0}


def test_tie_heavy_queries_agree_everywhere(small_bundle, small_student):
    from fpgarec.compile.verify import FinnBackend, brevitas_reference
    from fpgarec.runtime import EmulationBackend

    ids = np.array([[5, 5, 5, 5], [0, 0, 0, 0], [199, 199, 199, 199], [0, 199, 0, 199], [7, 7, 8, 8]])
    emu = EmulationBackend(small_bundle).run_with_scores(ids)
    fin = FinnBackend(small_bundle).run_with_scores(ids)
    bre = brevitas_reference(small_student[0], ids, 10)
    for a, b in ((emu, fin), (emu, bre)):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    s = emu[1]
    assert any(len(np.unique(row)) < len(row) for row in s)  # there are ties to break
    assert (emu[0] < 200).all()  # padded items never selected


def test_run_scores_and_shapes(small_bundle):
    from fpgarec.runtime import EmulationBackend

    emu = EmulationBackend(small_bundle)
    ids = np.random.default_rng(0).integers(0, 200, (33, 4))
    top, scores = emu.run_with_scores(ids)
    assert top.shape == (33, 10) and scores.shape == (33, 200)
    np.testing.assert_array_equal(top, emu.run(ids))
    np.testing.assert_array_equal(scores, emu.scores(ids))
    np.testing.assert_array_equal(emu.run(ids[0]), top[:1])
    threaded = EmulationBackend(small_bundle, threads=2, min_chunk=8)
    np.testing.assert_array_equal(threaded.run(ids), top)
    with pytest.raises(ValueError):
        emu.run(np.array([[0, 1, 2, 201]]))  # 200 is the null id, 201 no id at all
    with pytest.raises(ValueError):
        emu.run(np.zeros((2, 5), np.int64))


def test_fused_fast_path_equals_layer_by_layer_execution(small_bundle):
    """The fused-table gather-and-sum equals executing every layer (DuplicateStreams, both
    Lookups, the fusion and aggregation golden models), also for cold-start and empty queries."""
    from fpgarec.runtime import EmulationBackend

    fast = EmulationBackend(small_bundle)
    slow = EmulationBackend(small_bundle)
    slow._compile_plan(fast=False)
    assert len(fast._plan) < len(slow._plan)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 200, (500, 4))
    lengths = rng.integers(0, 5, 500)
    ids[np.arange(4)[None, :] >= lengths[:, None]] = 200  # null-padded, some with no items
    for a, b in zip(fast.run_with_scores(ids), slow.run_with_scores(ids), strict=True):
        np.testing.assert_array_equal(a, b)


def test_mean_of_a_cold_start_user_is_over_its_real_items(small_bundle, small_student):
    """A user with 3 items padded with the null id scores like the Brevitas student, which
    averages over exactly those 3 items."""
    from fpgarec.compile.verify import brevitas_reference
    from fpgarec.runtime import EmulationBackend

    ids = np.array([[3, 17, 42, 200], [42, 3, 17, 200], [3, 3, 17, 42]])
    top, scores = EmulationBackend(small_bundle).run_with_scores(ids)
    ref = brevitas_reference(small_student[0], ids, 10)
    np.testing.assert_array_equal(scores, ref[1])
    np.testing.assert_array_equal(scores[0], scores[1])  # order of the real items does not matter


@pytest.mark.parametrize("seed", range(4))
def test_tie_rule_topk_matches_the_metrics_tie_rule(seed):
    from fpgarec.runtime.topk import tie_rule_topk
    from fpgarec.train.metrics import top_k

    rng = np.random.default_rng(seed)
    for _ in range(50):
        n = int(rng.integers(1, 500))
        k = int(rng.integers(1, min(n, 30) + 1))
        s = rng.integers(-4, 5, size=(int(rng.integers(1, 40)), n)).astype(np.float32)
        np.testing.assert_array_equal(tie_rule_topk(s, k), top_k(s, k))
    big = rng.integers(-2**40, 2**40, size=(8, 300))  # int64 keys
    np.testing.assert_array_equal(tie_rule_topk(big, 7), top_k(big, 7))


@pytest.mark.parametrize("channels,steps,lo,hi", [(16, 15, -32, 31), (1, 7, -100, 100), (8, 255, -2**22, 2**22)])
def test_thresholds_are_finns_multithreshold(channels, steps, lo, hi):
    from qonnx.custom_op.general.multithreshold import multithreshold

    from fpgarec.runtime.emulation import _Thresholds

    rng = np.random.default_rng(channels)
    thr = rng.integers(lo, hi, size=(channels, steps)).astype(np.float32)
    thr[:, 0] += 0.5  # non-integer thresholds too
    x = rng.integers(lo, hi + 1, size=(64, max(channels, 3))).astype(np.float32)
    if channels == 1:
        x = x[:, :1]
    want = multithreshold(x, thr, out_bias=-3.0, channels_last=True)
    got = _Thresholds(thr, -3.0, (lo, hi))(x)
    np.testing.assert_array_equal(got, want)


def test_runtime_imports_numpy_only():
    code = ("import sys, fpgarec.runtime, fpgarec.runtime.emulation, fpgarec.runtime.bundle; "
            "heavy = [m for m in ('torch', 'finn', 'qonnx', 'brevitas', 'onnx', 'onnxruntime', 'kernels.finn_common') "
            "if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
