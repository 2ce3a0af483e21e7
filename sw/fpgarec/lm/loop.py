"""Training and evaluating one mode in this process.

Schedule (the same for every mode: fixed epochs, no early stopping, one seed for the head
initialisation, the examples, the chunks and the batch order):

1. *head warm-up* (linear probing first, as in LP-FT): ``head_epochs`` epochs on the
   pre-trained vectors ``h = prep.text``, batches of ``head_batch`` examples, head only;
2. *fine-tuning*: ``epochs`` passes over the items in chunks S of ``item_batch`` texts
   (length-bucketed to limit padding), each paired with an equal share of the shuffled
   examples (every example once per epoch). A step encodes S with gradients; the other items'
   ``h`` come from a memory bank (initialised to ``prep.text``, row ``i`` refreshed whenever
   item ``i`` is encoded), so the softmax, contexts and targets use all items while only the
   rows of S are back-propagated into the encoder; head and encoder take one Adam step each.
   (Examples are not grouped by S: a stream of steps whose targets all lie in S biases the
   head.) With a frozen encoder the bank is exact and the step is a head step;
3. *re-encode and refit*: every item is encoded once with the final encoder (the bank holds
   vectors of older encoder states) and the head trains ``refit_epochs`` more epochs on them
   (without it, a head fitted to the stale bank scores the fresh vectors worse).
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from fpgarec.data.split import UserSequences
from fpgarec.lm.config import MODES, FinetuneConfig, FinetuneConfigError
from fpgarec.lm.data import FinetuneData, NegativeSampler, examples, length_bucketed_chunks
from fpgarec.lm.recommender import TextTowerRecommender
from fpgarec.lm.tower import TextTower, build_tower, trainable_count
from fpgarec.train.evaluate import evaluate_new, evaluate_test

log = logging.getLogger(__name__)


def peak_mb() -> float:
    """Peak resident set size of this process image so far, MB: ``VmHWM`` of
    ``/proc/self/status`` (Linux), else ``ru_maxrss``.

    Not ``ru_maxrss`` first: on Linux it survives fork + exec, so a child's value is at least
    its parent's RSS at the fork (measured: 217 MB in a fresh ``python -c`` started by a
    217 MB parent, whose own high-water mark was 11 MB). ``VmHWM`` belongs to the address space
    that exec creates.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class ModeRun:
    """One trained model of one mode and what its training measured."""

    model: TextTowerRecommender
    tower: TextTower | None
    train_seconds: float
    encode_seconds: float
    trainable_params: int
    encoder_trainable_params: int
    losses: list[float] = field(default_factory=list)
    #: the memory bank at the end of training (I, 384): each item's h when last encoded.
    bank: torch.Tensor | None = None
    #: this process's peak RSS (MB) once the model was built, before training.
    loaded_peak_mb: float = 0.0
    #: seconds of each phase of train_seconds (prefix_cache, head_warmup, fine_tune, re_encode,
    #: refit).
    phase_seconds: dict[str, float] = field(default_factory=dict)


def _head_epoch(
    model: TextTowerRecommender,
    opt: torch.optim.Optimizer,
    h: torch.Tensor,
    train: UserSequences,
    cfg: FinetuneConfig,
    sampler: NegativeSampler,
    rng: np.random.Generator,
) -> float:
    """One epoch of head-only steps on fixed encoder vectors ``h`` (I, 384); the mean loss."""
    ctx, pos = examples(train, cfg, model.n_items, rng)
    perm = torch.from_numpy(rng.permutation(len(pos)))
    total = 0.0
    for s in range(0, len(perm), cfg.head_batch):
        idx = perm[s : s + cfg.head_batch]
        opt.zero_grad(set_to_none=True)
        loss = model.loss(h, ctx[idx], pos[idx], **sampler(rng))
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total / max(len(perm), 1)


