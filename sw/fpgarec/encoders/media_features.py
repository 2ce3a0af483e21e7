"""Media files to encoder features: every file of a scan through its frozen encoder, cached by
content (``cache/<modality>/``, :class:`fpgarec.encoders.media.FeatureCache`).

    image  x ∈ R^1280     EfficientNet-Lite0 (fpgarec.encoders.image)
    video  x ∈ R^1280     the same network, mean over up to 8 uniformly sampled GIF frames
    audio  x ∈ R^512      aiSFX (fpgarec.encoders.audio)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fpgarec.encoders import media as media_io
from fpgarec.encoders.multimodal_config import MultimodalConfig


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
