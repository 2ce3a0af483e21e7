"""The demo's tasks (:mod:`fpgarec.pipeline`): what each trains, saves and measures, and how
their results become the report's per-model entries.

Task functions take ``(task, cfg, prep)`` and return plain numbers::

    {"metrics": {"all", "cold", "ctr"} (standard split) | {"new"} (new-user split),
     "curve": training curve, "seconds": training seconds, "valid": best validation NDCG@10}

Weights that other tasks load are saved under ``<out>/work/`` as safetensors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from fpgarec.pipeline import BOTH, NEW, STANDARD, Task, TaskResult, work_dir

log = logging.getLogger(__name__)

#: the 4-bit student trained without the teacher (the distillation report's "without").
NODISTILL = "student_w4_nodistill"


def _split(prep, name: str):
    return prep.standard if name == STANDARD else prep.new


def evaluate_on(model, split_name: str, prep, cfg) -> dict:
    """The standard split: all and cold users plus click-through; the new-user split: new."""
    from fpgarec.train.ctr import evaluate_ctr
    from fpgarec.train.evaluate import evaluate_new, evaluate_test

    if split_name == STANDARD:
        res = evaluate_test(model, prep.standard)
        res["ctr"] = evaluate_ctr(model, prep.standard, seed=cfg.seed)
        return res
    return {"new": evaluate_new(model, prep.new)}


def _outcome(model, hist, task: Task, prep, cfg, **extra) -> dict:
    return {
        "metrics": evaluate_on(model, task.split, prep, cfg),
        "curve": hist.as_dict(),
        "seconds": hist.seconds,
        "valid": hist.best_valid_ndcg10,
        **extra,
    }


# ----------------------------------------------------------------------------- weights I/O
def save_parameters(model, path: Path) -> None:
    """A model's parameters (not its rebuilt-on-construction buffers) as safetensors."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.named_parameters()}, str(path))


def load_parameters(model, path: Path):
    """Load :func:`save_parameters`' file into a freshly built model of the same shape."""
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    params = {k for k, _ in model.named_parameters()}
    if unexpected or params & set(missing):
        raise RuntimeError(f"{path}: weights do not fit the model (missing {missing}, unexpected {unexpected})")
    model.eval()
    return model


def teacher_path(cfg, split_name: str) -> Path:
    return work_dir(cfg) / f"teacher.{split_name}.safetensors"


def load_teacher(prep, split_name: str, cfg):
    from fpgarec.demo import build_teacher

    return load_parameters(build_teacher(prep, _split(prep, split_name), cfg), teacher_path(cfg, split_name))


def student_path(cfg, model: str, split_name: str) -> Path:
    return work_dir(cfg) / f"{model}.{split_name}"


# ----------------------------------------------------------------------------- task bodies
def task_baseline(task: Task, cfg, prep) -> dict:
    from fpgarec.demo import train_grid_point

    model, hist = train_grid_point(task.model, task.variant, prep, _split(prep, task.split), cfg)
    return _outcome(model, hist, task, prep, cfg)


def task_teacher(task: Task, cfg, prep) -> dict:
    from fpgarec.demo import train_teacher

    model, hist = train_teacher(prep, _split(prep, task.split), cfg)
    save_parameters(model, teacher_path(cfg, task.split))
    return _outcome(model, hist, task, prep, cfg)


def task_student(task: Task, cfg, prep) -> dict:
    from fpgarec.demo import save_student, train_student

    distilled = task.model != NODISTILL
    bits = 4 if not distilled else int(task.model.removeprefix("student_w"))
    teacher = load_teacher(prep, task.split, cfg) if distilled else None
    model, hist = train_student(prep, _split(prep, task.split), cfg, bits, teacher)
    save_student(model, student_path(cfg, task.model, task.split))
    return _outcome(model, hist, task, prep, cfg,
                    modality_weights=[float(x) for x in model.modality_weights().detach()])


def _social(cfg, prep):
    """The ``--social`` file's edges (None without one); its validation report is logged."""
    if cfg.social is None:
        return None
    from fpgarec.data.social import read_social

    return read_social(cfg.social, prep.data.user_tokens)


def task_sequence(task: Task, cfg, prep) -> dict:
    from fpgarec.models.sequence import train_sequence

    teacher = load_teacher(prep, task.split, cfg)
    model, hist = train_sequence(prep, _split(prep, task.split), cfg, teacher=teacher)
    return _outcome(model, hist, task, prep, cfg, about=model.report_entry())


def task_hetero(task: Task, cfg, prep) -> dict:
    from fpgarec.models.hetero import train_hetero

    teacher = load_teacher(prep, task.split, cfg)
    social = _social(cfg, prep)
    model, hist = train_hetero(prep, _split(prep, task.split), cfg, social=social, teacher=teacher)
    about = model.report_entry()
    about["social"] = social.report if social is not None else (
        "none: MovieLens ships no social graph (give --social FILE, a RecBole .net file)")
    return _outcome(model, hist, task, prep, cfg, about=about)