def check_pretrained_vectors(tower: TextTower, data: FinetuneData, n: int = 8) -> None:
    """Raise unless ``data.text`` is this (untrained) encoder's vectors of these token ids, for
    the first ``n`` items: the memory bank and the frozen mode start from ``data.text``."""
    items = torch.arange(min(n, data.n_items))
    with torch.no_grad():
        h = TextTower(tower.bert, data.token_ids, data.lengths, start=0)(items)
    err = float((h - torch.from_numpy(data.text[: len(items)])).abs().max())
    if err > 1e-3:
        raise FinetuneConfigError(
            f"prep.text is not all-MiniLM-L6-v2's vectors of the item texts (max |diff| {err:.3g} "
            "on the first items): was it computed from other texts or with another max_length?"
        )


@dataclass
class _Training:
    """What the phases of one mode's training share."""

    model: TextTowerRecommender
    tower: TextTower | None
    head_opt: torch.optim.Optimizer
    enc_opt: torch.optim.Optimizer | None
    sampler: NegativeSampler
    rng: np.random.Generator
    #: h of every item (I, 384), refreshed as items are encoded
    bank: torch.Tensor
    encoder_params: int
    loaded_peak_mb: float


def _start(data: FinetuneData, train: UserSequences, cfg: FinetuneConfig, mode: str) -> _Training:
    """The head, the mode's encoder, their optimisers, the seeded generator and the memory bank."""
    if mode not in MODES:
        raise FinetuneConfigError(f"mode must be one of {MODES}, got {mode!r}")
    torch.manual_seed(cfg.seed)
    n_items = data.n_items
    model = TextTowerRecommender(n_items, cfg.dim, cfg.k, cfg.id_embedding, seed=cfg.seed)
    tower = build_tower(data, cfg, mode)
    if tower is not None:
        tower.eval()
        check_pretrained_vectors(tower, data)
    loaded_peak = peak_mb()
    enc_params = [p for p in tower.parameters() if p.requires_grad] if tower is not None else []
    head_opt = torch.optim.Adam(model.parameters(), lr=cfg.head_lr, fused=True)
    enc_opt = (
        torch.optim.Adam(enc_params, lr=cfg.lora_lr if mode == "lora" else cfg.full_lr, fused=True)
        if enc_params
        else None
    )
    rng = np.random.default_rng(cfg.seed)
    sampler = NegativeSampler(train, n_items, cfg.n_negatives, cfg.negative_power)
    bank = torch.from_numpy(data.text.copy())
    return _Training(model, tower, head_opt, enc_opt, sampler, rng, bank,
                     sum(p.numel() for p in enc_params), loaded_peak)


def _fine_tune_epoch(
    t: _Training, data: FinetuneData, train: UserSequences, cfg: FinetuneConfig, desc: str
) -> float:
    """One pass over the items in length-bucketed chunks, each with its share of the examples:
    the chunk encoded with gradients into the memory bank, one step of head and encoder; the
    mean loss."""
    ctx, pos = examples(train, cfg, data.n_items, t.rng)
    chunks = length_bucketed_chunks(data.lengths, cfg.item_batch, t.rng)
    batches = np.array_split(t.rng.permutation(len(pos)), len(chunks))
    total, n = 0.0, 0
    for chunk, batch in tqdm(
        list(zip(chunks, batches, strict=True)),
        desc=desc,
        unit="step",
        leave=False,
        disable=not cfg.progress,
    ):
        if len(batch) == 0:  # fewer examples than chunks (a tiny data set)
            continue
        items, idx = torch.from_numpy(chunk), torch.from_numpy(batch)
        t.head_opt.zero_grad(set_to_none=True)
        if t.enc_opt is not None:
            t.enc_opt.zero_grad(set_to_none=True)
        h_s = t.tower(items) if t.tower is not None else None
        h = t.bank.index_put((items,), h_s) if h_s is not None else t.bank
        loss = t.model.loss(h, ctx[idx], pos[idx], **t.sampler(t.rng))
        loss.backward()
        t.head_opt.step()
        if t.enc_opt is not None:
            t.enc_opt.step()
        if h_s is not None:
            t.bank[items] = h_s.detach()
        total += float(loss.detach()) * len(idx)
        n += len(idx)
    return total / max(n, 1)


