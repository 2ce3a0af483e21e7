"""The heterogeneous model's recipe: :func:`train_hetero` (the model and its maths:
:mod:`fpgarec.models.hetero`).

Starting from a trained bipartite teacher, the model starts with every relation gate at 0 (=
the teacher) and trains only the relation-specific parameters; the starting state is kept
unless an epoch beats it on validation NDCG@10.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from fpgarec.data.prepared import Prepared
from fpgarec.data.social import SocialEdges
from fpgarec.data.split import Split
from fpgarec.models.hetero import NEW_PARAMETERS, HeteroTeacher, build_hetero_graph, kg_relations
from fpgarec.models.teacher import HybridTeacher
from fpgarec.train.evaluate import evaluate_valid
from fpgarec.train.loop import TrainHistory, fit
from fpgarec.train.recipes import TrainSettings, keep_start_unless_beaten, starting_point
from fpgarec.train.sampling import next_item_batches

log = logging.getLogger(__name__)


@dataclass
class HeteroConfig:
    """Settings of :func:`train_hetero` beyond :class:`~fpgarec.train.recipes.TrainSettings`."""

    #: knowledge-graph relations: one per relation type, all as one, or none (see KG_MODES).
    kg: str = "typed"
    #: Adam learning rate (the teacher's).
    lr: float = 1e-2
    #: starting from a teacher: train only the new parameters (gates, entity embeddings) and
    #: keep the teacher's; False fine-tunes everything (worse on test, see docs/hetero.md).
    freeze_teacher: bool = True
    #: starting from a teacher: at most this many epochs (about 2-4 s each on 2 cores, so the
    #: run fits the ~60 s per split budget), validations without improvement before stopping,
    #: epochs between validations, an optional wall-clock cap in seconds (None: none; a cap
    #: makes the result depend on the machine's load).
    epochs: int = 10
    patience: int = 4
    eval_every: int = 1
    max_seconds: float | None = None
    #: starting from a teacher: count the starting point (all gates 0 = the teacher) as epoch
    #: 0 of the early stopping, so the teacher is kept unless an epoch beats it on validation.
    start_candidate: bool = True
    #: from scratch (no teacher): the teacher's own schedule, no time budget.
    scratch_patience: int = 8
    scratch_eval_every: int = 2


def train_hetero(
    prep: Prepared,
    split: Split,
    s: TrainSettings,
    social: SocialEdges | None = None,
    teacher: HybridTeacher | None = None,
    hcfg: HeteroConfig | None = None,
):
    """Train the heterogeneous model on one split, in the style of
    :func:`fpgarec.train.recipes.train_teacher`.

    With a ``teacher`` (trained on the same split) the model starts as that teacher with every
    gate at 0 and, by default, trains only the relation-specific parameters (g_r, entity
    embeddings) for at most ``hcfg.epochs`` epochs: the demo's ~60 s per split budget. Early
    stopping counts the starting point as epoch 0: when no epoch beats it on validation NDCG@10 the
    gates stay 0 and the model is the teacher (``hist.best_epoch == 0``). Without a teacher it
    trains everything from scratch on the teacher's schedule (several times longer, and worse
    on ML-100k, see docs/hetero.md).

    Social edges: training and validation see only the edges between users with train
    interactions; afterwards Â_UU is rebuilt from every edge (a new user's ties are known at
    signup), see the module docstring.

    Args:
        prep: the prepared data (interactions, knowledge graph, content vectors).
        split: the split to train on.
        s: the shared settings (dim, layers, k, horizon, seed, max_epochs, progress).
        social: validated social edges (:func:`fpgarec.data.social.read_social`) or None.
        teacher: the bipartite-only teacher to start from, or None.
        hcfg: hetero settings (default :class:`HeteroConfig`).

    Returns:
        (model, TrainHistory); ``model.report_entry()`` describes it. ``hist.seconds`` is the
        whole call (relation graphs, the starting validation, the loop).
    """
    t0 = time.perf_counter()
    hcfg = hcfg or HeteroConfig()
    kg = kg_relations(prep.data, hcfg.kg)
    trained = split.train.lengths() > 0
    graph = build_hetero_graph(split.train, prep.data.n_items, kg, social, keep_user=trained)
    if teacher is not None:
        model = HeteroTeacher.from_teacher(teacher, split.train, graph, seed=s.seed)
        if hcfg.freeze_teacher:
            for name, p in model.named_parameters():
                p.requires_grad_(name in NEW_PARAMETERS)
        epochs, patience, every = min(hcfg.epochs, s.max_epochs), hcfg.patience, hcfg.eval_every
        budget = hcfg.max_seconds
    else:
        model = HeteroTeacher(split.train, prep.data.n_items, graph, prep.content, s.dim, s.layers,
                              seed=s.seed, k=s.k)
        epochs, patience, every = s.max_epochs, hcfg.scratch_patience, hcfg.scratch_eval_every
        budget = None
    batches = next_item_batches(split.train, prep.data.n_items, s.k, s.horizon, 4096)
    tcfg = s.loop(hcfg.lr, patience, every, epochs=epochs, max_seconds=budget)
    # the starting point (= the teacher) is epoch 0 of the early stopping
    start = starting_point(model, split) if teacher is not None and hcfg.start_candidate else None
    if not any(p.requires_grad and p.numel() for p in model.parameters()):
        # no relation beyond user-item (no knowledge graph, no social file): nothing to train,
        # the model is the teacher itself
        log.warning("hetero: no item-entity or user-user edges in %s; the model is the bipartite teacher",
                    prep.data.name)
        hist = TrainHistory(best_epoch=0, best_valid_ndcg10=evaluate_valid(model, split)["ndcg@10"])
    else:
        hist = fit(model, split, batches, tcfg, "hetero")
    keep_start_unless_beaten(model, hist, start, "hetero (gates 0 = the teacher)")
    for p in model.parameters():
        p.requires_grad_(True)
    if social is not None and model.social_gate is not None:
        model.use_social(social)  # every edge, new users' included: known at signup
    hist.seconds = time.perf_counter() - t0  # everything: graph, starting validation, loop
    log.info("hetero: %s (%.1f s)", json.dumps(model.report_entry()), hist.seconds)
    return model, hist


