"""The projection heads that align every modality with the text, their training (symmetric
InfoNCE), saving and loading, fusion into one vector per item, and retrieval figures.

The maths: :mod:`fpgarec.encoders.multimodal`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fpgarec.encoders.multimodal_config import HEAD_OF, RECALL_KS, MultimodalConfig
from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)


def _torch():
    import torch

    return torch


def info_nce(za, zb, logit_scale):
    """Symmetric InfoNCE of matched rows: 1/2 [CE(e^s za zbᵀ, diag) + CE(e^s zb zaᵀ, diag)].

    Shapes: za, zb (B, d) (L2-normalised), logit_scale = e^s a scalar tensor -> scalar loss.
    """
    import torch.nn.functional as F

    torch = _torch()
    logits = logit_scale * za @ zb.T
    target = torch.arange(len(za), device=za.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _build_model(in_dims: dict[str, int], stats: dict[str, tuple[np.ndarray, np.ndarray]], cfg: MultimodalConfig):
    torch = _torch()
    from torch import nn

    class ProjectionHead(nn.Module):
        """x (B, d_in) -> normalize(MLP((x - μ) / σ)) (B, d)."""

        def __init__(self, d_in: int, mean: np.ndarray, std: np.ndarray):
            super().__init__()
            self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
            self.register_buffer("std", torch.from_numpy(std.astype(np.float32)))
            self.net = (nn.Sequential(nn.Linear(d_in, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))
                        if cfg.hidden else nn.Linear(d_in, cfg.dim))

        def forward(self, x):
            return nn.functional.normalize(self.net((x - self.mean) / self.std), dim=-1)

    class AlignmentModel(nn.Module):
        """One projection head per head name, and the learnable InfoNCE scale e^s."""

        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({h: ProjectionHead(in_dims[h], *stats[h]) for h in in_dims})
            self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.temperature)))

        def scale(self):
            return self.log_scale.exp().clamp(max=cfg.max_logit_scale)

        def embed(self, modality: str, x):
            return self.heads[HEAD_OF[modality]](x)

    torch.manual_seed(cfg.seed)
    return AlignmentModel()


def save_heads(model, cfg: MultimodalConfig, path: Path) -> Path:
    """Write trained heads as ``<path>.safetensors`` (every head's weights and input
    normalisation, the InfoNCE scale) and ``<path>.json`` (config, input width per head). No
    pickles. Returns the .safetensors path."""

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = path.with_suffix(".safetensors")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights))
    in_dims = {h: int(head.mean.shape[0]) for h, head in model.heads.items()}
    path.with_suffix(".json").write_text(json.dumps({"config": asdict(cfg), "in_dims": in_dims,
                                                     "head_of": HEAD_OF}, indent=1))
    return weights


def load_heads(path: Path):
    """(model, config) saved by :func:`save_heads` (``path`` with or without a suffix)."""

    from safetensors.torch import load_file

    path = Path(path)
    weights, meta_file = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for f in (weights, meta_file):
        if not f.is_file():
            raise FpgarecError(f"{f}: file not found (saved heads are <name>.safetensors + <name>.json)")
    try:
        meta = json.loads(meta_file.read_text())
        cfg = MultimodalConfig(**meta["config"])
        in_dims = {h: int(d) for h, d in meta["in_dims"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise FpgarecError(f"{meta_file}: not a multimodal heads file ({exc})") from exc
    stats = {h: (np.zeros(d, np.float32), np.ones(d, np.float32)) for h, d in in_dims.items()}
    model = _build_model(in_dims, stats, cfg)
    try:
        model.load_state_dict(load_file(str(weights)))
    except RuntimeError as exc:
        raise FpgarecError(f"{weights}: weights do not fit {meta_file.name} ({exc})") from exc
    return model.eval(), cfg


def item_vector(model, text: np.ndarray, media: dict[str, np.ndarray]) -> np.ndarray:
    """One new item's aligned vector from its MiniLM vector (384,) and the encoder features of
    the media it has (modality -> (d_m,) vector, e.g. ``ImageEncoder.encode``'s row): the same
    :func:`fuse` as for the catalogue. Shape (dim,) float32."""
    features = {m: (np.zeros(1, np.int64), np.asarray(x, np.float32)[None, :]) for m, x in media.items()}
    unknown = set(features) - set(HEAD_OF)
    if unknown:
        raise FpgarecError(f"unknown modality {sorted(unknown)}: expected some of {sorted(set(HEAD_OF) - {'text'})}")
    return fuse(model, np.asarray(text, np.float32)[None, :], features)[0][0]


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.maximum(x.std(0), 1e-3)


def _pairs(features: dict, items: np.ndarray, n_items: int) -> dict:
    """{m: (item indices, x)} restricted to ``items``, for modalities with at least 2 of them."""
    torch = _torch()
    member = np.zeros(n_items, bool)
    member[items] = True
    out = {}
    for m, (its, x) in features.items():
        keep = member[its]
        if keep.sum() >= 2:
            out[m] = (torch.from_numpy(its[keep]), torch.from_numpy(x[keep]))
    return out


def _initial_model(text: np.ndarray, features: dict, train_items: np.ndarray, cfg: MultimodalConfig):
    """The seeded, untrained heads, their inputs normalised by the statistics of ``train_items``."""
    member = np.zeros(len(text), bool)
    member[train_items] = True
    in_dims = {"text": text.shape[1]}
    stats = {"text": _stats(text[train_items])}
    for head in {HEAD_OF[m] for m in features}:
        xs = np.concatenate([x[member[its]] for m, (its, x) in features.items() if HEAD_OF[m] == head])
        in_dims[head] = xs.shape[1]
        stats[head] = _stats(xs) if len(xs) else (np.zeros(xs.shape[1]), np.ones(xs.shape[1]))
    return _build_model(in_dims, stats, cfg)


def _batch_loss(model, tt, batches):
    """Mean InfoNCE over the (modality, (items, x)) batches with at least 2 pairs; None if none."""
    torch = _torch()
    losses = [info_nce(model.embed("text", tt[its]), model.embed(m, x), model.scale())
              for m, (its, x) in batches if len(its) >= 2]
    return torch.stack(losses).mean() if losses else None


def _train_epoch(model, opt, tt, pairs: dict, gen, cfg: MultimodalConfig) -> float:
    """One epoch: every modality's pairs shuffled, one batch of each per step (a modality with
    fewer batches starts over); the mean step loss."""
    torch = _torch()
    model.train()
    perms = {m: torch.randperm(len(p[0]), generator=gen) for m, p in pairs.items()}
    n_batches = {m: max(1, math.ceil(len(p[0]) / cfg.batch_size)) for m, p in pairs.items()}
    total = 0.0
    for step in range(max(n_batches.values())):
        chunk = []
        for m, (its, x) in pairs.items():
            idx = perms[m][(step % n_batches[m]) * cfg.batch_size:][:cfg.batch_size]
            chunk.append((m, (its[idx], x[idx])))
        loss = _batch_loss(model, tt, chunk)
        if loss is None:
            continue
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.detach())
    model.eval()
    return total / max(n_batches.values())


def train_heads(text: np.ndarray, features: dict, train_items: np.ndarray, cfg: MultimodalConfig,
                progress: bool = True) -> tuple[object, object, dict]:
    """(untrained model, trained model, info): the heads and the InfoNCE scale trained on the
    (text, m) pairs of ``train_items``. Both models start from the same seeded weights.

    A seeded ``val_fraction`` of ``train_items`` is kept out of the gradient steps: after each
    epoch the mean InfoNCE loss over its modalities (each modality's pairs in one batch) is
    measured, training stops after ``patience`` epochs without improvement (at most
    ``epochs``), and the best epoch's weights are restored. info = {"seconds", "epochs",
    "best_epoch", "best_val_loss", "early_stopping_items"}.

    Shapes: text (I, 384); features[m] = (items (n,), x (n, d_m)); train_items (n_train,).
    """
    import copy

    from tqdm.auto import tqdm

    torch = _torch()
    n_items = len(text)
    train_items = np.sort(np.asarray(train_items, np.int64))
    n_val = int(round(cfg.val_fraction * len(train_items)))
    perm = np.random.default_rng(cfg.seed + 1).permutation(train_items)
    val_items, fit_items = (np.sort(perm[:n_val]), np.sort(perm[n_val:])) if n_val >= 8 else (perm[:0], train_items)
    pairs, val_pairs = _pairs(features, fit_items, n_items), _pairs(features, val_items, n_items)
    model = _initial_model(text, features, train_items, cfg)
    before = copy.deepcopy(model).eval()
    info = {"seconds": 0.0, "epochs": 0, "best_epoch": 0, "best_val_loss": None,
            "early_stopping_items": int(len(val_items))}
    if not pairs:
        log.warning("fewer than 2 training items per modality: the heads stay untrained")
        return before, model.eval(), info
    t0 = time.perf_counter()
    tt = torch.from_numpy(text)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_state, best, stale = copy.deepcopy(model.state_dict()), float("inf"), 0
    bar = tqdm(range(1, cfg.epochs + 1), desc="aligning modalities", unit="epoch", disable=not progress)
    for epoch in bar:
        mean_loss = _train_epoch(model, opt, tt, pairs, gen, cfg)
        info["epochs"] = epoch
        if val_pairs:
            with torch.no_grad():
                val = float(_batch_loss(model, tt, list(val_pairs.items())))
            if val < best - 1e-4:
                best, stale, info["best_epoch"] = val, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            bar.set_postfix(loss=f"{mean_loss:.3f}", val=f"{val:.3f}",
                            tau=f"{1 / float(model.scale().detach()):.3f}")
            if stale >= cfg.patience:
                break
        else:
            info["best_epoch"] = epoch
            best_state = model.state_dict()
    model.load_state_dict(best_state)
    info["best_val_loss"] = None if best == float("inf") else round(best, 4)
    info["seconds"] = round(time.perf_counter() - t0, 2)
    log.info("alignment heads: %d epochs, best %d (early-stopping loss %s on %d items), %.1f s",
             info["epochs"], info["best_epoch"], info["best_val_loss"], len(val_items), info["seconds"])
    return before, model.eval(), info


def _embed(model, modality: str, x: np.ndarray) -> np.ndarray:
    torch = _torch()
    with torch.no_grad():
        return model.embed(modality, torch.from_numpy(np.asarray(x, np.float32))).numpy()


def recall_at_k(queries: np.ndarray, keys: np.ndarray, ks=RECALL_KS) -> dict[str, float]:
    """Recall@k of matched rows: query i's answer is key i.

    rank_i = #{j ≠ i : <q_i, k_j> >= <q_i, k_i>} (ties count against the query), and
    R@k = (1/n) Σ_i [rank_i < k]. Shapes: queries (n, d), keys (n, d).
    """
    sims = queries @ keys.T
    own = np.diag(sims)
    rank = (sims >= own[:, None]).sum(1) - 1
    return {f"R@{k}": float((rank < k).mean()) for k in ks}


def retrieval(model, text: np.ndarray, features: dict, items: np.ndarray) -> dict:
    """Cross-modal Recall@1/@10 text->m and m->text among ``items`` having m (for each m with
    n >= 2 such items), with the pool size n: {"text->image": {"R@1", "R@10", "n"}, ...}."""
    held = np.zeros(len(text), bool)
    held[items] = True
    out = {}
    for m, (its, x) in features.items():
        keep = held[its]
        n = int(keep.sum())
        if n < 2:
            continue
        zt = _embed(model, "text", text[its[keep]])
        zm = _embed(model, m, x[keep])
        out[f"text->{m}"] = recall_at_k(zt, zm) | {"n": n}
        out[f"{m}->text"] = recall_at_k(zm, zt) | {"n": n}
    return out


def chance(figures: dict) -> dict:
    """The chance level of each figure: R@k = min(k, n) / n."""
    return {k: {f"R@{r}": min(r, v["n"]) / v["n"] for r in RECALL_KS} | {"n": v["n"]} for k, v in figures.items()}


def fuse(model, text: np.ndarray, features: dict) -> tuple[np.ndarray, np.ndarray]:
    """(v (I, d), modality count per item (I,)): v_i = normalize(mean of item i's aligned
    vectors); text is always one of them, so every item gets a vector."""
    total = _embed(model, "text", text).astype(np.float64)
    count = np.ones(len(text), np.int64)
    for m, (items, x) in features.items():
        np.add.at(total, items, _embed(model, m, x))
        np.add.at(count, items, 1)
    v = total / count[:, None]
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v.astype(np.float32), count