def task_lora(task: Task, cfg, prep) -> dict:
    """Frozen vs LoRA vs full fine-tuning of the text encoder (fpgarec.lm); each mode
    runs in its own child process so its peak memory is its own."""
    from fpgarec.lm.compare import compare_finetuning
    from fpgarec.lm.config import FinetuneConfig
    from fpgarec.lm.plot import plot_finetuning

    if prep.multimodal is not None:  # --media: prep.text holds the aligned vectors; this compares MiniLM itself
        from dataclasses import replace

        from fpgarec.encoders.text import encode_texts

        prep = replace(prep, text=encode_texts(prep.data.item_text, Path(cfg.cache) / "text", show_progress=False))
    fcfg = FinetuneConfig(dim=cfg.dim, k=cfg.k, horizon=cfg.horizon, seed=cfg.seed, progress=False)
    res = compare_finetuning(prep, fcfg, progress=False)
    png = plot_finetuning(res, Path(cfg.out) / "plots", "lora.png")
    res["plot"] = f"plots/{png.name}"
    return {"lora": res, "seconds": sum(float(res[m]["train_seconds"]) for m in fcfg.modes if m in res)}


TASK_FUNCTIONS = {
    "sequence": task_sequence,
    "hetero": task_hetero,
    "lora": task_lora,
    "bpr": task_baseline,
    "lightgcn": task_baseline,
    "teacher": task_teacher,
    "student_w8": task_student,
    "student_w4": task_student,
    "student_w2": task_student,
    NODISTILL: task_student,
}

#: expected single-core seconds per task on full MovieLens-100k (orders the queue only)
COSTS = {"bpr": 12, "lightgcn": 100, "teacher": 100, "student": 65, "sequence": 50, "hetero": 50, "lora": 150}


def plan(cfg, names: list[str]) -> list[Task]:
    """The tasks that train ``names`` (plus the distillation ablation when configured)."""
    from fpgarec.demo import BASELINE_GRID

    tasks: list[Task] = []
    for name in names:
        if name == "popularity":
            continue
        if name in BASELINE_GRID:  # transductive: standard split only; new users fall back
            tasks += [Task(name, STANDARD, v, cost=COSTS[name]) for v in range(len(BASELINE_GRID[name]))]
        elif name == "teacher":
            tasks += [Task("teacher", s, cost=COSTS["teacher"]) for s in (STANDARD, NEW)]
        elif name.startswith("student_w") or name in ("sequence", "hetero"):
            cost = COSTS.get(name, COSTS["student"])
            tasks += [Task(name, s, needs=(f"teacher.{s}.0",), cost=cost) for s in (STANDARD, NEW)]
        else:
            raise ValueError(f"no task trains model {name!r}")
    if cfg.distillation_ablation and "student_w4" in names:
        tasks += [Task(NODISTILL, s, cost=COSTS["student"]) for s in (STANDARD, NEW)]
    if cfg.lora:
        tasks.append(Task("lora", BOTH, cost=COSTS["lora"]))
    return tasks


def assemble(done: dict[str, TaskResult], names: list[str], pop_new: dict) -> tuple[dict, dict]:
    """Per model: ``{"all", "cold", "new", "ctr", "train_seconds"}`` and its training curve.

    A baseline's grid points are compared on validation NDCG@10 (never on test); its
    ``train_seconds`` is the whole grid's. Models without a new-user run report their
    popularity fallback there.
    """
    results: dict[str, dict] = {}
    curves: dict[str, dict] = {}
    by_model: dict[str, list[TaskResult]] = {}
    for res in done.values():
        by_model.setdefault(res.task.model, []).append(res)
    for name in [*names, NODISTILL]:
        runs = by_model.get(name)
        if not runs:
            continue
        standard = [r for r in runs if r.task.split == STANDARD]
        best = max(standard, key=lambda r: (r.value["valid"], -r.task.variant))
        entry = dict(best.value["metrics"])
        new = [r for r in runs if r.task.split == NEW]
        if new:
            entry["new"] = new[0].value["metrics"]["new"]
        else:
            entry["new"] = pop_new
            entry["new_note"] = "user unseen in training: popularity fallback"
        entry["train_seconds"] = float(sum(r.value["seconds"] for r in runs))
        results[name] = entry
        curves[name] = best.value["curve"]  # a grid point's curve names its hyper-parameters
        if "modality_weights" in best.value:
            entry["modality_weights"] = best.value["modality_weights"]
        if "about" in best.value:
            entry["about"] = best.value["about"]
            if new and "about" in new[0].value:
                entry["about_new_split"] = new[0].value["about"]
    return results, curves


def distillation_report(results: dict) -> dict | None:
    """``{"with"|"without": {"all", "cold", "new"} NDCG@10, "gain": relative gain per group}``."""
    if "student_w4" not in results or NODISTILL not in results:
        return None
    groups = ("all", "cold", "new")
    with_ = {g: results["student_w4"][g]["ndcg@10"] for g in groups}
    without = {g: results[NODISTILL][g]["ndcg@10"] for g in groups}
    return {
        "with": with_,
        "without": without,
        "gain": {g: (with_[g] / without[g] - 1.0) if without[g] else float("nan") for g in groups},
        "detail": "with: initialised from the teacher and trained on (1-λ) CE + λ τ² KL(teacher || student); "
        "without: the same 4-bit student from random initialisation, CE only; same epochs, patience, data",
        "without_metrics": {g: results[NODISTILL][g] for g in groups},
        "without_train_seconds": results[NODISTILL]["train_seconds"],
    }


def mean_gain(report: dict) -> float:
    """Mean relative NDCG@10 gain of distillation over the three user groups."""
    return float(np.nanmean(list(report["gain"].values())))
