"""What a mode's run trains on: token ids, pre-trained vectors, splits, examples, negatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fpgarec.data.sampler import next_item_examples
from fpgarec.data.split import Split, UserSequences
from fpgarec.lm.config import TEXT_DIM, FinetuneConfig, FinetuneConfigError
from fpgarec.lm.tower import tokenize


@dataclass
class FinetuneData:
    """What a mode's run needs, small enough to send to a spawned process.

    Shapes: ``token_ids`` (I, T) int64 padded with 0, ``lengths`` (I,) tokens per text (CLS and
    SEP included), ``text`` (I, 384) float32 pre-trained vectors.
    """

    token_ids: np.ndarray
    lengths: np.ndarray
    text: np.ndarray
    standard: Split
    new: Split

    @property
    def n_items(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_prepared(cls, prep, max_length: int = 128) -> FinetuneData:
        """From a prepared run (any object with the fields data, standard, new, text: :class:`fpgarec.data.prepared.Prepared`) (fields data, standard, new, text)."""
        ids, lengths = tokenize(prep.data.item_text, max_length)
        text = np.asarray(prep.text, dtype=np.float32)
        if text.shape != (len(lengths), TEXT_DIM):
            raise FinetuneConfigError(
                f"prep.text must be ({len(lengths)}, {TEXT_DIM}), got {text.shape}"
            )
        return cls(ids, lengths, text, prep.standard, prep.new)


def length_bucketed_chunks(
    lengths: np.ndarray, size: int, rng: np.random.Generator, pool: int = 8
) -> list[np.ndarray]:
    """All item indices in chunks of ``size``: shuffled, sorted by length inside pools of
    ``pool * size`` items (so a chunk pads little), chunk order shuffled."""
    order = rng.permutation(len(lengths))
    chunks = []
    for start in range(0, len(order), pool * size):
        part = order[start : start + pool * size]
        part = part[np.argsort(lengths[part], kind="stable")]
        chunks += [part[s : s + size] for s in range(0, len(part), size)]
    return [chunks[i] for i in rng.permutation(len(chunks))]


def examples(train: UserSequences, cfg: FinetuneConfig, n_items: int, rng: np.random.Generator):
    """(contexts (N, K) null-padded, targets (N,)): one epoch's "K recent items -> a later item"
    examples of ``train`` (:func:`fpgarec.data.sampler.next_item_examples`)."""
    users, ctx, pos = next_item_examples(train, cfg.k, cfg.horizon, rng, null_id=n_items)
    return torch.from_numpy(ctx), torch.from_numpy(pos)


class NegativeSampler:
    """Shared negatives for sampled softmax: N items drawn with replacement from
    q_i ∝ (1 + n_i)^power, n_i the item's train interactions (power 0: uniform)."""

    def __init__(self, train: UserSequences, n_items: int, n: int | None, power: float):
        self.n = n
        counts = np.bincount(train.items, minlength=n_items).astype(np.float64)
        q = (1.0 + counts) ** power
        self.q = q / q.sum()
        self.log_q = torch.from_numpy(np.log(self.q * (n or 1))).float()

    def __call__(self, rng: np.random.Generator) -> dict:
        """Keyword arguments of :meth:`TextTowerRecommender.loss` (none: full softmax)."""
        if self.n is None:
            return {}
        return {
            "neg": torch.from_numpy(rng.choice(len(self.q), size=self.n, p=self.q)),
            "log_q": self.log_q,
        }
