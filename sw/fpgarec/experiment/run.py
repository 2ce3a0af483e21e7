"""The main job: data -> language-model text features -> baselines, hybrid teacher, the 8- and
4-bit students, the sequence and heterogeneous models -> one evaluation -> report.json /
report.html (-> the compiled, verified and explained design).

Every model is trained by a task of :mod:`fpgarec.experiment.tasks`, run by
:mod:`fpgarec.experiment.scheduler` on ``cfg.workers`` processes or, with one worker or under
``torchrun``, one after the other in this process: the report has the same keys either way.
Every model is evaluated by :mod:`fpgarec.train.evaluate` on the same three groups: ``all``
and ``cold`` users of the temporal split, ``new`` users of the new-user split (models are
trained a second time on that split, without the new users).
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import replace
from functools import partial

import torch

from fpgarec.config import DemoConfig
from fpgarec.data.prepared import Prepared
from fpgarec.errors import FpgarecError
from fpgarec.experiment.prepare import prepare
from fpgarec.experiment.results import (
    all_bars,
    assemble,
    distillation_report,
    popularity_entry,
    popularity_new,
)
from fpgarec.experiment.resume import TaskRecords
from fpgarec.experiment.scheduler import STANDARD, run_tasks
from fpgarec.experiment.tasks import (
    NODISTILL,
    SEQUENTIAL,
    TASK_FUNCTIONS,
    plan,
    remember,
    task_outputs,
    trained_student,
)
from fpgarec.train.checkpoint import save_student
from fpgarec.train.distributed import is_main_process
from fpgarec.train.fewshot import fewshot_references

log = logging.getLogger(__name__)

BASELINES = ("popularity", "bpr", "lightgcn")


def model_names(cfg: DemoConfig) -> list[str]:
    extended = ["sequence", "hetero"] if cfg.extended_models else []
    extended += list(SEQUENTIAL) if cfg.sequential_baselines else []
    attention = ["student_w4_attention"] if cfg.attention_student else []
    return [*BASELINES, "teacher", *(f"student_w{b}" for b in cfg.student_bits), *attention, *extended]


def in_workers(cfg: DemoConfig) -> bool:
    """Whether the tasks run on a pool of worker processes (else in this process)."""
    return not cfg.distributed and cfg.workers > 1


def train_models(prep: Prepared, cfg: DemoConfig, names: list[str]) -> tuple[dict, dict, dict, dict]:
    """Train every named model on both splits (one task per model, split and grid point) and
    evaluate it on all, cold and new users.

    Returns (metrics per model, training curves per model, trained standard-split students,
    extra report keys: ``lora``, ``distillation``). BPR-MF and LightGCN cannot serve users
    unseen in training: their ``new`` metrics are those of their popularity fallback.
    """
    tasks = plan(cfg, names)
    workers = cfg.workers if in_workers(cfg) else 1
    if workers > 1:
        log.info("%d training tasks on %d worker process(es), 1 torch thread each", len(tasks), workers)
        context = replace(cfg, progress=False)  # workers log each task's epochs; one bar here shows the tasks
    else:
        log.info("%d training tasks in this process, %d torch threads", len(tasks), torch.get_num_threads())
        context = cfg
        remember(cfg, prep)
    failures: dict[str, str] = {}
    if cfg.resume and cfg.distributed:  # ranks on other hosts would see other records, then run other tasks
        raise FpgarecError("--resume does not run under torchrun: every rank must run the same tasks")
    records = TaskRecords(cfg, outputs=partial(task_outputs, cfg))
    finished = records.load(tasks) if cfg.resume else None
    if is_main_process() and not cfg.resume:
        records.clear()  # a run that does not resume starts from nothing
    done = run_tasks(tasks, TASK_FUNCTIONS, context, workers, progress=cfg.progress and is_main_process(),
                     failures=failures, finished=finished, on_done=records.save if is_main_process() else None)
    pop_new = popularity_new(prep)
    results, curves = assemble(done, names, pop_new)
    for r in done.values():  # FINN's estimate of the students the demo does not build
        if r.task.model == "estimates":
            for name, res in r.value["resources"].items():
                if name in results:
                    results[name]["resources"] = res
    if "popularity" in names:  # with the few-shot references of the new-user bar (seconds)
        results = {"popularity": popularity_entry(prep, cfg, pop_new),
                   **fewshot_references(prep.standard, prep.new, seed=cfg.seed), **results}
    for name in names:
        if name in results:
            r = results[name]
            log.info("%-11s NDCG@10 all %.4f cold %.4f new %.4f (%.0f s)", name, r["all"]["ndcg@10"],
                     r["cold"]["ndcg@10"], r["new"]["ndcg@10"], r["train_seconds"])
    trained = {n: trained_student(cfg, n, STANDARD) for n in names
               if n.startswith("student_w") and f"{n}.{STANDARD}.0" in done}
    extra = {"failed": failures} if failures else {}
    if finished:
        extra["resumed"] = sorted(k for k in finished if k in done)
    design = [r.value for r in done.values() if r.task.model == "design"]
    if design:
        extra.update(design[0])
    lora = [r.value["lora"] for r in done.values() if r.task.model == "lora"]
    if lora:
        extra["lora"] = lora[0]
    distill = distillation_report(results)
    if distill is not None:
        extra["distillation"] = distill
    results.pop(NODISTILL, None)
    return results, curves, trained, extra


def _multimodal_entry(prep: Prepared) -> dict:
    """The report's ``"multimodal"`` object: what the item content vectors were made of."""
    dim = int(prep.content.shape[1])
    if prep.multimodal is None:
        return {"status": f"text only: {prep.data.name} has no media folder (MovieLens ships no images, "
                          "audio or video); run with --media DIR to align image, audio and video with the text",
                "content_dim": dim}
    mm = prep.multimodal
    keep = ("items", "dim", "modalities", "files", "retrieval", "train_seconds", "encoders", "heads")
    return {"status": "text + media aligned into one item space (InfoNCE)", "content_dim": dim,
            **{k: mm[k] for k in keep if k in mm}, "skipped_files": len(mm.get("skipped", []))}


