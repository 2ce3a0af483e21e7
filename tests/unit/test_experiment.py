"""The experiment driver: tasks ordered by needs, the plan, the assembly of results per model."""

from __future__ import annotations

import json

import pytest

from fpgarec.config import DemoConfig
from fpgarec.experiment.results import assemble, distillation_report
from fpgarec.experiment.scheduler import Task, TaskResult, _topological, critical_path
from fpgarec.experiment.tasks import NODISTILL, plan


def test_topological_order_respects_needs():
    a, b = Task("teacher", "standard"), Task("student_w4", "standard", needs=("teacher.standard.0",))
    assert [t.key for t in _topological([b, a])] == [a.key, b.key]
    with pytest.raises(RuntimeError):
        _topological([Task("x", "s", needs=("y.s.0",)), Task("y", "s", needs=("x.s.0",))])


def test_plan_has_every_model_on_the_splits_it_needs():
    cfg = DemoConfig()
    keys = {t.key for t in plan(cfg, ["popularity", "bpr", "lightgcn", "teacher", "student_w8", "student_w4"])}
    assert {"bpr.standard.0", "bpr.standard.1", "teacher.new.0", "student_w4.new.0"} <= keys
    assert f"{NODISTILL}.standard.0" in keys and "bpr.new.0" not in keys
    with pytest.raises(ValueError):
        plan(cfg, ["no-such-model"])


def test_plan_estimates_the_students_the_demo_does_not_build():
    """One task runs FINN's estimate of every student but the design's (after they are trained
    on the standard split); none without a design."""
    from dataclasses import replace

    names = ["teacher", "student_w8", "student_w4", "student_w4_attention"]
    tasks = {t.key: t for t in plan(DemoConfig(), names)}
    assert set(tasks["estimates.standard.0"].needs) == {"student_w8.standard.0", "student_w4_attention.standard.0"}
    assert "estimates.standard.0" not in {t.key for t in plan(replace(DemoConfig(), build_design=False), names)}
    assert "estimates.standard.0" not in {t.key for t in plan(DemoConfig(), ["teacher", "student_w4"])}


def _metrics(v):
    return {m: v for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")}


def _res(model, split, variant, valid, ndcg, seconds=1.0):
    value = {"valid": valid, "seconds": seconds, "curve": {"chosen": {"lr": variant}}}
    value["metrics"] = {"all": _metrics(ndcg), "cold": _metrics(ndcg)} if split == "standard" else {"new": _metrics(ndcg)}
    return TaskResult(Task(model, split, variant), value, seconds)


def test_assemble_picks_grid_points_on_validation_not_test():
    done = {r.task.key: r for r in [
        _res("bpr", "standard", 0, valid=0.30, ndcg=0.10),
        _res("bpr", "standard", 1, valid=0.20, ndcg=0.90),  # better on test, worse on valid
        _res("student_w4", "standard", 0, 0.3, 0.2), _res("student_w4", "new", 0, 0.3, 0.5),
        _res(NODISTILL, "standard", 0, 0.3, 0.1), _res(NODISTILL, "new", 0, 0.3, 0.4),
    ]}
    results, curves = assemble(done, ["bpr", "student_w4"], pop_new=_metrics(0.45))
    assert results["bpr"]["all"]["ndcg@10"] == 0.10
    assert results["bpr"]["new"]["ndcg@10"] == 0.45 and "new_note" in results["bpr"]
    assert results["bpr"]["train_seconds"] == 2.0
    d = distillation_report(results)
    assert d["with"]["all"] == 0.2 and d["without"]["new"] == 0.4
    assert d["gain"]["all"] == pytest.approx(1.0)


def test_critical_path_starts_the_teacher_before_a_longer_lone_task():
    teacher = Task("teacher", "standard", cost=100)
    students = [Task(f"student_w{b}", "standard", needs=(teacher.key,), cost=65) for b in (8, 4)]
    lone = Task("lightgcn", "standard", cost=150)
    rank = critical_path([lone, *students, teacher])
    assert rank[teacher.key] == 165 > rank[lone.key] == 150


def test_each_split_keeps_its_own_student_checkpoint(tmp_path):
    """The two splits' students must not share files: a worker that loads the standard split's
    student from disk (the design task) got whichever split finished last."""
    from fpgarec.config import DemoConfig
    from fpgarec.experiment.tasks import student_path
    from fpgarec.train.checkpoint import student_files

    cfg = DemoConfig(out=tmp_path)
    standard = student_files(student_path(cfg, "student_w4", "standard"))
    new = student_files(student_path(cfg, "student_w4", "new"))
    assert not set(standard) & set(new)
    assert standard[0].name == "student_w4.standard.safetensors"


def test_estimate_student_runs_finn_to_code_generation(tmp_path):
    """The demo's estimate of a student it does not build: the real flow (every step checked on
    sample queries), FINN's figures read back from the bundle it wrote under work/."""
    from dataclasses import replace

    from fpgarec.experiment.design import estimate_student
    from small_design import make_student

    student, _ = make_student(tmp_path)
    cfg = replace(DemoConfig(), out=tmp_path / "demo", pad_items_multiple=8, exclude_seen=True)
    est = estimate_student(cfg, "student_w2", student)  # no hw/folding file: FINN's automatic folding
    manifest = json.loads((tmp_path / "demo/work/estimates/student_w2_pynq-z2/manifest.json").read_text())
    used = manifest["estimates"]["resources"]["used"]
    assert (est["LUT"], est["DSP"], est["BRAM18"]) == (used["LUT"], used["DSP"], used["BRAM18"])
    assert est["LUT"] > 0 and est["cycles"] == manifest["estimates"]["max_cycles"] > 0
    assert est["source"] == "FINN estimate, FINN's automatic folding (LUT a lower bound)"
