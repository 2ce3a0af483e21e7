"""Language-model fine-tuning on the recommendation objective (frozen vs LoRA vs full).

The model (one for every mode) is an inductive text tower. With ``E_θ`` all-MiniLM-L6-v2
(6 BERT layers, width 384) and ``t_i`` the token ids of item ``i``'s text::

    h_i = normalize(meanpool(E_θ(t_i)))                      (I, 384)  encoder vector
    v_i = P h_i [+ e_i]                                      (I, d)    item vector
    z_u = W · (1/L) Σ_{j ∈ recent_K(u)} v_j                  (B, d)    user vector, L ≤ K real items
    s_ui = z_u · v_i + b_i                                   (B, I)    score

Modules, one reason to change each: :mod:`~fpgarec.lm.config` (settings),
:mod:`~fpgarec.lm.tower` (the encoder and what each mode trains of it),
:mod:`~fpgarec.lm.recommender` (the head and its loss), :mod:`~fpgarec.lm.data` (token ids,
examples, negatives), :mod:`~fpgarec.lm.loop` (one mode's schedule),
:mod:`~fpgarec.lm.isolation` (a fresh process per mode), :mod:`~fpgarec.lm.compare` (the
comparison and its bars), :mod:`~fpgarec.lm.plot`. The command line is
``fpgarec study lm-finetuning``.

Heavy imports (transformers, peft) happen only inside the functions that need them.
"""

from fpgarec.lm.compare import compare_finetuning, finetune_bars
from fpgarec.lm.config import MODES, FinetuneConfig, FinetuneConfigError
from fpgarec.lm.plot import plot_finetuning

__all__ = [
    "MODES",
    "FinetuneConfig",
    "FinetuneConfigError",
    "compare_finetuning",
    "finetune_bars",
    "plot_finetuning",
]
