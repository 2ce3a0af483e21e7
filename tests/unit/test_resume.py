"""Kept task results for ``fpgarec demo --resume``: what is taken, what runs again."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from fpgarec.config import DemoConfig
from fpgarec.experiment.resume import TaskRecords, fingerprint
from fpgarec.experiment.scheduler import Task, TaskResult, run_tasks


def test_fingerprint_ignores_speed_settings_only():
    cfg = DemoConfig()
    assert fingerprint(cfg) == fingerprint(replace(cfg, workers=7, threads=3, progress=False, resume=True))
    assert fingerprint(cfg) != fingerprint(replace(cfg, seed=1))
    assert fingerprint(cfg) != fingerprint(replace(cfg, dim=32))


def test_a_kept_result_is_taken_only_with_the_same_settings_and_its_files(tmp_path):
    weights = tmp_path / "teacher.safetensors"
    weights.write_bytes(b"x")
    cfg = DemoConfig(out=tmp_path / "demo")
    records = TaskRecords(cfg, outputs=lambda task: [weights] if task.model == "teacher" else [])
    teacher, bpr = Task("teacher", "standard"), Task("bpr", "standard", 1)
    records.save(TaskResult(teacher, {"metrics": {"all": {"ndcg@10": np.float32(0.25)}}, "curve": np.arange(3)}, 1.5))
    records.save(TaskResult(bpr, {"valid": 0.1}, 0.5))
    kept = records.load([teacher, bpr, Task("lightgcn", "standard")])
    assert set(kept) == {"teacher.standard.0", "bpr.standard.1"}
    assert kept["teacher.standard.0"].value == {"metrics": {"all": {"ndcg@10": 0.25}}, "curve": [0, 1, 2]}
    assert kept["teacher.standard.0"].seconds == 1.5 and kept["bpr.standard.1"].task is bpr
    assert set(TaskRecords(replace(cfg, seed=1)).load([teacher, bpr])) == set()  # other settings
    weights.unlink()
    assert set(records.load([teacher, bpr])) == {"bpr.standard.1"}  # the teacher's weights are gone
    (records.folder / "bpr.standard.1.json").write_text("{not json")
    assert records.load([bpr]) == {}
    records.clear()
    assert not records.folder.exists()


def test_a_result_that_is_not_json_is_not_kept(tmp_path):
    records = TaskRecords(DemoConfig(out=tmp_path))
    records.save(TaskResult(Task("x", "standard"), {"odd": object()}, 1.0))
    assert records.load([Task("x", "standard")]) == {}


def _record_call(task, context):
    context.append(task.key)
    return {"ran": task.key}


def test_the_scheduler_skips_finished_tasks_and_runs_their_dependants(tmp_path):
    a, b, c = Task("a", "s"), Task("b", "s", needs=("a.s.0",)), Task("c", "s")
    calls: list[str] = []
    done = run_tasks([a, b, c], {"a": _record_call, "b": _record_call, "c": _record_call}, calls, workers=1,
                     progress=False, finished={"a.s.0": TaskResult(a, {"kept": True}, 2.0)})
    assert sorted(calls) == ["b.s.0", "c.s.0"]
    assert done["a.s.0"].value == {"kept": True} and done["b.s.0"].value["ran"] == "b.s.0"
    assert json.dumps({k: v.value for k, v in done.items()})  # plain values throughout


def test_demo_and_train_take_resume():
    from fpgarec import cli

    parser = cli.build_parser()
    assert cli._config(parser.parse_args(["demo", "--resume"])).resume is True
    assert cli._config(parser.parse_args(["train", "bpr", "--resume"])).resume is True
    assert cli._config(parser.parse_args(["demo"])).resume is False


def test_resume_is_refused_under_torchrun():
    """Ranks on other hosts would see other records and run other tasks (DDP would hang)."""
    import pytest

    from fpgarec.errors import FpgarecError
    from fpgarec.experiment.run import train_models

    with pytest.raises(FpgarecError, match="--resume does not run under torchrun"):
        train_models(None, replace(DemoConfig(), resume=True, distributed=True), ["bpr"])
