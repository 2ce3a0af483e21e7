"""The demo's tasks (:mod:`fpgarec.experiment.scheduler`): what each trains, saves and measures.

Every table function takes ``(task, cfg)`` (``cfg``: the :class:`~fpgarec.config.DemoConfig`;
the prepared data comes from :func:`prepared`, once per process) and returns plain numbers::

    {"metrics": {"all", "cold", "ctr"} (standard split) | {"new"} (new-user split),
     "curve": training curve, "seconds": training seconds, "valid": best validation NDCG@10}

Weights that other tasks load are checkpoints under ``<out>/work/``
(:mod:`fpgarec.train.checkpoint`); under torch.distributed only rank 0 writes them. A process
also keeps the checkpoints it made in memory and loads those first: under ``torchrun`` every
rank trains the same weights (DDP), so no rank reads another host's files.
"""

from __future__ import annotations

import json
from pathlib import Path

from fpgarec.config import DemoConfig
from fpgarec.data.prepared import Prepared
from fpgarec.experiment.prepare import prepare
from fpgarec.experiment.scheduler import BOTH, NEW, STANDARD, Task
from fpgarec.train.checkpoint import (
    load_parameters,
    load_student,
    parameters,
    save_parameters,
    save_student,
    student_from_state,
    student_state,
)
from fpgarec.train.ctr import evaluate_ctr
from fpgarec.train.distributed import barrier, is_main_process
from fpgarec.train.evaluate import evaluate_new, evaluate_test
from fpgarec.train.recipes import (
    BASELINE_GRID,
    StudentSettings,
    TrainSettings,
    build_teacher,
    train_grid_point,
    train_student,
    train_teacher,
)

#: the 4-bit student trained without the teacher (the distillation report's "without").
NODISTILL = "student_w4_nodistill"


# ----------------------------------------------------------------------------- settings, data
def train_settings(cfg: DemoConfig) -> TrainSettings:
    return TrainSettings(dim=cfg.dim, layers=cfg.layers, k=cfg.k, horizon=cfg.horizon, seed=cfg.seed,
                         max_epochs=cfg.max_epochs, teacher_kg=cfg.teacher_kg, progress=cfg.progress)


def student_settings(cfg: DemoConfig, bits: int, aggregation: str = "mean") -> StudentSettings:
    distill = cfg.attention_distill_weight if aggregation == "attention" else cfg.distill_weight
    return StudentSettings(bits=bits, n_recent=cfg.n_recent, long_context_prob=cfg.long_context_prob,
                           distill_weight=distill, distill_temperature=cfg.distill_temperature, aggregation=aggregation)


#: suffix of the students with the attention aggregation (``student_w4_attention``)
ATTENTION = "_attention"


def student_spec(model: str) -> tuple[int, bool, str]:
    """(bits, distilled, aggregation) of a student task's model name: ``student_w<bits>``,
    ``student_w<bits>_attention`` or the undistilled :data:`NODISTILL`."""
    if model == NODISTILL:
        return 4, False, "mean"
    aggregation = "attention" if model.endswith(ATTENTION) else "mean"
    return int(model.removeprefix("student_w").removesuffix(ATTENTION)), True, aggregation


_PREPARED: dict[str, Prepared] = {}


def _key(cfg: DemoConfig) -> str:
    return json.dumps(cfg.as_dict(), sort_keys=True, default=str)


def prepared(cfg: DemoConfig) -> Prepared:
    """The run's data (memoised per process: a worker prepares once, then reuses it)."""
    key = _key(cfg)
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = prepare(cfg, reuse_content=True)
    return _PREPARED[key]


def remember(cfg: DemoConfig, prep: Prepared) -> None:
    """Let tasks run in this process use ``prep`` (already prepared for ``cfg``)."""
    _PREPARED.clear()
    _PREPARED[_key(cfg)] = prep


def _split(prep: Prepared, name: str):
    return prep.standard if name == STANDARD else prep.new


def evaluate_on(model, split_name: str, prep: Prepared, cfg: DemoConfig) -> dict:
    """The standard split: all and cold users plus click-through; the new-user split: new."""
    if split_name == STANDARD:
        res = evaluate_test(model, prep.standard)
        res["ctr"] = evaluate_ctr(model, prep.standard, seed=cfg.seed)
        return res
    return {"new": evaluate_new(model, prep.new)}


