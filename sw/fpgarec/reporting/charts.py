"""The report's PNG charts (matplotlib, Agg backend, imported when a chart is drawn).

Each ``plot_*`` function writes one PNG and returns True, or False where the report has nothing
to draw (then no file is written).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fpgarec.reporting.format import GROUPS, as_float, get_metric

log = logging.getLogger(__name__)

CURVES_PNG = "training_curves.png"
METRICS_PNG = "metrics.png"
LAYERS_PNG = "design_layers.png"
ACCURACY_PNG = "accuracy_resources.png"


def _save(fig, path: Path, dpi: int = 100) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    log.debug("wrote %s", path)


def _curve_points(curve: Mapping[str, Any], key: str) -> tuple[list, list]:
    ys = [as_float(y) for y in curve.get(key) or []]
    xs = list(curve.get("epochs") or range(1, len(ys) + 1))[: len(ys)]
    pts = [(x, y) for x, y in zip(xs, ys[: len(xs)], strict=True) if y is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(report: Mapping[str, Any], path: Path) -> bool:
    """Training loss (log y: the models' losses differ by two orders of magnitude) and
    validation NDCG@10 against epoch, one line per model, a star at the best epoch."""
    import matplotlib.pyplot as plt

    curves = report.get("curves") or {}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    panels = (("loss", "training loss (log scale)"), ("valid_ndcg@10", "validation NDCG@10"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        positive = True
        for name, curve in curves.items():
            if not isinstance(curve, Mapping):
                continue
            xs, ys = _curve_points(curve, key)
            if not xs:
                continue
            positive = positive and min(ys) > 0
            (line,) = ax.plot(xs, ys, label=str(name))
            best = curve.get("best_epoch")
            if best in xs:
                ax.plot([best], [ys[xs.index(best)]], marker="*", markersize=12,
                        color=line.get_color(), linestyle="none")
        if key == "loss" and positive and ax.lines:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Training curves (star = best epoch, the state kept)")
    _save(fig, path)
    return True


def plot_metrics(report: Mapping[str, Any], models: list[str], path: Path) -> bool:
    """Grouped bars of NDCG@10 and Recall@10 per model, one panel per user group."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GROUPS), figsize=(15, 4.2))
    x = np.arange(len(models))
    width = 0.38
    for ax, group in zip(axes, GROUPS, strict=True):
        for j, name in enumerate(("ndcg@10", "recall@10")):
            vals = [get_metric(report, m, group, name) for m in models]
            ax.bar(x + (j - 0.5) * width, [v or 0.0 for v in vals], width,
                   label=name.upper().replace("RECALL", "Recall"))
            for xi, v in zip(x, vals, strict=True):
                if v is None:
                    ax.text(xi + (j - 0.5) * width, 0.0, "n/a", ha="center", va="bottom",
                            fontsize=6, rotation=90)
        ax.set_title(f"{group} users")
        ax.set_xticks(x)
        ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Test metrics per model (one seed)")
    _save(fig, path)
    return True


def _layer_panel(ax, names, layers, pairs, title, log_scale):
    """Horizontal bars of ``pairs`` ((key, label), ...) per layer; absent values are marked."""
    y = np.arange(len(names))
    h = 0.8 / len(pairs)
    for j, (key, lab) in enumerate(pairs):
        vals = [as_float(layers[n].get(key)) for n in names]
        if all(v is None for v in vals):
            lab += " (not run)"
        ax.barh(y + (j - (len(pairs) - 1) / 2) * h, [v or 0 for v in vals], h, label=lab)
    ax.set_yticks(y, [n.replace("_rtl", "").replace("_hls", "") for n in names], fontsize=8)
    if log_scale:
        ax.set_xscale("symlog", linthresh=1)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.07), frameon=False)


