"""Recipes of the standard sequential baselines GRU4Rec and SASRec (issue 15, item 5; models:
:mod:`fpgarec.models.gru4rec`, :mod:`fpgarec.models.sasrec`).

Protocol, as the other baselines (docs/protocol.md):

* **Training data**: each user's train sequence in time order, cut into windows of
  ``max_len + 1`` items aligned on the latest item (so the latest item sits at the last
  position, as at scoring time); every item but a user's first is a next-item target exactly
  once per epoch. The second window's end is shifted by a random 0..max_len-1 items each epoch
  (its targets already covered by the first window carry no loss), so a target is not always
  predicted from the same short prefix.
* **Early stopping** on validation NDCG@10 (:func:`fpgarec.train.loop.fit`: input = train,
  truth = valid), patience ``patience`` validations, the best state kept, and a wall-clock
  budget per run (``max_seconds``).
* **Tuning**: a small grid (:data:`GRID`) on the standard split, the best validation NDCG@10
  wins; the new-user split trains the chosen point once (the grid is not rerun there).
* **Evaluation** by the project's functions: :func:`fpgarec.train.evaluate.evaluate_test`
  (input = the user's train + valid sequence, history masked, all and cold users) and
  :func:`fpgarec.train.evaluate.evaluate_new` (input = a new user's first 5 items).

:func:`sequential_baseline_entry` does all of it for one model and returns the report's figures.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from fpgarec.data.split import Split, UserSequences
from fpgarec.models.gru4rec import GRU4Rec, NextItemModel
from fpgarec.models.sasrec import SASRec
from fpgarec.train.evaluate import evaluate_new, evaluate_test
from fpgarec.train.loop import TrainConfig, fit

log = logging.getLogger(__name__)

MODELS = ("gru4rec", "sasrec")
#: per-run budget in seconds of ``--quick`` runs (the demo's 200-user subsample)
QUICK_MAX_SECONDS = 15.0


@dataclass(frozen=True)
class SeqBaselineSettings:
    """One training run of GRU4Rec or SASRec."""

    #: Adam learning rate (5e-3: within the 50 s budget 1e-3 and 2e-3 were still far from
    #: converged on ML-100k).
    lr: float = 5e-3
    #: item embedding width D (SASRec's model width).
    dim: int = 64
    #: GRU hidden width H (GRU4Rec only).
    hidden: int = 128
    #: GRU layers (GRU4Rec) or self-attention blocks (SASRec).
    layers: int = 1
    #: attention heads (SASRec only).
    heads: int = 1
    #: dropout rate (GRU4Rec: on the input embeddings; SASRec: embeddings, attention, FFN).
    dropout: float = 0.2
    #: items of history read, the latest last.
    max_len: int = 50
    #: windows (sequences of max_len positions) per batch.
    batch: int = 64
    #: windows per user and epoch: 0 = all of them (every target once per epoch); k > 0 = k
    #: of them drawn at random (each user weighs alike, as in the paper's one sequence per
    #: user; all targets are seen over the epochs).
    user_windows: int = 0
    #: maximum epochs.
    epochs: int = 200
    #: validations without a better validation NDCG@10 before stopping.
    patience: int = 3
    #: wall-clock budget of the run, seconds (the loop stops at its first validation past it).
    max_seconds: float | None = 55.0
    #: seed of initialisation and batch order.
    seed: int = 0


#: the tuning grid per model (the best validation NDCG@10 on the standard split wins); each
#: point runs at most ``max_seconds`` (55 s, plus at most one epoch and the test evaluation), so
#: a model costs at most about 2 x 55 s of grid plus one 55 s run on the new-user split: about 3
#: minutes on 2 cores.
GRID: dict[str, tuple[SeqBaselineSettings, ...]] = {
    "gru4rec": (
        SeqBaselineSettings(hidden=128, dropout=0.2, layers=1),
        SeqBaselineSettings(hidden=64, dropout=0.5, layers=1),
    ),
    "sasrec": (
        SeqBaselineSettings(dim=64, dropout=0.2, layers=2, heads=1),
        SeqBaselineSettings(dim=64, dropout=0.5, layers=2, heads=1),
    ),
}


def build(name: str, n_items: int, st: SeqBaselineSettings) -> NextItemModel:
    """An untrained ``name`` ("gru4rec" or "sasrec") with settings ``st``."""
    if name == "gru4rec":
        return GRU4Rec(n_items, st.dim, st.hidden, st.layers, st.dropout, st.max_len, st.seed)
    if name == "sasrec":
        return SASRec(n_items, st.dim, st.layers, st.heads, st.dropout, st.max_len, st.seed)
    raise ValueError(f"unknown sequential baseline {name!r}; known: {', '.join(MODELS)}")


def window_ends(n: int, max_len: int, shift: int) -> list[int]:
    """Ends (exclusive) of the training windows of a sequence of ``n`` items: n, then
    n - shift - max_len·k (k = 0, 1, ...; 1 <= shift <= max_len) while a window still has a
    target (end >= 2). The window ending at n - shift overlaps the first one by
    max_len - shift targets (:func:`windows` masks them)."""
    ends = [n] if n >= 2 else []
    e = n - shift
    while e >= 2:
        ends.append(e)
        e -= max_len
    return ends


def windows(train: UserSequences, max_len: int, rng: np.random.Generator,
            per_user: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's (inputs, targets) windows as tokens (item + 1, 0 = padding / no target).

    Window with end e: inputs = s[e-1-L .. e-2], targets = s[e-L .. e-1] (out-of-range positions
    are padding, on the left only); a target whose input is padding (a user's first item) or
    that an earlier window already covers gets 0. ``per_user`` > 0: at most that many of a
    user's windows, drawn at random. Shapes: (W, L), (W, L) int64.
    """
    ins, outs = [], []
    offs = np.arange(-max_len, 1)  # the window's L + 1 positions relative to its end - 1
    for u in range(train.n_users):
        s = train.of(u) + 1
        n = len(s)
        ends = window_ends(n, max_len, int(rng.integers(1, max_len + 1)))
        keep = list(range(len(ends)))
        if 0 < per_user < len(ends):
            keep = rng.choice(len(ends), per_user, replace=False).tolist()
        for j in keep:
            e = ends[j]
            idx = e - 1 + offs
            tok = np.where(idx >= 0, s[np.clip(idx, 0, None)], 0)
            target = tok[1:].copy()
            target[tok[:-1] == 0] = 0
            if j == 1 and 0 in keep:  # the first window (end n) covers targets n - L .. n - 1
                target[idx[1:] >= n - max_len] = 0
            ins.append(tok[:-1])
            outs.append(target)
    return np.stack(ins), np.stack(outs)


