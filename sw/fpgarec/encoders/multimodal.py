"""The multimodal item encoder: text, image, audio and video aligned into ONE item space.

Per item i, each available modality m has a frozen encoder's feature x_{i,m}:

    text   t_i ∈ R^384    all-MiniLM-L6-v2 (fpgarec.encoders.text), always present
    image  x ∈ R^1280     EfficientNet-Lite0 (fpgarec.encoders.image)
    video  x ∈ R^1280     the same network, mean over up to 8 uniformly sampled GIF frames
    audio  x ∈ R^512      aiSFX (fpgarec.encoders.audio)

and a projection head maps it to the shared d-dimensional unit sphere (d = ``dim``, 256):

    z_{i,m} = normalize(W_2 GELU(W_1 (x_{i,m} - μ_h) / σ_h + b_1) + b_2),   h = head(m)

with one head for text, one for image AND video (same feature space), one for audio; μ_h, σ_h
are per-dimension statistics of the training items. The heads are trained with the symmetric
InfoNCE loss (CLIP), anchoring every media modality on the text (ImageBind-style: image and
audio are aligned to each other through the text). For a batch of B items having modality m,
with S = e^s Z_text Z_mᵀ (B x B) and a learnable temperature e^{-s} (s initialised to
log(1/0.07), e^s clamped to <= 100):

    L_m = 1/2 [ CE(S, diag) + CE(Sᵀ, diag) ],   CE(S, diag) = -(1/B) Σ_b log softmax(S_b)_b
    L   = mean over the modalities in the step of L_m

An item's vector is the mean of the aligned vectors of the modalities it has, renormalised:

    v_i = normalize( (1/|M_i|) Σ_{m ∈ M_i} z_{i,m} ),   text ∈ M_i always,   v ∈ R^{I x d}

``v`` replaces the MiniLM table ``prep.text`` (I, 384) everywhere downstream: the teacher's
text MLP takes any width, the student's text table is initialised from the teacher's
``projected_text()`` and quantized, and the FPGA looks that table up; nothing else changes.

Alignment is measured by cross-modal retrieval on HELD-OUT items (a seeded ``holdout`` share
of the items that have media, never seen in training): Recall@k text->m and m->text, among
the held-out items having m; "before" = the same heads untrained (same seed, same
dimensions), "after" = trained. The trained heads (trained on the other items only) also
produce every item's vector.

Encoder outputs are cached by file content (fpgarec.encoders.media); the heads are retrained
on every call (seconds). Media naming: fpgarec.encoders.media.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fpgarec.encoders import media as media_io
from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

#: modality -> projection head (video frames go through the image network, so the image head)
HEAD_OF = {"text": "text", "image": "image", "video": "image", "audio": "audio"}
RECALL_KS = (1, 10)


@dataclass
class MultimodalConfig:
    """Settings of the multimodal encoder (the demo's ``--media`` run uses the defaults)."""

    #: width d of the aligned item space (the vectors replacing the 384-d MiniLM table)
    dim: int = 256
    #: hidden width of every projection head (0: one linear layer)
    hidden: int = 512
    #: maximum training epochs of the heads (each epoch sees every training pair once)
    epochs: int = 100
    #: share of the training items set aside to stop early on their InfoNCE loss (and to
    #: restore the best epoch); none when that is fewer than 8 items
    val_fraction: float = 0.15
    #: epochs without a better early-stopping loss before training stops
    patience: int = 4
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: initial InfoNCE temperature τ (learned; e^s = 1/τ is clamped to max_logit_scale)
    temperature: float = 0.07
    max_logit_scale: float = 100.0
    #: share of the items with media held out of training to measure retrieval
    holdout: float = 0.2
    seed: int = 0
    #: images per EfficientNet forward pass
    image_batch: int = 16
    video_frames: int = 8
    max_audio_seconds: float = 10.0
    min_audio_seconds: float = 0.1
    min_image_side: int = 16
    max_image_pixels: int = 40_000_000
    max_file_bytes: int = 64 << 20

    def limits(self) -> media_io.MediaLimits:
        return media_io.MediaLimits(
            max_file_bytes=self.max_file_bytes, min_image_side=self.min_image_side,
            max_image_pixels=self.max_image_pixels, min_audio_seconds=self.min_audio_seconds,
            max_audio_seconds=self.max_audio_seconds, video_frames=self.video_frames,
        )


# ----------------------------------------------------------------------------- encoding media

def _encoders(cfg: MultimodalConfig) -> dict:
    from fpgarec.encoders.audio import AudioEncoder
    from fpgarec.encoders.image import ImageEncoder

    image = ImageEncoder(cfg.image_batch)
    return {"image": image, "video": image, "audio": AudioEncoder()}


def _encoder_id(modality: str, encoder, cfg: MultimodalConfig) -> str:
    if modality == "video":
        return f"{encoder.encoder_id}/video-mean-of-{cfg.video_frames}-frames"
    if modality == "audio":
        return f"{encoder.encoder_id}/max{cfg.max_audio_seconds:g}s"
    return encoder.encoder_id


def _encode_files(files: list, modality: str, enc, store: media_io.FeatureCache, enc_id: str,
                  cfg: MultimodalConfig, skipped: list[dict], progress: bool) -> tuple[list, list, int, float]:
    """(items, vectors, newly encoded count, seconds) of one modality's files, through the cache."""
    from tqdm.auto import tqdm

    limits = cfg.limits()
    items: list[int] = []
    vecs: list[np.ndarray] = []
    pending: list[tuple[int, str, object]] = []  # (item, key, decoded image): images are batched
    n_new, seconds = 0, 0.0

    def keep(item: int, key: str, v: np.ndarray) -> None:
        store.put(key, v)
        items.append(item)
        vecs.append(v)

    def flush() -> float:
        if not pending:
            return 0.0
        t0 = time.perf_counter()
        out = enc.encode([p[2] for p in pending])
        for (item, key, _), v in zip(pending, out, strict=True):
            keep(item, key, v)
        pending.clear()
        return time.perf_counter() - t0

    for f in tqdm(files, desc=f"encoding {modality}", unit="file", disable=not progress):
        t0 = time.perf_counter()
        try:
            data = media_io.read_bytes(f.path, limits)
            key = media_io.content_key(enc_id, data)
            hit = store.get(key)
            if hit is not None:
                items.append(f.item)
                vecs.append(hit)
                continue
            if modality == "image":
                pending.append((f.item, key, media_io.decode_image(data, limits)))
            elif modality == "video":
                keep(f.item, key, enc.encode_video(media_io.decode_video(data, limits)))
            else:
                keep(f.item, key, enc.encode_one(*media_io.decode_audio(data, limits)))
        except media_io.MediaSkipped as exc:
            media_io.skip(skipped, f.path, str(exc))
            continue
        n_new += 1
        seconds += time.perf_counter() - t0
        if len(pending) >= cfg.image_batch:
            seconds += flush()
    seconds += flush()
    return items, vecs, n_new, seconds


def encode_media(scan: media_io.MediaScan, cache: Path, cfg: MultimodalConfig, progress: bool = True,
                 encoders: dict | None = None) -> tuple[dict, list[dict], dict]:
    """Encode every file of ``scan`` (cached by content in ``cache/<modality>/``).

    Returns (features, skipped, timing): features[m] = (item indices (n,), x (n, d_enc)) for
    each modality with at least one usable file, sorted by item; skipped = the scan's skips
    plus the files that failed to decode (one warning each); timing[m] = {"encoded", "cached",
    "seconds", "seconds_per_item", "model_load_seconds"} (reading, decoding and encoding the
    non-cached files; the one-off model load apart).
    """
    encoders = encoders or _encoders(cfg)
    skipped = list(scan.skipped)
    features, timing = {}, {}
    for modality in media_io.MODALITIES:
        files = scan.by_modality(modality)
        if not files:
            continue
        enc = encoders[modality]
        store = media_io.FeatureCache(Path(cache) / modality, enc.dim)
        t0 = time.perf_counter()
        _ = enc.model  # load once, outside the per-item timing
        load = time.perf_counter() - t0
        items, vecs, n_new, seconds = _encode_files(
            files, modality, enc, store, _encoder_id(modality, enc, cfg), cfg, skipped, progress)
        store.save()
        timing[modality] = {"encoded": n_new, "cached": len(items) - n_new, "seconds": round(seconds, 3),
                            "seconds_per_item": round(seconds / n_new, 4) if n_new else None,
                            "model_load_seconds": round(load, 3)}
        if items:
            order = np.argsort(items, kind="stable")
            features[modality] = (np.asarray(items, np.int64)[order], np.stack(vecs).astype(np.float32)[order])
    return features, skipped, timing


# ----------------------------------------------------------------------------- the heads

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
    member = np.zeros(n_items, bool)
    member[train_items] = True
    in_dims = {"text": text.shape[1]}
    stats = {"text": _stats(text[train_items])}
    for head in {HEAD_OF[m] for m in features}:
        xs = np.concatenate([x[member[its]] for m, (its, x) in features.items() if HEAD_OF[m] == head])
        in_dims[head] = xs.shape[1]
        stats[head] = _stats(xs) if len(xs) else (np.zeros(xs.shape[1]), np.ones(xs.shape[1]))
    model = _build_model(in_dims, stats, cfg)
    before = copy.deepcopy(model).eval()
    info = {"seconds": 0.0, "epochs": 0, "best_epoch": 0, "best_val_loss": None,
            "early_stopping_items": int(len(val_items))}
    if not pairs:
        log.warning("fewer than 2 training items per modality: the heads stay untrained")
        return before, model.eval(), info
    t0 = time.perf_counter()
    tt = torch.from_numpy(text)

    def batch_loss(batches):
        losses = [info_nce(model.embed("text", tt[its]), model.embed(m, x), model.scale())
                  for m, (its, x) in batches if len(its) >= 2]
        return torch.stack(losses).mean() if losses else None

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    best_state, best, stale = copy.deepcopy(model.state_dict()), float("inf"), 0
    bar = tqdm(range(1, cfg.epochs + 1), desc="aligning modalities", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        perms = {m: torch.randperm(len(p[0]), generator=gen) for m, p in pairs.items()}
        n_batches = {m: max(1, math.ceil(len(p[0]) / cfg.batch_size)) for m, p in pairs.items()}
        total = 0.0
        for step in range(max(n_batches.values())):
            chunk = []
            for m, (its, x) in pairs.items():
                idx = perms[m][(step % n_batches[m]) * cfg.batch_size:][:cfg.batch_size]
                chunk.append((m, (its[idx], x[idx])))
            loss = batch_loss(chunk)
            if loss is None:
                continue
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        info["epochs"] = epoch
        model.eval()
        if val_pairs:
            with torch.no_grad():
                val = float(batch_loss(list(val_pairs.items())))
            if val < best - 1e-4:
                best, stale, info["best_epoch"] = val, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            bar.set_postfix(loss=f"{total / max(n_batches.values()):.3f}", val=f"{val:.3f}",
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


def _chance(figures: dict) -> dict:
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


def split_items(features: dict, n_items: int, cfg: MultimodalConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train items, held-out items) among the items having at least one media file: a seeded
    ``holdout`` share is held out (none when that is fewer than 2 items)."""
    has = np.zeros(n_items, bool)
    for items, _ in features.values():
        has[items] = True
    with_media = np.flatnonzero(has)
    n_hold = int(round(cfg.holdout * len(with_media)))
    if n_hold < 2:
        return with_media, np.zeros(0, np.int64)
    perm = np.random.default_rng(cfg.seed).permutation(with_media)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def multimodal_item_vectors(data, text: np.ndarray, media_dir: Path, cache: Path, cfg: MultimodalConfig | None = None,
                            progress: bool = True, heads_out: Path | None = None) -> tuple[np.ndarray, dict]:
    """Aligned multimodal item vectors to use in place of the text vectors, and a report.

    ``data``: the :class:`fpgarec.data.dataset.InteractionData` (its ``item_tokens`` name the
    media files); ``text``: its MiniLM vectors (I, 384) (:func:`fpgarec.encoders.text.encode_texts`);
    ``media_dir``: the media folder (naming rules: :mod:`fpgarec.encoders.media`); ``cache``: a
    folder for the encoders' feature caches; ``heads_out``: where to save the trained heads
    (:func:`save_heads`; new items then get vectors with :func:`load_heads` + :func:`item_vector`).

    Returns (v (I, cfg.dim) float32, L2-normalised rows; report dict with "items", "dim",
    "modalities" (items per modality), "files" (found / used / skipped counts), "skipped"
    (file, reason), "retrieval" ({"held_out_items", "before", "after", "chance"}),
    "held_out_tokens", "train_items", "train_seconds", "training" (epochs, best epoch, early
    stopping), "encoding" (per modality: encoded, cached, seconds per item, model load),
    "encoders", "config").

    Raises:
        FpgarecError: the folder is missing, holds no usable media file, or ``text`` does not
            have one row per item.
    """
    cfg = cfg or MultimodalConfig()
    text = np.asarray(text, dtype=np.float32)
    n_items = len(data.item_tokens)
    if text.ndim != 2 or text.shape[0] != n_items:
        raise FpgarecError(f"text vectors have shape {text.shape}, expected ({n_items}, D): one row per item")
    media_dir = Path(media_dir)
    scan = media_io.scan_media(media_dir, data.item_tokens)
    features, skipped, timing = encode_media(scan, Path(cache), cfg, progress)
    n_used = sum(len(items) for items, _ in features.values())
    if n_used == 0:
        raise FpgarecError(f"{media_dir}: no usable media file ({len(skipped)} skipped, see the warnings); "
                           f"files are named <item id>.<{'|'.join(e[1:] for e in sorted(media_io.EXTENSIONS))}>")
    train, held = split_items(features, n_items, cfg)
    before, model, train_info = train_heads(text, features, train, cfg, progress)
    seconds = train_info["seconds"]
    figures = {"held_out_items": int(len(held))}
    if len(held):
        figures["before"] = retrieval(before, text, features, held)
        figures["after"] = retrieval(model, text, features, held)
        figures["chance"] = _chance(figures["after"])
    vectors, _ = fuse(model, text, features)
    heads = str(save_heads(model, cfg, heads_out)) if heads_out is not None else None
    n_found = len(scan.files) + len(scan.skipped)
    report = {
        "items": n_items,
        "dim": cfg.dim,
        "modalities": {"text": n_items, **{m: int(len(features[m][0])) if m in features else 0
                                            for m in media_io.MODALITIES}},
        "files": {"found": n_found, "used": n_used, "skipped": len(skipped)},
        "skipped": skipped,
        "retrieval": figures,
        "held_out_tokens": [data.item_tokens[i] for i in held],
        "train_items": int(len(train)),
        "train_seconds": round(seconds, 2),
        "training": train_info,
        "encoding": timing,
        "encoders": {"text": "all-MiniLM-L6-v2 (384-d)", "image": "EfficientNet-Lite0 ImageNet (1280-d)",
                     "video": "EfficientNet-Lite0, mean of sampled frames (GIF or container video) (1280-d)",
                     "audio": "aiSFX X-Sequential-CE (512-d)"},
        "config": asdict(cfg),
        "heads": heads,
    }
    log.info("multimodal item vectors: %d items, %s; %d files used, %d skipped; heads trained in %.1f s",
             n_items, report["modalities"], n_used, len(skipped), seconds)
    return vectors, report


# ----------------------------------------------------------------------------- command line

def _ceiling(manifest: dict, held_tokens: list[str], features_tokens: dict[str, set]) -> dict:
    """R@1 an oracle reaches on generated media: items with the same (year, genres) get media
    that differ only by noise, so among n held-out items sharing a key the best expected R@1 is
    1/n each. Returned per modality pool."""
    out = {}
    for m, tokens in features_tokens.items():
        pool = [t for t in held_tokens if t in tokens and t in manifest["items"]]
        if len(pool) < 2:
            continue
        keys = [manifest["items"][t]["key"] for t in pool]
        counts = {k: keys.count(k) for k in set(keys)}
        out[m] = round(float(np.mean([1.0 / counts[k] for k in keys])), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m fpgarec.encoders.multimodal --media DIR [--generate N]``: one JSON line of
    the retrieval figures on stdout (logs on stderr)."""
    p = argparse.ArgumentParser(prog="python -m fpgarec.encoders.multimodal", description=__doc__.split("\n")[0])
    p.add_argument("--media", type=Path, required=True, help="media folder (<item id>.png|.jpg|.wav|.gif ...)")
    p.add_argument("--generate", type=int, default=None, metavar="N",
                   help="first write GENERATED synthetic media for N items into --media (an empty or generated folder)")
    p.add_argument("--data", type=Path, default=None, help="RecBole atomic-file folder (default: ml-100k)")
    p.add_argument("--cache", type=Path, default=Path("build/cache"), help="cache folder (text and media features)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=MultimodalConfig.dim)
    p.add_argument("--epochs", type=int, default=MultimodalConfig.epochs)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--report", type=Path, default=None, help="also write the whole report as JSON here")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("sentence_transformers", "transformers", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import torch

        from fpgarec.data.dataset import load_interactions
        from fpgarec.encoders.generated_media import generate_media, is_generated_folder
        from fpgarec.encoders.text import encode_texts

        if args.threads:
            torch.set_num_threads(args.threads)
        progress = not args.no_progress
        data = load_interactions(args.data)
        if args.generate is not None:
            if args.generate < 1:
                raise FpgarecError(f"--generate {args.generate}: give a number of items >= 1")
            generate_media(data.item_tokens, data.item_text, args.media, args.generate, seed=args.seed,
                           progress=progress)
        text = encode_texts(data.item_text, args.cache / "text", show_progress=progress)
        cfg = MultimodalConfig(dim=args.dim, epochs=args.epochs, seed=args.seed)
        t0 = time.perf_counter()
        _, report = multimodal_item_vectors(data, text, args.media, args.cache / "media", cfg, progress)
        out = {"media": str(args.media), "generated": is_generated_folder(args.media), "items": report["items"],
               "modalities": report["modalities"], "skipped": report["files"]["skipped"], **report["retrieval"],
               "train_seconds": report["train_seconds"],
               "encode_seconds_per_item": {m: t["seconds_per_item"] for m, t in report["encoding"].items()},
               "seconds": round(time.perf_counter() - t0, 1)}
        manifest_path = args.media / "README.generated.json"
        if out["generated"] and manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            tokens = {m: {t for t, v in manifest["items"].items() if any(f.endswith(ext) for f in v["files"])}
                      for m, ext in (("image", ".png"), ("audio", ".wav"), ("video", ".gif"))}
            out["oracle_R@1_same_metadata"] = _ceiling(manifest, report["held_out_tokens"], tokens)
        if args.report:
            args.report.parent.mkdir(parents=True, exist_ok=True)
            args.report.write_text(json.dumps(report, indent=1))
        print(json.dumps(out))
        return 0
    except FpgarecError as err:
        print(f"fpgarec: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
