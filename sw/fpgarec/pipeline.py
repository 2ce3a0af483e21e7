"""The demo's training work as independent tasks, run by a pool of single-threaded workers.

Why: the models here are small, and one PyTorch process gains nothing from a second intra-op
thread (measured on this project's 2-core machines: the teacher ran 6 epochs in 12.0 s with
2 threads and 11.2 s with 1; the 4-bit student 57.8 s vs 35.6 s). Two processes with one
thread each therefore do about twice the work per second of one process with two threads.

A :class:`Task` trains one model on one split (or one grid point of a baseline) and evaluates
it with the project's one evaluation function (:mod:`fpgarec.train.evaluate`), plus the
click-through metrics (:mod:`fpgarec.train.ctr`) on the standard split. Tasks that need
another model (a student needs its split's teacher) load that model's weights from the
``work/`` folder (safetensors: no pickles on disk). What comes back to the parent process is
plain numbers (metrics, curves, seconds).

Scheduling: among the tasks whose inputs are ready, the one with the longest expected chain
of work behind it first (:func:`critical_path`); with ``workers = 1`` the tasks run one after
the other in this process.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from fpgarec.logs import setup_logging

log = logging.getLogger(__name__)

STANDARD, NEW, BOTH = "standard", "new", "both"


@dataclass(frozen=True)
class Task:
    """One unit of work: ``model`` trained on ``split`` (``variant``: a tuning-grid point)."""

    model: str
    split: str
    variant: int = 0
    #: keys of tasks whose saved weights this one loads
    needs: tuple[str, ...] = ()
    #: expected seconds on one core (only orders the queue)
    cost: float = 60.0

    @property
    def key(self) -> str:
        return f"{self.model}.{self.split}.{self.variant}"


@dataclass
class TaskResult:
    task: Task
    #: what the task function returned (metrics, curve, seconds, extra fields)
    value: dict = field(default_factory=dict)
    seconds: float = 0.0


# ---------------------------------------------------------------------------------- workers
_PREPARED: dict[str, object] = {}


def _worker_init(threads: int, verbose: bool) -> None:
    """Pool initialiser: threads per worker and a log format that names the process."""
    import torch

    torch.set_num_threads(threads)
    setup_logging(verbose, process_name=True)


def prepared(cfg):
    """The demo's data (memoised per process: a worker prepares once, then reuses it)."""
    from fpgarec.demo import prepare

    key = json.dumps(cfg.as_dict(), sort_keys=True, default=str)
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = prepare(cfg, reuse_content=True)
    return _PREPARED[key]


def work_dir(cfg) -> Path:
    return Path(cfg.out) / "work"


def run_task(cfg_dict: dict, task: Task) -> dict:
    """Worker entry: rebuild the config, run the task's function, return its numbers."""
    from fpgarec.config import DemoConfig
    from fpgarec.tasks import TASK_FUNCTIONS

    cfg = DemoConfig.from_dict(cfg_dict)
    t0 = time.perf_counter()
    value = TASK_FUNCTIONS[task.model.split(":")[0]](task, cfg, prepared(cfg))
    value.setdefault("wall_seconds", time.perf_counter() - t0)
    return value


def run_tasks(
    cfg, tasks: list[Task], workers: int, threads_per_worker: int = 1,
    on_done: Callable[[TaskResult], None] | None = None, progress: bool = True,
) -> dict[str, TaskResult]:
    """Run every task once its ``needs`` are done; returns results by task key.

    A failing task raises in the parent (with the worker's traceback chained) after the pool
    is shut down; no partial report is written.
    """
    from tqdm.auto import tqdm

    keys = {t.key for t in tasks}
    for t in tasks:
        missing = [n for n in t.needs if n not in keys]
        if missing:
            raise ValueError(f"task {t.key} needs unknown tasks {missing}")
    rank = critical_path(tasks)
    pending = sorted(tasks, key=lambda t: -rank[t.key])
    done: dict[str, TaskResult] = {}
    bar = tqdm(total=len(tasks), desc=f"training ({workers} worker{'s' * (workers > 1)})", unit="task",
               disable=not progress)
    # workers log each task's epochs; one bar (here) shows the tasks, so bars do not interleave
    cfg_dict = cfg.as_dict() | ({"progress": False} if workers > 1 else {})

    def finish(task: Task, value: dict, seconds: float) -> None:
        res = TaskResult(task, value, seconds)
        done[task.key] = res
        bar.update(1)
        log.info("task %s done in %.0f s", task.key, seconds)
        if on_done is not None:
            on_done(res)

    if workers <= 1:
        for task in _topological(pending):
            t0 = time.perf_counter()
            finish(task, run_task(cfg_dict, task), time.perf_counter() - t0)
        bar.close()
        return done

    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    running: dict[Future, tuple[Task, float]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads_per_worker, False)) as pool:
        while pending or running:
            ready = [t for t in pending if all(n in done for n in t.needs)]
            while ready and len(running) < workers:
                task = ready.pop(0)
                pending.remove(task)
                running[pool.submit(run_task, cfg_dict, task)] = (task, time.perf_counter())
            bar.set_postfix_str("running: " + ", ".join(t.key.removesuffix(".0") for t, _ in running.values()))
            if not running:
                raise RuntimeError(f"tasks {[t.key for t in pending]} can never start (cyclic needs)")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                task, t0 = running.pop(fut)
                try:
                    value = fut.result()
                except BaseException:
                    for other in running:
                        other.cancel()
                    raise
                finish(task, value, time.perf_counter() - t0)
    bar.close()
    return done


def critical_path(tasks: list[Task]) -> dict[str, float]:
    """Per task: its expected cost plus the longest chain of tasks that need it (the classic
    list-scheduling priority: a teacher that five students wait for starts before a longer
    task nobody waits for)."""
    needed_by: dict[str, list[Task]] = {}
    for t in tasks:
        for n in t.needs:
            needed_by.setdefault(n, []).append(t)
    rank: dict[str, float] = {}
    for t in reversed(_topological(list(tasks))):
        rank[t.key] = t.cost + max((rank[d.key] for d in needed_by.get(t.key, [])), default=0.0)
    return rank


def _topological(tasks: list[Task]) -> list[Task]:
    """Tasks ordered so that every task comes after its needs (stable otherwise)."""
    order, placed, rest = [], set(), list(tasks)
    while rest:
        for t in rest:
            if all(n in placed for n in t.needs):
                order.append(t)
                placed.add(t.key)
                rest.remove(t)
                break
        else:
            raise RuntimeError(f"tasks {[t.key for t in rest]} have cyclic needs")
    return order
