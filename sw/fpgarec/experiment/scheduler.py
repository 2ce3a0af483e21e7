"""Independent tasks run by a pool of single-threaded worker processes, or one after the other.

Why a pool: the models here are small, and one PyTorch process gains nothing from a second
intra-op thread (measured on this project's 2-core machines: the teacher ran 6 epochs in 12.0 s
with 2 threads and 11.2 s with 1; the 4-bit student 57.8 s vs 35.6 s). Two processes with one
thread each therefore do about twice the work per second of one process with two threads.

The scheduler knows no models: it gets the tasks, a **task table** (``Task.model`` -> a
module-level function ``f(task, context) -> dict`` of plain numbers) and an opaque picklable
``context`` handed to every call. A task's ``needs`` name tasks that must finish first (their
results are files the task loads).

Scheduling: among the tasks whose needs are done, the one with the longest expected chain of
work behind it first (:func:`critical_path`). With ``workers = 1`` the tasks run one after the
other in this process, in the same order on every rank under ``torchrun`` (each rank runs every
task; DDP inside the training loop keeps them in step). A table function marked
``single_process = True`` runs on rank 0 only there and its result is broadcast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from fpgarec.logs import setup_logging
from fpgarec.train.distributed import rank_and_world

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


TaskFunction = Callable[[Task, Any], dict]


def _worker_init(threads: int, verbose: bool) -> None:
    """Pool initialiser: threads per worker and a log format that names the process."""
    import torch

    torch.set_num_threads(threads)
    setup_logging(verbose, process_name=True)


def _call(fn: TaskFunction, task: Task, context: Any) -> dict:
    """Run one task (in a worker or here); its value gets ``wall_seconds``."""
    t0 = time.perf_counter()
    value = fn(task, context)
    value.setdefault("wall_seconds", time.perf_counter() - t0)
    return value


def _call_here(fn: TaskFunction, task: Task, context: Any) -> dict:
    """:func:`_call` in this process; under torch.distributed a ``single_process`` function
    runs on rank 0 alone and every rank gets its value."""
    rank, world = rank_and_world()
    if world == 1 or not getattr(fn, "single_process", False):
        return _call(fn, task, context)
    import torch.distributed as dist

    box = [_call(fn, task, context) if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_needs(tasks: list[Task], table: Mapping[str, TaskFunction]) -> None:
    keys = {t.key for t in tasks}
    for t in tasks:
        if t.model not in table:
            raise ValueError(f"no function in the task table runs task {t.key}")
        missing = [n for n in t.needs if n not in keys]
        if missing:
            raise ValueError(f"task {t.key} needs unknown tasks {missing}")


def run_tasks(
    tasks: list[Task], table: Mapping[str, TaskFunction], context: Any, workers: int,
    threads_per_worker: int = 1, on_done: Callable[[TaskResult], None] | None = None, progress: bool = True,
    failures: dict[str, str] | None = None, finished: Mapping[str, TaskResult] | None = None,
) -> dict[str, TaskResult]:
    """Run every task once its ``needs`` are done; returns results by task key.

    ``finished``: results of tasks done before (``fpgarec demo --resume``): those tasks are not
    run again, their results are returned with the others and count as done for ``needs``.

    A failing task raises in the parent (with the worker's traceback chained) after the pool
    is shut down; given a ``failures`` dict, the run goes on instead: the failed task's key
    gets its one-line error there (the traceback is logged), every task that needs it, directly
    or not, gets ``"skipped: needs <key>"``, and the other tasks still run.
    """
    from tqdm.auto import tqdm

    check_needs(tasks, table)
    rank = critical_path(tasks)
    done: dict[str, TaskResult] = {k: v for k, v in (finished or {}).items() if k in rank}
    pending = sorted((t for t in tasks if t.key not in done), key=lambda t: -rank[t.key])
    bar = tqdm(total=len(tasks), initial=len(done), desc=f"training ({workers} worker{'s' * (workers > 1)})",
               unit="task", disable=not progress)

    def finish(task: Task, value: dict, seconds: float) -> None:
        res = TaskResult(task, value, seconds)
        done[task.key] = res
        bar.update(1)
        log.info("task %s done in %.0f s", task.key, seconds)
        if on_done is not None:
            on_done(res)

    def fail(task: Task, exc: BaseException) -> None:
        if failures is None or not isinstance(exc, Exception):
            raise exc
        log.error("task %s failed: %s", task.key, _one_line(exc), exc_info=exc)
        failures[task.key] = _one_line(exc)
        bar.update(1)

    if workers <= 1:
        for task in _topological(pending, done):
            if _skip(task, failures, bar):
                continue
            t0 = time.perf_counter()
            try:
                value = _call_here(table[task.model], task, context)
            except Exception as exc:
                fail(task, exc)
                continue
            finish(task, value, time.perf_counter() - t0)
    else:
        _run_pool(pending, table, context, workers, threads_per_worker, done, finish, bar, fail, failures)
    bar.close()
    return done


def _one_line(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _skip(task: Task, failures: dict[str, str] | None, bar) -> bool:
    """Whether ``task`` cannot run because a task it needs failed or was skipped (recorded)."""
    if not failures:
        return False
    lost = [n for n in task.needs if n in failures]
    if lost:
        failures[task.key] = f"skipped: needs {lost[0]}"
        log.error("task %s skipped: it needs %s, which did not finish", task.key, lost[0])
        bar.update(1)
    return bool(lost)


def _run_pool(pending: list[Task], table, context, workers: int, threads: int, done: dict, finish, bar,
              fail, failures: dict[str, str] | None) -> None:
    """The tasks on ``workers`` spawned processes, each started as soon as its needs are done."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    running: dict[Future, tuple[Task, float]] = {}
    verbose = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads, verbose)) as pool:
        while pending or running:
            skipped = True
            while skipped:  # to a fixed point: a skipped task's dependants are skipped too
                skipped = [t for t in pending if _skip(t, failures, bar)]
                for task in skipped:
                    pending.remove(task)
            if not pending and not running:
                break
            ready = [t for t in pending if all(n in done for n in t.needs)]
            while ready and len(running) < workers:
                task = ready.pop(0)
                pending.remove(task)
                running[pool.submit(_call, table[task.model], task, context)] = (task, time.perf_counter())
            bar.set_postfix_str("running: " + ", ".join(t.key.removesuffix(".0") for t, _ in running.values()))
            if not running:
                raise RuntimeError(f"tasks {[t.key for t in pending]} can never start (cyclic needs)")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                task, t0 = running.pop(fut)
                try:
                    value = fut.result()
                except BaseException as exc:
                    if failures is None or not isinstance(exc, Exception):
                        for other in running:
                            other.cancel()
                        raise
                    fail(task, exc)
                    continue
                finish(task, value, time.perf_counter() - t0)


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


def _topological(tasks: list[Task], done: Iterable[str] = ()) -> list[Task]:
    """Tasks ordered so that every task comes after its needs (``done``: keys of tasks already
    finished; stable otherwise)."""
    order, placed, rest = [], set(done), list(tasks)
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
