"""Exact rounding of the activation quantizers: thresholds against brute force with exact
rationals, the student's exact forward, and a tie-heavy student built and run bit for bit."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from fpgarec.compile.exact_rounding import exact_thresholds, level_threshold


def _brute_thresholds(a: Fraction, b: Fraction, s: Fraction, q_min: int, n: int, lo: int, hi: int) -> list[int]:
    """θ_k by scanning x = lo..hi: the first x whose round-half-even((a x + b) / s) >= k
    (Python's round() of a Fraction rounds half to even, exactly); hi + 1 if none."""
    q = [round((a * x + b) / s) for x in range(lo, hi + 1)]
    return [next((lo + i for i, v in enumerate(q) if v >= q_min + 1 + t), hi + 1) for t in range(n)]


@pytest.mark.parametrize("case", range(40))
def test_thresholds_equal_brute_force(case):
    rng = np.random.default_rng(case)
    if case % 2:  # tie-heavy: s / a a small integer or half-integer, b a multiple of a / 2
        a = Fraction(float(np.float32(rng.uniform(0.01, 1.0))))
        s = a * Fraction(int(rng.integers(1, 30)), int(rng.choice([1, 2])))
        b = a * Fraction(int(rng.integers(-20, 20)), 2)
    else:
        a, s = (Fraction(float(np.float32(rng.uniform(0.01, 1.0)))) for _ in range(2))
        b = Fraction(float(np.float32(rng.normal())))
    q_min = int(rng.choice([-8, 0]))
    got = [level_threshold(q_min + 1 + t, a, b, s) for t in range(15)]
    lo = min(got) - 3
    hi = max(got) + 3
    assert got == _brute_thresholds(a, b, s, q_min, 15, lo, hi)


def test_threshold_of_a_tie_depends_on_parity():
    one, two = Fraction(1), Fraction(2)
    # v = x / 2: x = 1 is the tie 0.5 -> 0 (even), x = 3 is 1.5 -> 2 (even)
    assert level_threshold(1, one, Fraction(0), two) == 2
    assert level_threshold(2, one, Fraction(0), two) == 3
    # the multimodal case: s / a = 13.9999996 is no tie: 91 a / s = 6.50000019 -> 7
    a, s = Fraction(0.003411869751289487), Fraction(0.047766175121068954)
    assert round(91 * a / s) == 7 and level_threshold(7, a, Fraction(0), s) == 91
    rows = exact_thresholds([1.0], [0.0, 1.0], 2.0, 0, 3)
    assert rows.tolist() == [[2, 3, 6], [1, 2, 5]]  # bias 1: v = (x + 1) / 2; x = 2 is 1.5 -> 2


@pytest.fixture(scope="module")
def tie_student(tmp_path_factory):
    """The small student with s_a = s_f: the aggregation quantizer rounds m_int / 16, a tie
    whenever m_int = 8 mod 16 (e.g. two real neighbours whose fused values sum to an odd number)."""
    from safetensors.torch import save_file

    from small_design import SHAPE, make_student

    folder = tmp_path_factory.mktemp("tie_student")
    student, _ = make_student(folder, seed=3)
    key = "agg_quant.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value"
    state = student.state_dict()
    ratio = float(state[key]) / float(student.agg_quant.act_quant.scale().detach())  # threshold / scale: 2^(b-1)
    assert ratio == 2.0 ** round(np.log2(ratio))
    state[key] = (student.fusion.out_scale().detach() * ratio).reshape(state[key].shape).clone()
    student.load_state_dict(state)
    assert float(student.agg_quant.act_quant.scale().detach()) == float(student.fusion.out_scale().detach())
    path = folder / "tie.safetensors"
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(path))
    (folder / "tie.json").write_text(json.dumps(SHAPE))
    return student.eval(), path


@torch.no_grad()
def test_student_exact_forward_rounds_half_to_even(tie_student):
    from fpgarec.compile.checks import sample_queries

    student, _ = tie_student
    shape = student.shape
    ctx = torch.from_numpy(sample_queries(shape.n_items, shape.k, 500, 1, shape.null_id))
    f_int, _ = student.fused_integers(ctx)
    m_int = student.aggregate(f_int, ctx).numpy().astype(np.int64)
    a = Fraction(float(student.fusion.out_scale().detach())) / (1 << shape.agg_frac_bits)
    s = Fraction(float(student.agg_quant.act_quant.scale().detach()))
    want = np.vectorize(lambda m: min(7, max(-8, round(m * a / s))))(m_int)
    got = (student.agg_quant(student.mean_feature(ctx)) / float(s)).numpy()
    assert np.array_equal(got, want)
    ties = np.vectorize(lambda m: (m * a / s).denominator == 2)(m_int) & (np.abs(want) < 7)
    assert ties.sum() > 50  # the case has teeth: many exact ties inside the range


def test_tie_heavy_student_builds_bit_exact(tie_student, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from fpgarec.compile.flow import build
    from fpgarec.compile.verify import compare
    from small_design import small_build_config

    student, path = tie_student
    bundle = build(path, small_build_config(tmp_path, design="ties", check_queries=40))
    inter = tmp_path / "work" / "intermediate_models"

    def thresholds(step):
        m = ModelWrapper(str(inter / f"{step}.onnx"))
        return [m.get_initializer(n.input[1]) for n in m.graph.node if n.op_type == "MultiThreshold"]

    before, after = thresholds("step_streamline"), thresholds("step_exact_thresholds")
    assert any(not np.array_equal(x, y) for x, y in zip(before, after, strict=True))  # FINN's were off at ties
    res = compare(bundle, student, n_queries=3000, finn_queries=60, seed=4)
    assert res["emulation_vs_finn"]["any"] == 0
    assert res["emulation_vs_brevitas"]["any"] == 0, res
