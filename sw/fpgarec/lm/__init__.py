"""Language-model fine-tuning on the recommendation objective (frozen vs LoRA vs full).

Heavy imports (transformers, peft) happen only inside the functions that need them.
"""

from fpgarec.lm.finetune import (
    MODES,
    FinetuneConfig,
    FinetuneConfigError,
    compare_finetuning,
    finetune_bars,
)
from fpgarec.lm.plot import plot_finetuning

__all__ = [
    "MODES",
    "FinetuneConfig",
    "FinetuneConfigError",
    "compare_finetuning",
    "finetune_bars",
    "plot_finetuning",
]
