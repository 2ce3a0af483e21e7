"""The flow's prepared data: interactions, the two splits and the item vectors every model reads.

:class:`Prepared` keeps two item tables apart:

* ``text`` (I, 384): the MiniLM vectors of the item texts (:mod:`fpgarec.encoders.text`),
  always present; what the text-encoder fine-tuning comparison starts from;
* ``content`` (I, C): the item content vectors the models read: ``text`` itself, or with
  ``--media`` the aligned text+image+audio vectors (I, 256) (:mod:`fpgarec.encoders.multimodal`).

:func:`prepare` loads and splits the data; the encoders that turn items into vectors sit above
this layer and are handed in (``item_vectors``), see :mod:`fpgarec.experiment.prepare`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgarec.config import DemoConfig
from fpgarec.data.dataset import InteractionData, load_interactions, subsample_users
from fpgarec.data.split import Split, check_splits, new_user_split, temporal_split

log = logging.getLogger(__name__)

#: ``item_vectors(data) -> (text (I, 384), content (I, C), multimodal report or None)``
ItemVectors = Callable[[InteractionData], tuple[np.ndarray, np.ndarray, "dict | None"]]


@dataclass
class Prepared:
    """Data, splits and item vectors of one run."""

    data: InteractionData
    #: per-user temporal split (all and cold users)
    standard: Split
    #: new-user split (held-out users with a few context interactions)
    new: Split
    #: MiniLM text vectors of the items (I, 384)
    text: np.ndarray
    #: the item content vectors every model reads (I, C): ``text``, or the aligned multimodal
    #: vectors (I, 256) with ``--media``; None = ``text``
    content: np.ndarray | None = None
    #: the multimodal encoder's report (None: text only)
    multimodal: dict | None = None

    def __post_init__(self) -> None:
        if self.content is None:
            self.content = self.text


def load_data(cfg: DemoConfig) -> InteractionData:
    """The configured data set (``cfg.quick``: a seeded user subsample)."""
    data = load_interactions(cfg.data)
    if cfg.quick:
        data = subsample_users(data, cfg.quick_users, cfg.seed)
        log.info("quick run on a subsample: %s", data.summary())
    return data


def prepare(cfg: DemoConfig, item_vectors: ItemVectors) -> Prepared:
    """Load and split the configured data; ``item_vectors`` encodes its items. A data set the
    splits leave nothing to train or evaluate on is refused first (:func:`check_splits`)."""
    data = load_data(cfg)
    standard, new = temporal_split(data), new_user_split(data, seed=cfg.seed)
    check_splits(data, standard, new)
    text, content, multimodal = item_vectors(data)
    return Prepared(data, standard, new, text, content, multimodal)
