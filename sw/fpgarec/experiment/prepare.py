"""The flow's data with its item vectors: :func:`fpgarec.data.prepared.prepare` handed this
flow's encoders (MiniLM text, and with ``--media`` the multimodal alignment)."""

from __future__ import annotations

import json
import logging

import numpy as np

from fpgarec.config import DemoConfig
from fpgarec.data.dataset import InteractionData
from fpgarec.data.prepared import ItemVectors, Prepared
from fpgarec.data.prepared import prepare as prepare_data
from fpgarec.encoders.text import encode_texts
from fpgarec.train.distributed import is_main_process

log = logging.getLogger(__name__)

MULTIMODAL_FILES = ("multimodal_vectors.npy", "multimodal.json")


def _multimodal(cfg: DemoConfig, data: InteractionData, text: np.ndarray, reuse: bool) -> tuple[np.ndarray, dict]:
    """(vectors, report) of the aligned multimodal item vectors of ``cfg.media``.

    The multimodal heads are trained once, by the process that prepares first; worker
    processes (``reuse``) load that result from ``<out>/work/`` so every model reads the same
    vectors bit for bit.
    """
    vec_path, rep_path = (cfg.out / "work" / f for f in MULTIMODAL_FILES)
    if reuse and vec_path.exists() and rep_path.exists():
        return np.load(vec_path, allow_pickle=False), json.loads(rep_path.read_text())
    from fpgarec.encoders.multimodal import MultimodalConfig, multimodal_item_vectors

    vectors, report = multimodal_item_vectors(
        data, text, cfg.media, cfg.cache / "media", MultimodalConfig(seed=cfg.seed),
        progress=cfg.progress and is_main_process(),
        heads_out=cfg.out / "models" / "multimodal_heads" if is_main_process() else None,
    )
    if is_main_process():
        vec_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(vec_path, vectors.astype(np.float32))
        rep_path.write_text(json.dumps(report, default=str))
    return vectors, report


def item_vectors(cfg: DemoConfig, reuse_content: bool = False) -> ItemVectors:
    """The flow's ``item_vectors(data) -> (text, content, multimodal report)``."""

    def encode(data: InteractionData):
        text = encode_texts(data.item_text, cfg.cache / "text", show_progress=cfg.progress and is_main_process())
        if cfg.media is None:
            if not reuse_content:
                log.info("item content: text only (%s has no media folder; give --media DIR for "
                         "image/audio/video)", data.name)
            return text, text, None
        content, report = _multimodal(cfg, data, text, reuse_content)
        return text, content, report

    return encode


def prepare(cfg: DemoConfig, reuse_content: bool = False) -> Prepared:
    """Data, splits and item vectors (``reuse_content``: a worker process, see :func:`_multimodal`)."""
    return prepare_data(cfg, item_vectors(cfg, reuse_content))
