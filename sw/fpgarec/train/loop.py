"""One training loop for every trainable model, with early stopping on validation NDCG@10.

A trainable model is an ``nn.Module`` whose ``forward(batch)`` returns the scalar loss of a
batch (so DDP can wrap it) and which is a :class:`~fpgarec.train.evaluate.Scorer`. A batch
source yields the global batches of one epoch; each rank keeps its share of every batch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from fpgarec.data.split import Split
from fpgarec.train.distributed import is_main_process, rank_and_world
from fpgarec.train.evaluate import evaluate_valid

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]
BatchSource = Callable[[np.random.Generator], Iterator[Batch]]


@dataclass
class TrainConfig:
    """Settings of one training run."""

    #: maximum number of epochs.
    epochs: int = 200
    #: learning rate of Adam.
    lr: float = 1e-3
    #: L2 weight decay of Adam (models add their own regularisers in the loss).
    weight_decay: float = 0.0
    #: validate every this many epochs.
    eval_every: int = 1
    #: stop after this many validations without a better validation NDCG@10.
    patience: int = 10
    #: seed of the batch order (and of nothing else: models seed their own initialisation).
    seed: int = 0
    #: wall-clock budget in seconds (None: no budget); the best state so far is kept.
    max_seconds: float | None = None
    #: show a progress bar.
    progress: bool = True


@dataclass
class TrainHistory:
    """What a run did: per-validation metrics, the best epoch, its duration."""

    epochs: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    valid_ndcg10: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_ndcg10: float = -1.0
    seconds: float = 0.0
    #: hyper-parameters picked by a tuning grid, where one was run.
    chosen: dict | None = None

    def as_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "loss": self.losses,
            "valid_ndcg@10": self.valid_ndcg10,
            "best_epoch": self.best_epoch,
            "best_valid_ndcg@10": self.best_valid_ndcg10,
            "train_seconds": self.seconds,
            "chosen": self.chosen,
        }


def shard(batch: Batch) -> Batch:
    """This rank's rows of a global batch."""
    rank, world = rank_and_world()
    if world == 1:
        return batch
    return tuple(t[rank::world] for t in batch)


def fit(model: nn.Module, split: Split, batches: BatchSource, cfg: TrainConfig, name: str) -> TrainHistory:
    """Train with Adam, validate, keep and restore the best state.

    Under torch.distributed the model is wrapped in DDP (gloo on CPU) and each rank trains on
    its shard of every batch.
    """
    rank, world = rank_and_world()
    wrapped: nn.Module = model
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    hist = TrainHistory()
    best_state = copy.deepcopy(model.state_dict())
    bad = 0
    t0 = time.perf_counter()
    bar = tqdm(
        total=cfg.epochs, desc=f"train {name}", unit="ep", disable=not (cfg.progress and is_main_process()),
        leave=False,
    )
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total, n = 0.0, 0
        for batch in batches(rng):
            opt.zero_grad(set_to_none=True)
            loss = wrapped(shard(batch))
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n += 1
        bar.update(1)
        if epoch % cfg.eval_every and epoch != cfg.epochs:
            continue
        model.eval()
        with torch.no_grad():
            ndcg = evaluate_valid(model, split)["ndcg@10"]
        hist.epochs.append(epoch)
        hist.losses.append(total / max(n, 1))
        hist.valid_ndcg10.append(ndcg)
        bar.set_postfix(loss=f"{total / max(n, 1):.4f}", valid_ndcg10=f"{ndcg:.4f}")
        if ndcg > hist.best_valid_ndcg10:
            hist.best_valid_ndcg10, hist.best_epoch = ndcg, epoch
            best_state = copy.deepcopy(model.state_dict())
            bad = 0
        else:
            bad += 1
        elapsed = time.perf_counter() - t0
        if bad >= cfg.patience or (cfg.max_seconds is not None and elapsed > cfg.max_seconds):
            break
        if math.isnan(total):
            log.warning("%s: loss is NaN at epoch %d; stopping", name, epoch)
            break
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - t0
    log.info(
        "%s: best valid NDCG@10 %.4f at epoch %d (%d epochs, %.1f s)",
        name, hist.best_valid_ndcg10, hist.best_epoch, hist.epochs[-1] if hist.epochs else 0, hist.seconds,
    )
    return hist
