"""Settings of the frozen / LoRA / full comparison, and their checks."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from fpgarec.errors import FpgarecError

#: the compared modes, in report order.
MODES = ("frozen", "lora", "full")
#: the text encoder's width.
TEXT_DIM = 384


class FinetuneConfigError(FpgarecError, ValueError):
    """A :class:`FinetuneConfig` setting is out of range."""


@dataclass
class FinetuneConfig:
    """Every setting of the frozen / LoRA / full comparison (defaults: the demo's run)."""

    #: modes to run, a subset of :data:`MODES`.
    modes: tuple[str, ...] = MODES
    #: "new": one model per mode trained on prep.new (evaluated on all, cold and new users);
    #: "both": a second model on prep.standard for all and cold users.
    train_on: str = "new"
    #: width d of item and user vectors.
    dim: int = 64
    #: K recent items a user is represented by.
    k: int = 20
    #: a training context ends a gap drawn in 0..horizon-1 before its target (as the teacher's).
    horizon: int = 10
    #: learn an id embedding e_i added to the projected text (False: a pure text tower).
    id_embedding: bool = True
    #: negatives shared by a batch (sampled softmax); None: full softmax over all items.
    n_negatives: int | None = None
    #: negatives are drawn with probability ∝ (1 + train interactions)^negative_power (0: uniform).
    negative_power: float = 0.75
    #: head warm-up epochs on the pre-trained vectors (identical for every mode).
    head_epochs: int = 1
    #: examples per head warm-up step.
    head_batch: int = 1024
    #: head-only epochs after fine-tuning on the re-encoded items (identical for every mode).
    refit_epochs: int = 1
    #: fine-tuning epochs (passes over all item texts), identical for every mode.
    epochs: int = 1
    #: item texts encoded per fine-tuning step.
    item_batch: int = 32
    #: Adam learning rate of the head (both phases).
    head_lr: float = 5e-3
    #: Adam learning rate of every encoder weight in full fine-tuning.
    full_lr: float = 5e-5
    #: Adam learning rate of the LoRA adapters.
    lora_lr: float = 1e-3
    #: LoRA rank r.
    lora_r: int = 8
    #: LoRA scale numerator α (the update is (α / r) B A).
    lora_alpha: float = 16.0
    #: dropout on the LoRA branch's input.
    lora_dropout: float = 0.0
    #: BERT linear layers given adapters (names inside a layer; "dense" matches the attention
    #: output and both feed-forward linears): by default every linear of the adapted layers.
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    #: adapt the top this many transformer layers (peft layers_to_transform); the rest is frozen
    #: and its output cached.
    lora_layers: int = 1
    #: token truncation of item texts (MovieLens texts are at most 38 tokens).
    max_length: int = 128
    #: texts per batch when caching the frozen prefix or re-encoding all items.
    encode_batch: int = 128
    #: seed of the head initialisation, the adapters, the examples and the chunk order.
    seed: int = 0
    #: torch intra-op threads of each mode's run (on the shared 2-core machine a second thread
    #: made every small op wait for a core: a head epoch ran 7-12 x slower; see docs/lm.md).
    threads: int = 1
    #: modes run at the same time, each in its own process (isolate only); the longest first.
    workers: int = 1
    #: run each mode in a fresh child process (:mod:`fpgarec.lm.isolation`) (its own
    #: peak memory); False: in this process.
    isolate: bool = True
    #: show progress bars.
    progress: bool = True

    def __post_init__(self):
        self.modes = tuple(self.modes)
        self.lora_targets = tuple(self.lora_targets)
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise FinetuneConfigError(
                f"modes must be a non-empty subset of {MODES}, got {self.modes}"
            )
        if self.train_on not in ("new", "both"):
            raise FinetuneConfigError(f"train_on must be 'new' or 'both', got {self.train_on!r}")
        positive = (
            "dim",
            "k",
            "horizon",
            "head_batch",
            "item_batch",
            "lora_r",
            "lora_layers",
            "max_length",
            "encode_batch",
            "threads",
            "workers",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise FinetuneConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_negatives is not None and int(self.n_negatives) < 1:
            raise FinetuneConfigError(f"n_negatives must be >= 1 or None, got {self.n_negatives}")
        for name in ("head_epochs", "epochs", "refit_epochs"):
            if int(getattr(self, name)) < 0:
                raise FinetuneConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("head_lr", "full_lr", "lora_lr", "lora_alpha"):
            v = float(getattr(self, name))
            if not (v > 0 and math.isfinite(v)):
                raise FinetuneConfigError(f"{name} must be a positive number, got {v}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise FinetuneConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_targets:
            raise FinetuneConfigError("lora_targets must name at least one linear layer")
        if self.max_length < 3:
            raise FinetuneConfigError(
                f"max_length must be >= 3 (CLS, a token, SEP), got {self.max_length}"
            )

    def as_dict(self) -> dict:
        return asdict(self)

