"""Training recipes of the baselines, the hybrid teacher and the quantized students.

A recipe builds a model for one split of :class:`~fpgarec.data.prepared.Prepared` data, trains
it with :func:`fpgarec.train.loop.fit` and returns ``(model, TrainHistory)``. It reads small
typed settings (:class:`TrainSettings`, :class:`StudentSettings`), never the flow's config.
The sequence and heterogeneous recipes are :mod:`fpgarec.train.sequence` and
:mod:`fpgarec.train.hetero`.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

from fpgarec.data.graph import normalized_adjacency, useful_kg_edges
from fpgarec.data.prepared import Prepared
from fpgarec.data.split import Split
from fpgarec.models.baselines import BPRMF, LightGCN
from fpgarec.models.student import DistillationObjective, QuantStudent, StudentShape
from fpgarec.models.teacher import HybridTeacher
from fpgarec.train.evaluate import evaluate_valid
from fpgarec.train.loop import TrainConfig, TrainHistory, fit
from fpgarec.train.sampling import bpr_batches, next_item_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """What every recipe reads: the models' shape, the examples, the run's length."""

    #: embedding width D.
    dim: int = 64
    #: LightGCN / teacher propagation layers.
    layers: int = 3
    #: neighbours K of a query (the teacher's context, the student's slots).
    k: int = 20
    #: gap between a training context and its target, 1..horizon interactions.
    horizon: int = 10
    #: seed of initialisation and batch order.
    seed: int = 0
    #: maximum epochs (early stopping usually ends sooner).
    max_epochs: int = 300
    #: the teacher's propagation also runs over the knowledge graph's item-entity edges.
    teacher_kg: bool = False
    #: show progress bars.
    progress: bool = True

    def loop(self, lr: float, patience: int, eval_every: int, epochs: int | None = None,
             max_seconds: float | None = None) -> TrainConfig:
        """The loop's settings for a run at ``lr`` with this early stopping (``epochs``: at
        most this many, default ``max_epochs``)."""
        return TrainConfig(epochs=self.max_epochs if epochs is None else epochs, lr=lr, patience=patience,
                           eval_every=eval_every, seed=self.seed, max_seconds=max_seconds,
                           progress=self.progress)


@dataclass(frozen=True)
class StudentSettings:
    """The quantized student's own settings."""

    #: bit width of weights and activations.
    bits: int = 4
    #: of the K slots, how many hold the most recent items (None: all K).
    n_recent: int | None = 12
    #: share of training examples whose target lies anywhere after the context.
    long_context_prob: float = 0.0
    #: weight λ of the distillation term (0: no teacher term).
    distill_weight: float = 0.5
    #: distillation temperature τ.
    distill_temperature: float = 1.0


# ----------------------------------------------------------------------------- baselines
#: the baselines' tuning grid: (learning rate, batch size); the best validation NDCG@10 wins.
BASELINE_GRID = {"bpr": ((1e-3, 2048), (5e-3, 2048)), "lightgcn": ((5e-3, 2048), (1e-2, 4096))}


def build_baseline(name: str, prep: Prepared, split: Split, s: TrainSettings) -> nn.Module:
    """A fresh, untrained ``name`` baseline ("bpr" or "lightgcn") for ``split``."""
    if name == "bpr":
        return BPRMF(split.train, prep.data.n_items, s.dim, seed=s.seed)
    adj, _ = normalized_adjacency(split.train, prep.data.n_items)
    return LightGCN(split.train, prep.data.n_items, adj, s.dim, s.layers, seed=s.seed)


def train_grid_point(name: str, variant: int, prep: Prepared, split: Split, s: TrainSettings):
    """Train baseline ``name`` at grid point ``BASELINE_GRID[name][variant]``."""
    lr, batch = BASELINE_GRID[name][variant]
    model = build_baseline(name, prep, split, s)
    hist = fit(model, split, bpr_batches(split.train, prep.data.n_items, batch), s.loop(lr, 10, 2), name)
    log.info("%s lr %g batch %d: valid NDCG@10 %.4f", name, lr, batch, hist.best_valid_ndcg10)
    hist.chosen = {"lr": lr, "batch": batch}
    return model, hist


# ----------------------------------------------------------------------------- teacher, students
def build_teacher(prep: Prepared, split: Split, s: TrainSettings) -> HybridTeacher:
    """An untrained hybrid teacher for ``split`` (also what saved teacher weights load into)."""
    kg = useful_kg_edges(prep.data.kg) if (s.teacher_kg and prep.data.kg is not None) else None
    adj, layout = normalized_adjacency(split.train, prep.data.n_items, kg)
    return HybridTeacher(
        split.train, prep.data.n_items, adj, prep.content, s.dim, s.layers, seed=s.seed,
        n_extra_nodes=layout.n_entities, k=s.k,
    )


def train_teacher(prep: Prepared, split: Split, s: TrainSettings):
    model = build_teacher(prep, split, s)
    batches = next_item_batches(split.train, prep.data.n_items, s.k, s.horizon, 4096)
    hist = fit(model, split, batches, s.loop(1e-2, 8, 2), "teacher")
    return model, hist


def train_student(prep: Prepared, split: Split, s: TrainSettings, st: StudentSettings,
                  teacher: HybridTeacher | None):
    """The quantized student, initialised from and distilled from ``teacher`` (None: from
    random initialisation, cross-entropy only)."""
    torch.manual_seed(s.seed)
    student = QuantStudent(StudentShape(prep.data.n_items, s.dim, s.k, st.bits, st.bits, st.n_recent))
    if teacher is not None:
        with torch.no_grad():
            _, items = teacher.propagate()
            student.init_from(items, teacher.projected_text(), teacher.context)
    objective = DistillationObjective(student, teacher, st.distill_weight, st.distill_temperature)
    batches = next_item_batches(
        split.train, prep.data.n_items, s.k, s.horizon, 1024, st.long_context_prob, st.n_recent,
        null_id=student.shape.null_id,
    )
    hist = fit(objective, split, batches, s.loop(1e-3, 5, 1), f"student_w{st.bits}")
    return student, hist


# ----------------------------------------------------------------------------- starting points
def starting_point(model: nn.Module, split: Split, valid: float | None = None) -> tuple[float, dict]:
    """(validation NDCG@10, state) of a model before training (``valid``: already measured)."""
    if valid is None:
        model.eval()
        with torch.no_grad():
            valid = evaluate_valid(model, split)["ndcg@10"]
    return valid, copy.deepcopy(model.state_dict())


def keep_start_unless_beaten(model: nn.Module, hist: TrainHistory, start: tuple[float, dict] | None,
                             name: str) -> bool:
    """Restore the starting state unless training beat it on validation NDCG@10; then
    ``hist`` says epoch 0 and the starting score. Returns whether the start was kept."""
    if start is None or start[0] < hist.best_valid_ndcg10:
        return False
    log.info("%s: no epoch beat the starting point on validation (%.4f >= %.4f); keeping it",
             name, start[0], hist.best_valid_ndcg10)
    model.load_state_dict(start[1])
    hist.best_valid_ndcg10, hist.best_epoch = start[0], 0
    return True
