"""Resuming a demo that stopped: what every finished task returned is kept as JSON under
``<out>/work/tasks/<task key>.json``, beside the fingerprint of the settings it ran with;
``fpgarec demo --resume`` takes the kept results whose fingerprint is this run's and runs only
the other tasks.

A kept result stands for its task only together with the files the task wrote: the checkpoints
under ``<out>/work/`` that later tasks load (a teacher for its students, the 4-bit student for
the design) and the design's bundle. A task is taken as finished only when its record *and*
those files are there; otherwise it runs again.

The fingerprint is the sha256 of the settings (:meth:`DemoConfig.as_dict`) without those that
do not change a result (:data:`NOT_IN_FINGERPRINT`: progress bars, process and thread counts).
A run without ``--resume`` starts from nothing: it removes the records of an earlier run first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fpgarec.config import DemoConfig
from fpgarec.experiment.scheduler import Task, TaskResult

log = logging.getLogger(__name__)

#: settings that change how fast a run goes, not what it finds
NOT_IN_FINGERPRINT = ("progress", "workers", "threads", "resume", "distributed")


def fingerprint(cfg: DemoConfig) -> str:
    """sha256 of the settings that decide the results (hex)."""
    settings = {k: v for k, v in cfg.as_dict().items() if k not in NOT_IN_FINGERPRINT}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def _plain(value):
    """JSON for the numpy scalars and arrays a task may return."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


class TaskRecords:
    """The kept results of one output folder's tasks (module docstring).

    ``outputs``: task -> the files it leaves that later work loads (the records of tasks whose
    files are gone are not taken)."""

    def __init__(self, cfg: DemoConfig, outputs: Callable[[Task], Iterable[Path]] = lambda task: ()):
        self.folder = Path(cfg.out) / "work" / "tasks"
        self.fingerprint = fingerprint(cfg)
        self.outputs = outputs

    def clear(self) -> None:
        """Forget every kept result (a run that does not resume starts from nothing)."""
        if self.folder.is_dir():
            shutil.rmtree(self.folder)

    def save(self, result: TaskResult) -> None:
        """Keep one finished task's result (written whole or not at all)."""
        try:
            text = json.dumps({"fingerprint": self.fingerprint, "task": result.task.key,
                               "seconds": result.seconds, "value": result.value}, default=_plain)
        except (TypeError, ValueError) as exc:  # kept results are a convenience: the run goes on
            log.warning("task %s: result not kept for --resume (%s)", result.task.key, exc)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{result.task.key}.json.tmp"
        tmp.write_text(text)
        tmp.replace(self.folder / f"{result.task.key}.json")

    def load(self, tasks: Iterable[Task]) -> dict[str, TaskResult]:
        """The kept results of ``tasks`` that this run may take: same fingerprint, a readable
        record, and every file the task leaves still there."""
        kept: dict[str, TaskResult] = {}
        stale = 0
        for task in tasks:
            path = self.folder / f"{task.key}.json"
            if not path.is_file():
                continue
            try:
                record = json.loads(path.read_text())
                same = record["fingerprint"] == self.fingerprint and record["task"] == task.key
                value, seconds = dict(record["value"]), float(record["seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("%s: unreadable, task %s runs again", path, task.key)
                continue
            missing = [p for p in self.outputs(task) if not Path(p).exists()]
            if not same or missing:
                stale += 1
                log.info("task %s runs again: %s", task.key,
                         f"{missing[0]} is gone" if missing else "kept with other settings")
                continue
            kept[task.key] = TaskResult(task, value, seconds)
        log.info("resuming: %d of the tasks finished before, %d kept results not taken", len(kept), stale)
        return kept
