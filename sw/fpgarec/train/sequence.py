"""The behaviour-sequence model's recipe: its examples and batches, the choice of the initial
time decay, and :func:`train_sequence` (the model and its maths: :mod:`fpgarec.models.sequence`).

Starting from a trained teacher, :func:`train_sequence` picks the initial decay λ0 from a small
grid by validation NDCG@10 (BPR on training examples alone does not find the strong recency
decay that held-out data rewards: docs/sequence.md), freezes the teacher's weights and
fine-tunes the attention with the teacher's BPR objective and early stopping; the starting
state is kept unless training beats it on validation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fpgarec.data.behaviour import BehaviourLog
from fpgarec.data.graph import normalized_adjacency, useful_kg_edges
from fpgarec.data.prepared import Prepared
from fpgarec.data.sampler import example_positions
from fpgarec.data.split import Split, UserSequences
from fpgarec.models.sequence import SequenceTeacher, sequence_context
from fpgarec.models.teacher import HybridTeacher
from fpgarec.train.evaluate import evaluate_valid
from fpgarec.train.loop import fit
from fpgarec.train.recipes import TrainSettings, keep_start_unless_beaten, starting_point
from fpgarec.train.sampling import NegativeDraw

log = logging.getLogger(__name__)


def sequence_examples(
    train: UserSequences,
    types: np.ndarray,
    ts: np.ndarray,
    k: int,
    horizon: int,
    rng: np.random.Generator,
    min_context: int = 1,
):
    """ "Recent behaviours -> a later item" examples, as the teacher's
    (:func:`fpgarec.data.sampler.next_item_examples`): every train interaction at position
    p >= min_context is a positive; its context ends at e = max(p - j, min_context),
    j ~ U{0, horizon - 1}; Δt is measured at the context's own latest interaction.

    Args:
        types, ts: aligned with ``train.items`` (:meth:`BehaviourLog.aligned`).

    Returns:
        (users (E,), SequenceContext with (E, K) slots, positives (E,)).
    """
    users, items, start, pos, gap = example_positions(train, horizon, rng, min_context)
    end = np.maximum(pos - gap, min_context)
    return users, sequence_context(train.items, types, ts, start, start + end, k), items


def sequence_batches(
    train: UserSequences, blog: BehaviourLog, n_items: int, k: int, horizon: int, batch_size: int
):
    """A batch source for :func:`fpgarec.train.loop.fit`: epochs of
    (user (B,), items (B, K), types (B, K), Δt (B, K), mask (B, K), positive (B,), negative (B,)).
    Negatives are uniform over items the user has not interacted with in train (one redraw)."""
    types, ts = blog.aligned(train)
    negatives = NegativeDraw(train, n_items)

    def source(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        users, ctx, pos = sequence_examples(train, types, ts, k, horizon, rng)
        perm = rng.permutation(len(users))
        for lo in range(0, len(perm), batch_size):
            idx = perm[lo : lo + batch_size]
            u = users[idx]
            n = negatives(u, rng)
            yield (
                torch.from_numpy(u),
                *ctx.rows(idx).tensors(),
                torch.from_numpy(pos[idx]),
                torch.from_numpy(n),
            )

    return source

@dataclass
class SequenceConfig:
    """Settings of :func:`train_sequence` beyond :class:`~fpgarec.train.recipes.TrainSettings`
    (whose dim, layers, k, horizon, seed and max_epochs are used as they are)."""

    #: learning rate (fine-tuning from a teacher).
    lr: float = 1e-3
    #: learning rate when training from scratch (the teacher's).
    lr_scratch: float = 1e-2
    #: wall-clock budget of the whole of :func:`train_sequence` from a teacher (behaviour log,
    #: decay grid, training loop), seconds; None: no budget. The loop stops at its first
    #: validation past the budget (so it can overshoot by one epoch, about 3 s on 2 cores).
    max_seconds: float | None = 50.0
    #: validations without improvement before stopping.
    patience: int = 3
    #: validate every this many epochs.
    eval_every: int = 1
    #: attention width A.
    attn_dim: int = 32
    #: initial time decay λ (per type) when training from scratch.
    decay_init: float = 0.05
    #: candidate initial decays λ0 when starting from a teacher: the one with the best
    #: validation NDCG@10 of the untrained read-out is kept (empty: ``decay_init``).
    decay_grid: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    #: time unit of the decay, seconds: log(1 + Δt / dt_unit).
    dt_unit: float = 60.0
    #: examples per batch.
    batch_size: int = 4096
    #: train only the sequence parameters when starting from a teacher (its propagation is
    #: then computed once: much faster epochs).
    freeze_teacher: bool = True


@torch.no_grad()
def select_decay(model: SequenceTeacher, split: Split, grid: tuple[float, ...]) -> dict:
    """Set the time decay λ0 (all types) to the grid value whose read-out has the best
    validation NDCG@10, the rest of the attention as initialised (a hyper-parameter choice:
    the BPR objective on training examples alone keeps λ near its start, docs/sequence.md).

    Returns {"decay_init": λ0, "valid_ndcg@10": its NDCG@10, "decay_grid_valid_ndcg@10":
    {λ: NDCG@10}}.
    """
    model.eval()
    scores = {}
    for value in grid:
        model.attention.set_decay(value)
        scores[value] = evaluate_valid(model, split)["ndcg@10"]
    best = max(scores, key=scores.get)
    model.attention.set_decay(best)
    log.info(
        "sequence: decay grid %s -> λ0 = %g", {k: round(v, 4) for k, v in scores.items()}, best
    )
    return {
        "decay_init": best,
        "valid_ndcg@10": scores[best],
        "decay_grid_valid_ndcg@10": {str(k): round(v, 4) for k, v in scores.items()},
    }


def train_sequence(
    prep: Prepared,
    split: Split,
    s: TrainSettings,
    teacher: HybridTeacher | None = None,
    scfg: SequenceConfig | None = None,
):
    """Train the sequence model on one split, in the style of
    :func:`fpgarec.train.recipes.train_teacher`.

    Args:
        prep: the prepared data (interactions with ratings and timestamps, content vectors).
        split: the split to train on.
        s: the shared settings (dim, layers, k, horizon, seed, max_epochs, progress).
        teacher: a teacher trained on the same split to start from (then the run keeps to
            ``scfg.max_seconds``); None trains everything from scratch with the teacher's
            settings (lr 1e-2, no time budget, about as long as the teacher).
        scfg: sequence settings.

    Returns:
        (model, TrainHistory); ``model.report_entry()`` describes it.
    """
    scfg = scfg or SequenceConfig()
    t0 = time.perf_counter()
    blog = BehaviourLog.from_data(prep.data)
    chosen: dict = {}
    start = None
    kw = {"attn_dim": scfg.attn_dim, "decay_init": scfg.decay_init, "dt_unit": scfg.dt_unit}
    if teacher is not None:
        model = SequenceTeacher.from_teacher(teacher, split.train, blog, seed=s.seed, **kw)
        if scfg.freeze_teacher:
            model.freeze_teacher(True)
        lr = scfg.lr
        if scfg.decay_grid:
            chosen = select_decay(model, split, scfg.decay_grid)
        start = starting_point(model, split, chosen["valid_ndcg@10"] if chosen else None)
    else:
        kg = (
            useful_kg_edges(prep.data.kg) if (s.teacher_kg and prep.data.kg is not None) else None
        )
        adj, layout = normalized_adjacency(split.train, prep.data.n_items, kg)
        model = SequenceTeacher(
            split.train,
            prep.data.n_items,
            adj,
            prep.content,
            blog,
            s.dim,
            s.layers,
            seed=s.seed,
            n_extra_nodes=layout.n_entities,
            k=s.k,
            **kw,
        )
        lr = scfg.lr_scratch
    batches = sequence_batches(
        split.train, blog, prep.data.n_items, model.k, s.horizon, scfg.batch_size
    )
    elapsed = time.perf_counter() - t0
    budget = scfg.max_seconds if teacher is not None else None
    tcfg = s.loop(lr, scfg.patience, scfg.eval_every,
                  max_seconds=None if budget is None else max(1.0, budget - elapsed))
    hist = fit(model, split, batches, tcfg, "sequence")
    keep_start_unless_beaten(model, hist, start, "sequence")
    model.freeze_teacher(False)
    hist.chosen = chosen | {"kept": "trained" if hist.best_epoch else "initial"}
    hist.seconds = time.perf_counter() - t0  # everything: log, grid, training
    log.info("sequence: %s", json.dumps(model.report_entry()))
    return model, hist