def _head_epochs(t: _Training, h: torch.Tensor, train, cfg: FinetuneConfig, epochs: int,
                 desc: str) -> list[float]:
    """``epochs`` head-only epochs on fixed vectors ``h``; their mean losses."""
    return [
        _head_epoch(t.model, t.head_opt, h, train, cfg, t.sampler, t.rng)
        for _ in tqdm(range(epochs), desc=desc, unit="ep", leave=False, disable=not cfg.progress)
    ]


def train_mode(data: FinetuneData, train: UserSequences, cfg: FinetuneConfig, mode: str) -> ModeRun:
    """Train one model of ``mode`` on ``train`` with the schedule of the module docstring."""
    t = _start(data, train, cfg, mode)
    model, tower, show = t.model, t.tower, cfg.progress
    losses: list[float] = []
    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    if tower is not None and tower.start > 0:
        tower.build_prefix_cache(cfg.encode_batch, progress=show)
    phases["prefix_cache"] = time.perf_counter() - t0
    losses += _head_epochs(t, t.bank, train, cfg, cfg.head_epochs, f"{mode}: head warm-up")
    phases["head_warmup"] = time.perf_counter() - t0 - sum(phases.values())
    if tower is not None:
        tower.train()  # only LoRA dropout reacts: the encoder's own dropout is set to 0
    for epoch in range(cfg.epochs):
        losses.append(_fine_tune_epoch(t, data, train, cfg, f"{mode}: fine-tune epoch {epoch + 1}"))
    phases["fine_tune"] = time.perf_counter() - t0 - sum(phases.values())
    if tower is not None:
        tower.eval()
    t1 = time.perf_counter()
    model.table.copy_(
        tower.encode_all(cfg.encode_batch, progress=show) if tower is not None else t.bank
    )
    encode_seconds = time.perf_counter() - t1
    phases["re_encode"] = encode_seconds
    losses += _head_epochs(t, model.table, train, cfg, cfg.refit_epochs, f"{mode}: head refit")
    train_seconds = time.perf_counter() - t0
    phases["refit"] = train_seconds - sum(phases.values())
    model.eval()
    log.info(
        "%s: trained in %.1f s (of which %.1f s re-encoding the items; loss per epoch %s)",
        mode,
        train_seconds,
        encode_seconds,
        [round(x, 4) for x in losses],
    )
    return ModeRun(
        model,
        tower,
        train_seconds,
        encode_seconds,
        trainable_count(model) + t.encoder_params,
        t.encoder_params,
        losses,
        t.bank,
        t.loaded_peak_mb,
        phases,
    )


def run_mode(data: FinetuneData, cfg: FinetuneConfig, mode: str) -> dict:
    """Train and evaluate one mode in this process; the result row of :func:`compare_finetuning`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        setup_peak = peak_mb()
        standard_run = None
        if cfg.train_on == "both":
            standard_run = train_mode(data, data.standard.train, cfg, mode)
        run = train_mode(data, data.new.train, cfg, mode)
        res = evaluate_test((standard_run or run).model, data.standard)
        res["new"] = evaluate_new(run.model, data.new)
        peak = peak_mb()
        runs = [r for r in (standard_run, run) if r is not None]
        return res | {
            "ndcg@10": res["all"]["ndcg@10"],
            "train_seconds": sum(r.train_seconds for r in runs),
            "encode_seconds": sum(r.encode_seconds for r in runs),
            "phase_seconds": {
                k: sum(r.phase_seconds.get(k, 0.0) for r in runs) for k in run.phase_seconds
            },
            "peak_mb": peak,
            "setup_peak_mb": setup_peak,
            "loaded_peak_mb": runs[0].loaded_peak_mb,
            "peak_over_loaded_mb": peak - runs[0].loaded_peak_mb,
            "trainable_params": run.trainable_params,
            "encoder_trainable_params": run.encoder_trainable_params,
            "head_params": run.trainable_params - run.encoder_trainable_params,
            "loss": run.losses,
            "threads": cfg.threads,
        }
    finally:
        torch.set_num_threads(threads)
