"""A failing task does not lose the others: with a ``failures`` dict the scheduler records the
error, skips what needs the failed task (transitively) and runs the rest, in this process and
on a pool of workers alike; without it the failure still raises."""

from __future__ import annotations

import pytest

from fpgarec.experiment.scheduler import Task, run_tasks


def ok(task, context):
    return {"model": task.model, "context": context}


def broken(task, context):
    raise ValueError(f"{task.model} cannot train\nsecond line")


TABLE = {"a": ok, "bad": broken, "after_bad": ok, "after_after": ok, "c": ok}
TASKS = [Task("a", "standard"), Task("bad", "standard"), Task("after_bad", "standard", needs=("bad.standard.0",)),
         Task("after_after", "standard", needs=("after_bad.standard.0",)), Task("c", "standard", needs=("a.standard.0",))]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_task_skips_its_dependants_and_the_rest_runs(workers):
    failures: dict[str, str] = {}
    done = run_tasks(TASKS, TABLE, "ctx", workers, progress=False, failures=failures)
    assert set(done) == {"a.standard.0", "c.standard.0"}
    assert done["c.standard.0"].value["context"] == "ctx"
    assert failures == {"bad.standard.0": "ValueError: bad cannot train",
                        "after_bad.standard.0": "skipped: needs bad.standard.0",
                        "after_after.standard.0": "skipped: needs after_bad.standard.0"}


def test_without_a_failures_dict_a_failure_raises():
    with pytest.raises(ValueError, match="bad cannot train"):
        run_tasks(TASKS, TABLE, "ctx", 1, progress=False)