def _meta(cfg: DemoConfig, prep: Prepared, trained: dict) -> dict:
    return {
        "dataset": prep.data.summary(),
        "protocol": "per-user temporal 80/10/10; full ranking excluding earlier interactions; "
        "cold = <=30 interactions; new = 10% users held out, 5 context interactions",
        "users evaluated (all / cold / new)": f"{int((prep.standard.test.lengths() > 0).sum())} / "
        f"{len(prep.standard.cold_users)} / {len(prep.new.new_users)}",
        "config": cfg.as_dict(),
        "student modality weights (id, text)": {
            n: [round(float(x), 4) for x in m.modality_weights().detach()] for n, m in trained.items()
        },
        "training": f"{cfg.workers} worker process(es) side by side, 1 torch thread each"
        if in_workers(cfg) else f"one process, {cfg.threads} torch threads",
        "ctr protocol": "test positives vs one uniformly sampled never-interacted negative each; "
        "AUC pooled over users (GAUC: per user); log-loss after Platt scaling fitted on validation",
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_demo(cfg: DemoConfig) -> dict:
    """Run the whole job; returns the report (rank 0 also writes it)."""
    from fpgarec.reporting.html import write_report

    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    prep = prepare(cfg)
    results, curves, trained, extra = train_models(prep, cfg, model_names(cfg))
    report = dict(results)
    resumed = extra.pop("resumed", None)
    report.update(extra)
    report["multimodal"] = _multimodal_entry(prep)
    report["curves"] = curves
    report["bars"] = all_bars(results, extra)
    report["meta"] = _meta(cfg, prep, trained) | {"total_seconds": round(time.perf_counter() - t0, 1)}
    if resumed:  # the report says which results an earlier run computed
        report["meta"]["resumed (--resume): tasks an earlier run finished"] = f"{len(resumed)}: {', '.join(resumed)}"
    if is_main_process():
        for name, model in trained.items():
            save_student(model, cfg.out / "models" / name, results[name])
        report["meta"]["total_seconds"] = round(time.perf_counter() - t0, 1)
        html = write_report(report, cfg.out)
        log.info("report written: %s", html)
    return report
