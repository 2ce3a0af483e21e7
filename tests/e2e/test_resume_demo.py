"""``fpgarec demo --resume``: a run that stopped part-way is finished by running only what it
did not finish (tiny seeded configuration, in this process)."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest

from fpgarec.config import DemoConfig
from fpgarec.experiment import tasks
from fpgarec.experiment.run import run_demo


def _tiny(tmp_path, cache) -> DemoConfig:
    return DemoConfig(out=tmp_path / "demo", cache=cache, quick=True, quick_users=40, seed=0, dim=16, k=8,
                      max_epochs=2, build_design=False, lora=False, progress=False, threads=1, workers=1,
                      sequential_baselines=False)


def _hetero_breaks(task, cfg, prep=None):
    raise RuntimeError("hetero broke on purpose")


@pytest.mark.slow
def test_resume_runs_only_what_the_stopped_run_did_not_finish(tmp_path, text_cache, monkeypatch):
    real_hetero = tasks.TASK_FUNCTIONS["hetero"]
    monkeypatch.setitem(tasks.TASK_FUNCTIONS, "hetero", _hetero_breaks)
    cfg = _tiny(tmp_path, text_cache)
    first = run_demo(cfg)
    assert set(first["failed"]) == {"hetero.standard.0", "hetero.new.0"}

    calls: list[str] = []

    def recorded(fn):
        @functools.wraps(fn)
        def call(task, context, prep=None):
            calls.append(task.key)
            return fn(task, context, prep)
        return call

    for model, fn in list(tasks.TASK_FUNCTIONS.items()):
        monkeypatch.setitem(tasks.TASK_FUNCTIONS, model, recorded(real_hetero if model == "hetero" else fn))
    second = run_demo(replace(cfg, resume=True))
    assert sorted(calls) == ["hetero.new.0", "hetero.standard.0"]  # nothing else ran again
    assert "failed" not in second and second["hetero"]["all"]["ndcg@10"] > 0
    for name in ("bpr", "teacher", "student_w4", "sequence"):
        assert second[name]["all"] == first[name]["all"], name
    assert "tasks an earlier run finished" in " ".join(second["meta"])

    calls.clear()  # other settings: nothing is taken
    run_demo(replace(cfg, resume=True, seed=1, extended_models=False, distillation_ablation=False,
                     student_bits=(4,), attention_student=False))
    assert "teacher.standard.0" in calls