def _outcome(model, hist, task: Task, prep: Prepared, cfg: DemoConfig, **extra) -> dict:
    return {"metrics": evaluate_on(model, task.split, prep, cfg), "curve": hist.as_dict(),
            "seconds": hist.seconds, "valid": hist.best_valid_ndcg10, **extra}


# ----------------------------------------------------------------------------- checkpoints
def work_dir(cfg: DemoConfig) -> Path:
    return Path(cfg.out) / "work"


def teacher_path(cfg: DemoConfig, split_name: str) -> Path:
    return work_dir(cfg) / f"teacher.{split_name}.safetensors"


def student_path(cfg: DemoConfig, model: str, split_name: str) -> Path:
    """``<work>/<model>.<split>.student``: the checkpoint files replace the last suffix
    (``student_w4.standard.safetensors``), so each split keeps its own files."""
    return work_dir(cfg) / f"{model}.{split_name}.student"


def task_outputs(cfg: DemoConfig, task: Task) -> list[Path]:
    """The files a finished task leaves that later work loads: a ``--resume``-d run takes a
    task's kept result only while they are there (:mod:`fpgarec.experiment.resume`)."""
    from fpgarec.train.checkpoint import student_files

    if task.model == "teacher":
        return [teacher_path(cfg, task.split)]
    if task.model.startswith("student_w"):
        return list(student_files(student_path(cfg, task.model, task.split))[:2])
    if task.model in SEQUENTIAL and task.split == STANDARD:
        return [_choice_path(cfg, task.model, task.variant)]
    if task.model == "design":
        return [Path(cfg.out) / "bitstreams" / f"student_w4_{cfg.board}" / "manifest.json"]
    return []


#: checkpoints this process made, by path (the same tensors as the files)
_KEPT: dict[Path, object] = {}


def _checkpoint(path: Path, kept, write) -> None:
    """Keep ``kept`` in memory; rank 0 writes the file (every process when not distributed)."""
    _KEPT[Path(path)] = kept
    if is_main_process():
        write()
    barrier()


def load_teacher(prep: Prepared, split_name: str, cfg: DemoConfig):
    model = build_teacher(prep, _split(prep, split_name), train_settings(cfg))
    path = teacher_path(cfg, split_name)
    return load_parameters(model, _KEPT.get(path, path))


def trained_student(cfg: DemoConfig, model: str, split_name: str):
    """A student a task trained (kept in memory by this process, else from its file)."""
    path = student_path(cfg, model, split_name)
    return student_from_state(*_KEPT[path]) if path in _KEPT else load_student(path)


