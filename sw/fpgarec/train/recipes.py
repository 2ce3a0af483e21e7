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

import numpy as np
import torch
from torch import nn

from fpgarec.data.behaviour import BehaviourLog
from fpgarec.data.graph import normalized_adjacency, useful_kg_edges
from fpgarec.data.prepared import Prepared
from fpgarec.data.split import Split, UserSequences
from fpgarec.models.baselines import BPRMF, LightGCN
from fpgarec.models.sequence import SequenceTeacher, sequence_context
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
    #: context aggregation: "mean" (neighbor_aggregate) or "attention" (attention_aggregate,
    #: reading each slot's behaviour type and recency bucket).
    aggregation: str = "mean"
    #: attention: learning-rate gain γ of the query and biases (models/student_attention.py).
    att_gain: float = 10.0
    #: attention: the query's scale 2^-att_q_frac_bits.
    att_q_frac_bits: int = 5
    #: attention: recency buckets R and buckets per doubling of the rank (data/sampler.py recency_bucket).
    att_buckets: int = 8
    att_per_octave: int = 1
    #: attention start: "uniform" (q = 0, biases 0: the mean) or "relevance" (:func:`init_attention`).
    att_init: str = "uniform"
    #: learning rate and early-stopping patience of the student's loop.
    lr: float = 1e-3
    patience: int = 5


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


def student_shape(prep: Prepared, s: TrainSettings, st: StudentSettings) -> StudentShape:
    """The student's shape for these settings."""
    return StudentShape(prep.data.n_items, s.dim, s.k, st.bits, st.bits, st.n_recent, aggregation=st.aggregation,
                        att_buckets=st.att_buckets, att_per_octave=st.att_per_octave, att_q_frac_bits=st.att_q_frac_bits, att_gain=st.att_gain)


def train_student(prep: Prepared, split: Split, s: TrainSettings, st: StudentSettings,
                  teacher: HybridTeacher | None, distill_from=None):
    """The quantized student, initialised from and distilled from ``teacher`` (None: from
    random initialisation, cross-entropy only). ``distill_from``: another frozen model whose
    scores the student is distilled from instead (its ``logits(users, ctx (B, K, 3))``, e.g.
    :class:`SequenceScores`); the initialisation stays the
    teacher's. An attention student starts with q = 0, biases 0 (uniform weights: the mean up
    to the kernel's rounding) and reads the behaviour types of ``prep.data``'s ratings."""
    torch.manual_seed(s.seed)
    student = QuantStudent(student_shape(prep, s, st))
    if teacher is not None:
        with torch.no_grad():
            _, items = teacher.propagate()
            student.init_from(items, teacher.projected_text(), teacher.context)
    types = None
    if student.attention:
        blog = BehaviourLog.from_data(prep.data)
        student.use_behaviour(blog)
        types = blog.aligned(split.train)[0]
    objective = DistillationObjective(student, teacher if distill_from is None else distill_from,
                                      st.distill_weight, st.distill_temperature)
    batches = next_item_batches(
        split.train, prep.data.n_items, s.k, s.horizon, 1024, st.long_context_prob, st.n_recent,
        null_id=student.shape.null_id, types=types, n_buckets=st.att_buckets,
        per_octave=st.att_per_octave,
    )
    if student.attention and st.att_init == "relevance":
        init_attention(student, batches, s.seed)
    hist = fit(objective, split, batches, s.loop(st.lr, st.patience, 1), f"student_w{st.bits}")
    return student, hist


def init_attention(student: QuantStudent, batches, rng_seed: int, steps: int = 200, lr: float = 1e-2) -> float:
    """A learned start for the attention's q and biases (``StudentSettings.att_init = "relevance"``):
    fit the real-unit logits l_j = q·x_j + b_type[τ_j] + b_pos[r_j] of the (unquantized) fused
    vectors x_j = α_id E_id[c_j] + α_txt E_txt[c_j] to each training example's slot relevance,

        min_θ  Σ_examples KL(softmax_j(x_pos · x_j) || softmax_j(l_j))      (real slots only)

    with x_pos the target's scoring vector (the teacher's item vector at the start), by Adam on θ
    (q, b_type, b_pos) only, ``steps`` batches; the rest of the student is not touched. Returns
    the last batch's loss. Shapes: batches as :func:`next_item_batches` with types: ctx (B, K, 3)."""
    agg = student.aggregate
    opt = torch.optim.Adam([agg.q, agg.b_type, agg.b_pos], lr=lr)
    with torch.no_grad():
        a = student.modality_weights()
        table = a[0] * student.id_table.weight + a[1] * student.text_table.weight
        table = torch.cat([table, torch.zeros_like(table[:1])])  # the null id's row
        target_vec = student.scorer.weight
    loss = torch.zeros(())
    for step, (_, ctx, pos, _neg) in enumerate(batches(np.random.default_rng(rng_seed))):
        if step >= steps:
            break
        x = table[ctx[..., 0]]                                               # (B, K, D)
        real = ctx[..., 0] != student.shape.null_id
        r = torch.einsum("bd,bkd->bk", target_vec[pos], x).masked_fill(~real, -1e30)
        q, bt, bp = agg.real_parameters()
        lg = (x @ q + bt[ctx[..., 1]] + bp[ctx[..., 2]]).masked_fill(~real, -1e30)
        p = torch.softmax(r, 1)
        loss = (p * (torch.log_softmax(r, 1) - torch.log_softmax(lg, 1))).masked_fill(~real, 0).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    log.info("attention start fitted to slot relevance: KL %.4f", float(loss.detach()))
    return float(loss.detach())


class SequenceScores:
    """A trained ``sequence`` model as the student's distillation source (``distill_from`` of
    :func:`train_student`): its target-attention scores t(u, i) for the student's training
    contexts. The sequence model reads the K most recent train interactions before the
    context's end e (with their types and ages, :func:`fpgarec.models.sequence.sequence_context`);
    e - 1 is the position of the student's last real slot (the most recent item: an item
    occurs once in a user's train sequence on MovieLens, so its position is a lookup).

    Shapes: logits(users (B,), ctx (B, K) or (B, K, 3) null-padded) -> (B, I)."""

    #: :class:`~fpgarec.models.student.DistillationObjective` hands it the null-padded slots
    reads_slots = True

    def __init__(self, model: SequenceTeacher, train: UserSequences):
        self.model = model.eval()
        self.null_id = model.n_items
        self.train = train
        self.types, self.ts = model.blog.aligned(train)
        users, items = train.pairs()
        self.position = np.full((train.n_users, model.n_items), -1, dtype=np.int64)
        self.position[users, items] = np.arange(len(items))

    def eval(self) -> SequenceScores:
        return self

    def propagate(self):
        return self.model.propagate()

    @torch.no_grad()
    def logits(self, users: np.ndarray, ctx: np.ndarray, propagated=None) -> torch.Tensor:
        ids = ctx[..., 0] if ctx.ndim == 3 else ctx
        length = np.maximum((ids != self.null_id).sum(1), 1)
        last = ids[np.arange(len(ids)), length - 1]
        end = self.position[users, last] + 1
        seq = sequence_context(self.train.items, self.types, self.ts, self.train.indptr[users], end, self.model.k)
        return self.model.logits(users, seq, propagated)


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
