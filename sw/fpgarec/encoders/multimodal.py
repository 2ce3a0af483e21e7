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

``v`` is the item content ``prep.content`` in place of the MiniLM table ``prep.text`` (I, 384)
(which stays for the text-encoder comparison) everywhere downstream: the teacher's
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

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fpgarec.encoders import media as media_io
from fpgarec.encoders.alignment import (
    chance,
    fuse,
    info_nce,
    item_vector,
    load_heads,
    recall_at_k,
    retrieval,
    save_heads,
    train_heads,
)
from fpgarec.encoders.media_features import encode_media
from fpgarec.encoders.multimodal_config import HEAD_OF, RECALL_KS, MultimodalConfig
from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

__all__ = [
    "HEAD_OF",
    "RECALL_KS",
    "MultimodalConfig",
    "encode_media",
    "fuse",
    "info_nce",
    "item_vector",
    "load_heads",
    "multimodal_item_vectors",
    "recall_at_k",
    "retrieval",
    "save_heads",
    "split_items",
    "train_heads",
]


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
        figures["chance"] = chance(figures["after"])
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