def plot_design_layers(design: Mapping[str, Any], path: Path) -> bool:
    """Per layer: cycles per query (FINN estimate, RTL kernel in Verilator), LUTs (FINN
    estimate, Yosys), BRAM18 and DSP (FINN estimate, Yosys)."""
    import matplotlib.pyplot as plt

    layers = design.get("layers")
    if not isinstance(layers, Mapping) or not layers:
        return False
    names = [n for n in layers if isinstance(layers[n], Mapping)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 0.35 * len(names) + 2.8), sharey=True)
    panels = (
        ((("finn_cycles", "FINN estimate"), ("rtl_cycles", "RTL, Verilator simulation")), "cycles per query", False),
        ((("finn_lut", "FINN estimate"), ("yosys_lut", "Yosys synthesis")), "LUT (log)", True),
        ((("finn_bram18", "FINN estimate"), ("yosys_bram18", "Yosys synthesis")), "BRAM18", False),
        ((("finn_dsp", "FINN estimate"), ("yosys_dsp", "Yosys synthesis")), "DSP", False),
    )
    for ax, (pairs, title, log_scale) in zip(axes, panels, strict=True):
        _layer_panel(ax, names, layers, pairs, title, log_scale)
    axes[0].invert_yaxis()  # the shared y axis: first layer on top, once
    fig.suptitle("Per layer: cycles and resources (Yosys: no place and route)")
    _save(fig, path, dpi=100)
    return True


def _bits(name: str) -> int | None:
    """Weight bits of a model name: teacher/float -> 32, student_w8 -> 8,
    student_w4_attention -> 4 (other suffixes: not a quantized student, None)."""
    if name == "teacher":
        return 32
    match = re.fullmatch(r"student_w(\d+)(_attention)?", name)
    return int(match.group(1)) if match else None


def _wrap(text: str, width: int = 34) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_accuracy_resources(report: Mapping[str, Any], points: Mapping[str, Mapping[str, Any]],
                            path: Path) -> bool:
    """NDCG@10 of the quantized students as a share of the float teacher's, per user group,
    against weight bits; each model annotated with the resources known for it (``points``:
    model -> [{"LUT", "DSP", "source"}, ...], one per source) or "resources unknown". No point
    is invented."""
    import matplotlib.pyplot as plt

    models = [m for m in report if _bits(m) is not None and get_metric(report, m, "all", "ndcg@10") is not None]
    if "teacher" not in models or len(models) < 2:
        return False
    models.sort(key=lambda m: -_bits(m))
    x = np.arange(len(models))
    fig, ax = plt.subplots(figsize=(9, 6.2))
    fig.subplots_adjust(bottom=0.36)
    for group, marker in zip(GROUPS, "osd", strict=True):
        ref = get_metric(report, "teacher", group, "ndcg@10")
        ys = [get_metric(report, m, group, "ndcg@10") for m in models]
        if ref:
            ax.plot(x, [np.nan if y is None else y / ref for y in ys], marker=marker,
                    label=f"{group} users (teacher {ref:.4f})")
    ax.axhline(1.0, color="#888", linewidth=0.8)
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, 0.9), max(hi, 1.05) + 0.06)
    for xi, m in zip(x, models, strict=True):
        p = points.get(m)
        unknown = "float: not compiled" if _bits(m) == 32 else "resources unknown"
        text = (unknown if not p else "\n".join(
            f"LUT {q.get('LUT') or 0:,.0f}, DSP {q.get('DSP') or 0:,.0f}\n({_wrap(str(q.get('source')))})" for q in p))
        ax.annotate(text, (xi, 0.0), xycoords=("data", "axes fraction"), xytext=(0, -30),
                    textcoords="offset points", ha="center", va="top", fontsize=7,
                    color="#222" if p else "#999")
    labels = [f"{m}\n({'float' if _bits(m) == 32 else f'{_bits(m)}-bit'})" for m in models]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlim(-0.4, len(models) - 0.6)
    ax.set_ylabel("test NDCG@10 / teacher's")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Accuracy kept against weight precision (one seed)")
    _save(fig, path)
    return True