# ----------------------------------------------------------------------------- task bodies
def task_baseline(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    prep = prep or prepared(cfg)
    model, hist = train_grid_point(task.model, task.variant, prep, _split(prep, task.split), train_settings(cfg))
    return _outcome(model, hist, task, prep, cfg)


def task_teacher(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    prep = prep or prepared(cfg)
    model, hist = train_teacher(prep, _split(prep, task.split), train_settings(cfg))
    path = teacher_path(cfg, task.split)
    _checkpoint(path, parameters(model), lambda: save_parameters(model, path))
    return _outcome(model, hist, task, prep, cfg)


def task_student(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    prep = prep or prepared(cfg)
    bits, distilled, aggregation = student_spec(task.model)
    teacher = load_teacher(prep, task.split, cfg) if distilled else None
    model, hist = train_student(prep, _split(prep, task.split), train_settings(cfg),
                                student_settings(cfg, bits, aggregation), teacher)
    path = student_path(cfg, task.model, task.split)
    _checkpoint(path, student_state(model), lambda: save_student(model, path))
    return _outcome(model, hist, task, prep, cfg, modality_weights=[float(x) for x in model.modality_weights().detach()])


def task_sequence(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    from fpgarec.train.sequence import train_sequence

    prep = prep or prepared(cfg)
    teacher = load_teacher(prep, task.split, cfg)
    model, hist = train_sequence(prep, _split(prep, task.split), train_settings(cfg), teacher=teacher)
    return _outcome(model, hist, task, prep, cfg, about=model.report_entry())


def task_hetero(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    from fpgarec.train.hetero import train_hetero

    prep = prep or prepared(cfg)
    teacher = load_teacher(prep, task.split, cfg)
    social = None
    if cfg.social is not None:  # its validation report is logged
        from fpgarec.data.social import read_social

        social = read_social(cfg.social, prep.data.user_tokens)
    model, hist = train_hetero(prep, _split(prep, task.split), train_settings(cfg), social=social, teacher=teacher)
    about = model.report_entry()
    about["social"] = social.report if social is not None else (
        "none: MovieLens ships no social graph (give --social FILE, a RecBole .net file)")
    return _outcome(model, hist, task, prep, cfg, about=about)


def task_lora(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    """Frozen vs LoRA vs full fine-tuning of the text encoder (fpgarec.lm) on MiniLM's own
    vectors ``prep.text`` (also under ``--media``); each mode runs in its own child process so
    its peak memory is its own."""
    from fpgarec.lm.compare import compare_finetuning
    from fpgarec.lm.config import FinetuneConfig
    from fpgarec.lm.plot import plot_finetuning

    prep = prep or prepared(cfg)
    fcfg = FinetuneConfig(dim=cfg.dim, k=cfg.k, horizon=cfg.horizon, seed=cfg.seed, progress=False)
    res = compare_finetuning(prep, fcfg, progress=False)
    png = plot_finetuning(res, Path(cfg.out) / "plots", "lora.png")
    res["plot"] = f"plots/{png.name}"
    return {"lora": res, "seconds": sum(float(res[m]["train_seconds"]) for m in fcfg.modes if m in res)}


task_lora.single_process = True  # under torchrun: rank 0 runs it, the others get its numbers

#: the standard sequential baselines (GRU4Rec, SASRec; fpgarec.train.sequential_baselines)
SEQUENTIAL = ("gru4rec", "sasrec")


def _choice_path(cfg: DemoConfig, model: str, variant: int) -> Path:
    return work_dir(cfg) / f"{model}.{STANDARD}.{variant}.valid.json"


def task_sequential(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    """GRU4Rec or SASRec: on the standard split one grid point (``task.variant``) per task,
    its validation NDCG@10 kept for the new-user run; on the new-user split the grid point with
    the best standard validation NDCG@10 (needs every standard point; ties: the first point)."""
    from dataclasses import replace

    from fpgarec.train.sequential_baselines import GRID, QUICK_MAX_SECONDS, train_point

    prep = prep or prepared(cfg)
    grid = GRID[task.model]
    if task.split == STANDARD:
        variant = task.variant
    else:
        valid = []
        for v in range(len(grid)):
            path = _choice_path(cfg, task.model, v)
            valid.append(_KEPT[path] if path in _KEPT else json.loads(path.read_text())["valid"])
        variant = max(range(len(grid)), key=lambda v: (valid[v], -v))
    st = replace(grid[variant], seed=cfg.seed, epochs=min(grid[variant].epochs, cfg.max_epochs),
                 **({"max_seconds": QUICK_MAX_SECONDS} if cfg.quick else {}))
    model, hist = train_point(task.model, _split(prep, task.split), st, progress=cfg.progress)
    if task.split == STANDARD:
        path = _choice_path(cfg, task.model, variant)
        path.parent.mkdir(parents=True, exist_ok=True)
        _checkpoint(path, hist.best_valid_ndcg10, lambda: path.write_text(json.dumps({"valid": hist.best_valid_ndcg10})))
    return _outcome(model, hist, task, prep, cfg)


def task_design(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    """The hardware half (:mod:`fpgarec.experiment.design`) as soon as the 4-bit student of the
    standard split exists, beside the training tasks still running: compile it, verify it bit
    for bit, score the design's own output, simulate it in Verilator and explain its
    recommendations. The model file the bundle is built from carries that student's own test
    metrics (all and cold users; its new-user figures belong to the other split's student)."""
    from fpgarec.experiment.design import build_and_verify, explain_demo

    prep = prep or prepared(cfg)
    student = trained_student(cfg, "student_w4", STANDARD)
    save_student(student, Path(cfg.out) / "models" / "student_w4", evaluate_test(student, prep.standard))
    design = build_and_verify(cfg, student, prep.standard)
    explanations = explain_demo(cfg, prep, Path(cfg.out) / "bitstreams" / f"student_w4_{cfg.board}")
    return {"design": design, "explanations": explanations}


task_design.single_process = True  # under torchrun: rank 0 builds, the others get its numbers


def task_estimates(task: Task, cfg: DemoConfig, prep: Prepared | None = None) -> dict:
    """FINN's resource estimate of every trained standard-split student other than the
    design's (the report's accuracy-against-resources chart):
    ``{"resources": {model: {"LUT", "DSP", "BRAM18", "cycles", "source"}}}``."""
    from fpgarec.experiment.design import estimate_student

    out = {}
    for need in task.needs:
        name = need.split(".", 1)[0]
        out[name] = estimate_student(cfg, name, trained_student(cfg, name, STANDARD))
    return {"resources": out}


task_estimates.single_process = True

TASK_FUNCTIONS = {
    "design": task_design,
    "estimates": task_estimates,
    "gru4rec": task_sequential,
    "sasrec": task_sequential,
    "sequence": task_sequence,
    "hetero": task_hetero,
    "lora": task_lora,
    "bpr": task_baseline,
    "lightgcn": task_baseline,
    "teacher": task_teacher,
    "student_w8": task_student,
    "student_w4": task_student,
    "student_w2": task_student,
    "student_w8_attention": task_student,
    "student_w4_attention": task_student,
    "student_w2_attention": task_student,
    NODISTILL: task_student,
}

#: expected single-core seconds per task on full MovieLens-100k (orders the queue only)
COSTS = {"bpr": 12, "lightgcn": 100, "teacher": 100, "student": 65, "sequence": 50, "hetero": 50, "lora": 150,
         "design": 200, "estimates": 30, "gru4rec": 60, "sasrec": 60}


def plan(cfg: DemoConfig, names: list[str]) -> list[Task]:
    """The tasks that train ``names`` (plus the distillation ablation and the fine-tuning
    comparison when configured)."""
    tasks: list[Task] = []
    for name in names:
        if name == "popularity":
            continue
        if name in BASELINE_GRID:  # transductive: standard split only; new users fall back
            tasks += [Task(name, STANDARD, v, cost=COSTS[name]) for v in range(len(BASELINE_GRID[name]))]
        elif name == "teacher":
            tasks += [Task("teacher", s, cost=COSTS["teacher"]) for s in (STANDARD, NEW)]
        elif name in SEQUENTIAL:  # the grid on the standard split; its best point on the new-user split
            from fpgarec.train.sequential_baselines import GRID

            points = range(len(GRID[name]))
            tasks += [Task(name, STANDARD, v, cost=COSTS[name]) for v in points]
            tasks.append(Task(name, NEW, needs=tuple(f"{name}.{STANDARD}.{v}" for v in points), cost=COSTS[name]))
        elif name.startswith("student_w") or name in ("sequence", "hetero"):
            cost = COSTS.get(name, COSTS["student"])
            tasks += [Task(name, s, needs=(f"teacher.{s}.0",), cost=cost) for s in (STANDARD, NEW)]
        else:
            raise ValueError(f"no task trains model {name!r}")
    if cfg.distillation_ablation and "student_w4" in names:
        tasks += [Task(NODISTILL, s, cost=COSTS["student"]) for s in (STANDARD, NEW)]
    if cfg.lora:
        tasks.append(Task("lora", BOTH, cost=COSTS["lora"]))
    if cfg.build_design and "student_w4" in names:
        tasks.append(Task("design", STANDARD, needs=(f"student_w4.{STANDARD}.0",), cost=COSTS["design"]))
        others = tuple(f"{n}.{STANDARD}.0" for n in names if n.startswith("student_w") and n != "student_w4")
        if others:  # FINN's estimate of the students the demo does not build (accuracy against resources)
            tasks.append(Task("estimates", STANDARD, needs=others, cost=COSTS["estimates"]))
    return tasks
