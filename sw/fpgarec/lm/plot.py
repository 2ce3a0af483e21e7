"""One PNG comparing the fine-tuning modes: time, memory, trainable parameters, NDCG@10.

matplotlib is imported lazily with the non-interactive Agg backend.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: file name of the plot inside the output folder.
FINETUNE_PNG = "lm_finetuning.png"


def plot_finetuning(results: dict, out_dir: Path | str, name: str = FINETUNE_PNG) -> Path:
    """Four panels of bars, one bar (group) per mode: train seconds, peak MB (hatched: the
    reading before the model is built), trainable parameters (log scale), NDCG@10 on all /
    cold / new users. ``results`` is :func:`fpgarec.lm.compare_finetuning`'s dict. Returns
    the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from fpgarec.lm.config import MODES

    modes = [m for m in MODES if m in results]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    x = np.arange(len(modes))
    colors = [f"C{i}" for i in range(len(modes))]
    panels = (
        ("train_seconds", "training time (s)", "{:.1f}", False),
        ("peak_mb", "peak RSS of the mode's process (MB)", "{:.0f}", False),
        ("trainable_params", "trainable parameters", "{:,.0f}", True),
    )
    for ax, (key, title, fmt, logy) in zip(axes[:3], panels, strict=True):
        vals = [float(results[m][key]) for m in modes]
        ax.bar(x, vals, color=colors)
        if key == "peak_mb" and all("setup_peak_mb" in results[m] for m in modes):
            setup = [float(results[m]["setup_peak_mb"]) for m in modes]
            ax.bar(x, setup, color="white", alpha=0.45, hatch="//", label="after imports + data")
            ax.legend(fontsize=7, loc="upper left")
        for xi, v in zip(x, vals, strict=True):
            ax.text(xi, v, fmt.format(v), ha="center", va="bottom", fontsize=8)
        if logy:
            ax.set_yscale("log")
            ax.set_ylim(bottom=min(vals) / 10)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(modes)
        ax.grid(axis="y", alpha=0.3)
    ax = axes[3]
    groups = ("all", "cold", "new")
    width = 0.8 / len(modes)
    for j, m in enumerate(modes):
        vals = [float(results[m][g]["ndcg@10"]) for g in groups]
        ax.bar(
            np.arange(len(groups)) + (j - (len(modes) - 1) / 2) * width,
            vals,
            width,
            label=m,
            color=colors[j],
        )
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels([f"{g} users" for g in groups])
    ax.set_title("NDCG@10", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Text encoder fine-tuning on the recommendation objective: frozen vs LoRA vs full")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.info("wrote %s", path)
    return path