def window_batches(train: UserSequences, max_len: int, batch: int, per_user: int = 0):
    """A batch source for :func:`fpgarec.train.loop.fit`: shuffled (inputs, targets) windows."""

    def source(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = windows(train, max_len, rng, per_user)
        perm = rng.permutation(len(x))
        for lo in range(0, len(perm), batch):
            idx = perm[lo : lo + batch]
            yield torch.from_numpy(x[idx]), torch.from_numpy(y[idx])

    return source


def train_point(name: str, split: Split, st: SeqBaselineSettings, progress: bool = False):
    """Train ``name`` on ``split`` at one setting; (model, TrainHistory) of its best epoch."""
    model = build(name, split.n_items, st)
    cfg = TrainConfig(epochs=st.epochs, lr=st.lr, patience=st.patience, eval_every=1, seed=st.seed,
                      max_seconds=st.max_seconds, progress=progress)
    hist = fit(model, split, window_batches(split.train, st.max_len, st.batch, st.user_windows), cfg, name)
    hist.chosen = dataclasses.asdict(st)
    return model, hist


def train_tuned(name: str, split: Split, grid: tuple[SeqBaselineSettings, ...] | None = None,
                seed: int = 0, progress: bool = False):
    """Train every grid point, keep the best by validation NDCG@10.

    Returns (model, TrainHistory, chosen settings); ``hist.seconds`` is the whole grid's time and
    ``hist.chosen`` holds the chosen settings plus every point's validation NDCG@10.
    """
    grid = tuple(dataclasses.replace(p, seed=seed) for p in (grid or GRID[name]))
    t0 = time.perf_counter()
    best, tried = None, []
    for st in grid:
        model, hist = train_point(name, split, st, progress)
        tried.append({"settings": dataclasses.asdict(st), "valid_ndcg@10": round(hist.best_valid_ndcg10, 4),
                      "best_epoch": hist.best_epoch, "seconds": round(hist.seconds, 1)})
        log.info("%s %s: valid NDCG@10 %.4f (%.1f s)", name, st, hist.best_valid_ndcg10, hist.seconds)
        if best is None or hist.best_valid_ndcg10 > best[1].best_valid_ndcg10:
            best = (model, hist, st)
    model, hist, st = best
    hist.seconds = time.perf_counter() - t0
    hist.chosen = {"settings": dataclasses.asdict(st), "grid": tried}
    return model, hist, st


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items() if k in ("ndcg@10", "recall@10")}


def sequential_baseline_entry(name: str, standard: Split, new: Split, seed: int = 0,
                              grid: tuple[SeqBaselineSettings, ...] | None = None,
                              progress: bool = False) -> dict:
    """Tune and train ``name`` on the standard split, train its chosen setting on the new-user
    split, evaluate both with the project's functions.

    Returns {"metrics": {"all": {"ndcg@10", "recall@10"}, "cold": ..., "new": ...},
    "seconds": {"standard", "new", "total"}, "chosen": settings and grid, "curve": the chosen
    run's TrainHistory dict on the standard split}.
    """
    t0 = time.perf_counter()
    model, hist, st = train_tuned(name, standard, grid, seed, progress)
    test = evaluate_test(model, standard)
    t1 = time.perf_counter()
    new_model, new_hist = train_point(name, new, st, progress)
    new_metrics = evaluate_new(new_model, new)
    t2 = time.perf_counter()
    return {
        "metrics": {"all": _rounded(test["all"]), "cold": _rounded(test["cold"]), "new": _rounded(new_metrics)},
        "seconds": {"standard": round(t1 - t0, 1), "new": round(t2 - t1, 1), "total": round(t2 - t0, 1)},
        "chosen": hist.chosen,
        "curve": hist.as_dict() | {"new_split_best_epoch": new_hist.best_epoch},
    }

