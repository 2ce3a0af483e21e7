"""Write a run's results as ``report.json``, ``report.html`` and PNG plots.

The input is one dict (see :func:`write_report`). Every top-level value that is a dict with an
``"all"`` key is a model's results::

    {"all": {"recall@10": .., "ndcg@10": .., "recall@20": .., "ndcg@20": ..},
     "cold": {...}, "new": {...}, "train_seconds": float}

The other recognised keys are ``"curves"`` (per-model training curves), ``"meta"`` (free-form
key/value information), ``"bars"`` (acceptance checks, each with a pass/fail flag) and an
optional ``"design"``. Missing values (``None`` or NaN) are shown as an en dash in the page and
written as ``null`` in the JSON, so the JSON is always valid.

matplotlib is imported lazily, with the non-interactive Agg backend, only when plots are drawn.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: the metric columns of the results table, in order.
METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
#: the user groups of the results table, in order.
GROUPS = ("all", "cold", "new")
#: shown for a missing value (None or NaN).
MISSING = "\u2013"

CURVES_PNG = "training_curves.png"
METRICS_PNG = "metrics.png"

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em;
       color: #222; max-width: 1200px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: monospace; }
td.pass { background: #d9f2d9; color: #185c18; font-weight: bold; text-align: center; }
td.fail { background: #f7d4d4; color: #8a1212; font-weight: bold; text-align: center; }
pre { margin: 0; font-size: 0.9em; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.note { color: #666; font-size: 0.9em; }
"""


# --------------------------------------------------------------------------- helpers


def _is_missing(value: Any) -> bool:
    """True for None and for float NaN."""
    if value is None:
        return True
    try:
        return isinstance(value, (int, float)) and math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _as_float(value: Any) -> float | None:
    """A plain float, or None where the value is missing or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _fmt(value: Any, digits: int = 4) -> str:
    """Format a number with ``digits`` decimals; missing -> en dash; non-numbers escaped."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    f = _as_float(value)
    if f is None:
        return html.escape(str(value))
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}f}"


def _json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that ``json.dumps(allow_nan=False)`` accepts.

    Float NaN and +-inf become None, numpy scalars/arrays become Python numbers/lists, tuples
    and sets become lists, paths and other unknown objects become their ``str``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return None if (math.isnan(obj) or math.isinf(obj)) else obj
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return _json_safe(tolist())
    return str(obj)


def model_names(report: Mapping[str, Any]) -> list[str]:
    """Names of the models in ``report``: top-level keys whose value is a dict with ``"all"``."""
    return [k for k, v in report.items() if isinstance(v, Mapping) and "all" in v]


def _metric(report: Mapping[str, Any], model: str, group: str, metric: str) -> float | None:
    block = report.get(model, {}).get(group)
    if not isinstance(block, Mapping):
        return None
    return _as_float(block.get(metric))


# --------------------------------------------------------------------------- plots


def _plot_curves(report: Mapping[str, Any], path: Path) -> None:
    """Two panels (training loss, validation NDCG@10 vs epoch), one line per model."""
    import matplotlib.pyplot as plt

    curves = report.get("curves") or {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    panels = (("loss", "training loss"), ("valid_ndcg@10", "validation NDCG@10"))
    drawn = 0
    for ax, (key, title) in zip(axes, panels, strict=True):
        for name, curve in curves.items():
            if not isinstance(curve, Mapping):
                continue
            ys = [_as_float(y) for y in curve.get(key) or []]
            if not ys:
                continue
            xs = list(curve.get("epochs") or range(1, len(ys) + 1))[: len(ys)]
            ys = ys[: len(xs)]
            pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if not pts:
                continue
            (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], label=str(name))
            drawn += 1
            best = curve.get("best_epoch")
            if best is not None and best in xs:
                yb = ys[xs.index(best)]
                if yb is not None:
                    ax.plot(
                        [best],
                        [yb],
                        marker="*",
                        markersize=12,
                        color=line.get_color(),
                        linestyle="none",
                    )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Training curves (star = best epoch)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.debug("wrote %s (%d lines)", path, drawn)


def _plot_metrics(report: Mapping[str, Any], models: list[str], path: Path) -> None:
    """Grouped bars of NDCG@10 and Recall@10 per model, one panel per user group."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(GROUPS), figsize=(5 * len(GROUPS), 4.2), sharey=True)
    x = np.arange(len(models))
    width = 0.38
    for ax, group in zip(axes, GROUPS, strict=True):
        for j, metric in enumerate(("ndcg@10", "recall@10")):
            vals = [_metric(report, m, group, metric) for m in models]
            heights = [v if v is not None else 0.0 for v in vals]
            ax.bar(
                x + (j - 0.5) * width,
                heights,
                width,
                label=metric.upper().replace("RECALL", "Recall"),
            )
            for xi, v in zip(x, vals, strict=True):
                if v is None:
                    ax.text(
                        xi + (j - 0.5) * width,
                        0.0,
                        "n/a",
                        ha="center",
                        va="bottom",
                        fontsize=6,
                        rotation=90,
                    )
        ax.set_title(f"{group} users")
        ax.set_xticks(x)
        ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Test metrics per model")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.debug("wrote %s", path)


# --------------------------------------------------------------------------- html


def _plot_design_layers(design: Mapping[str, Any], path: Path) -> bool:
    """Per layer: FINN's estimated cycles beside the RTL's, FINN's LUT estimate beside Yosys'
    count (log scale). False (no plot) without measurements."""
    import matplotlib.pyplot as plt

    layers = design.get("layers")
    if not isinstance(layers, Mapping) or not layers:
        return False
    names = list(layers)
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, (a, b, title) in zip(axes, (("finn_cycles", "rtl_cycles", "cycles per query"),
                                        ("finn_lut", "yosys_lut", "LUTs")), strict=True):
        va = [float(layers[n].get(a) or 0) for n in names]
        vb = [float(layers[n].get(b) or 0) for n in names]
        ax.bar(x - 0.2, va, 0.4, label="FINN estimate")
        ax.bar(x + 0.2, vb, 0.4, label="RTL kernel" if b == "rtl_cycles" else "Yosys synthesis (no P&R)")
        ax.set_xticks(x, [n.replace("_rtl", "").replace("_hls", "") for n in names], rotation=45, ha="right",
                      fontsize=8)
        ax.set_title(title)
        if b == "yosys_lut":
            ax.set_yscale("symlog")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _kv_table(data: Mapping[str, Any]) -> str:
    """A two-column table; nested dicts/lists are shown as indented JSON in ``<pre>``."""
    rows = []
    for key, value in data.items():
        if isinstance(value, (Mapping, list, tuple)):
            text = json.dumps(_json_safe(value), indent=2, sort_keys=False)
            cell = f"<pre>{html.escape(text)}</pre>"
        elif _is_missing(value):
            cell = MISSING
        elif isinstance(value, float):
            cell = html.escape(f"{value:.6g}")
        else:
            cell = html.escape(str(value))
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{cell}</td></tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _results_table(report: Mapping[str, Any], models: list[str]) -> str:
    head1 = (
        "<tr><th rowspan=2>model</th>"
        + "".join(f"<th colspan={len(METRICS)}>{html.escape(g)}</th>" for g in GROUPS)
        + "<th rowspan=2>train seconds</th></tr>"
    )
    head2 = (
        "<tr>" + "".join(f"<th>{html.escape(m)}</th>" for _ in GROUPS for m in METRICS) + "</tr>"
    )
    rows = []
    for name in models:
        cells = [f"<th>{html.escape(name)}</th>"]
        for g in GROUPS:
            for m in METRICS:
                cells.append(f'<td class="num">{_fmt(_metric(report, name, g, m), 4)}</td>')
        cells.append(f'<td class="num">{_fmt(report[name].get("train_seconds"), 2)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>\n" + head1 + "\n" + head2 + "\n" + "\n".join(rows) + "\n</table>"


def _bars_table(bars: list[Mapping[str, Any]]) -> str:
    rows = ["<tr><th>check</th><th>value</th><th>target</th><th>result</th><th>detail</th></tr>"]
    for bar in bars:
        passed = bool(bar.get("passed"))
        verdict = '<td class="pass">PASS</td>' if passed else '<td class="fail">FAIL</td>'
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(bar.get('name', '')))}</td>"
            f'<td class="num">{_fmt(bar.get("value"), 4)}</td>'
            f'<td class="num">{_fmt(bar.get("target"), 4)}</td>'
            f"{verdict}"
            f"<td>{html.escape(str(bar.get('detail', '')))}</td>"
            "</tr>"
        )
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _ctr_table(report: Mapping[str, Any], models: list[str]) -> str:
    rows = ["<tr><th>model</th><th>AUC</th><th>GAUC</th><th>log-loss</th><th>test examples</th></tr>"]
    for name in models:
        ctr = report[name].get("ctr")
        if isinstance(ctr, Mapping):
            rows.append(
                f"<tr><th>{html.escape(name)}</th><td class=\"num\">{_fmt(ctr.get('auc'), 4)}</td>"
                f"<td class=\"num\">{_fmt(ctr.get('gauc'), 4)}</td><td class=\"num\">{_fmt(ctr.get('logloss'), 4)}</td>"
                f"<td class=\"num\">{_fmt(ctr.get('test_examples'), 0)}</td></tr>"
            )
    return "<table>\n" + "\n".join(rows) + "\n</table>" if len(rows) > 1 else ""


def _grid_table(data: Mapping[str, Any], row_keys: list[str], col_keys: list[str], digits: int = 4) -> str:
    """Rows ``row_keys`` of ``data``, columns ``col_keys`` of each row (numbers formatted)."""
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in col_keys) + "</tr>"
    rows = [head]
    for r in row_keys:
        row = data.get(r)
        if not isinstance(row, Mapping):
            continue
        rows.append(f"<tr><th>{html.escape(r)}</th>" + "".join(
            f'<td class="num">{_fmt(row.get(c), digits)}</td>' for c in col_keys) + "</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _extra_sections(report: Mapping[str, Any], models: list[str]) -> list[str]:
    """Sections of the later issues' keys, each shown only when present."""
    parts = []
    ctr = _ctr_table(report, models)
    if ctr:
        parts += ["<h2>Click-through prediction</h2>", ctr]
        note = (report.get("meta") or {}).get("ctr protocol")
        if note:
            parts.append(f'<p class="note">{html.escape(str(note))}</p>')
    notes = {f"{m}: {k}": v for m in models for k, v in report[m].items()
             if isinstance(v, str) and k not in ("new_note",)}
    if notes:
        parts += ["<h2>Model notes</h2>", _kv_table(notes)]
    distill = report.get("distillation")
    if isinstance(distill, Mapping):
        parts += ["<h2>Distillation (4-bit student, NDCG@10)</h2>",
                  _grid_table(distill, ["with", "without", "gain"], list(GROUPS))]
        if distill.get("detail"):
            parts.append(f'<p class="note">{html.escape(str(distill["detail"]))}; gain = with / without - 1.</p>')
    lora = report.get("lora")
    if isinstance(lora, Mapping):
        parts += ["<h2>Text encoder fine-tuning: frozen vs LoRA vs full</h2>",
                  _grid_table(lora, ["frozen", "lora", "full"], ["train_seconds", "peak_mb", "trainable_params",
                                                                  "ndcg@10"])]
        if lora.get("plot"):
            parts.append(f'<div><img src="{html.escape(str(lora["plot"]))}" alt="LoRA comparison"></div>')
        rest = {k: v for k, v in lora.items() if k not in ("frozen", "lora", "full", "plot")}
        if rest:
            parts.append(_kv_table(rest))
    for key, title in (("multimodal", "Multimodal item encoder"), ("sequence_info", "Behaviour sequences"),
                       ("hetero_info", "Heterogeneous message passing")):
        value = report.get(key)
        if isinstance(value, Mapping):
            parts += [f"<h2>{title}</h2>", _kv_table(value)]
    ex = report.get("explanations")
    if isinstance(ex, Mapping):
        parts.append("<h2>Explanations</h2>")
        if ex.get("example"):
            link = html.escape(str(ex["example"]))
            parts.append(f'<p>Example: <a href="{link}">{link}</a> (neighbour items, modalities and interest over '
                         f'time); every recommendation: <a href="{html.escape(str(ex.get("all_users", "")))}">'
                         f'{html.escape(str(ex.get("all_users", "")))}</a>.</p>')
        parts.append(_kv_table({k: v for k, v in ex.items() if k not in ("example", "all_users")}))
    return parts


def _render_html(report: Mapping[str, Any], models: list[str], plots: list[str]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>fpgarec report</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        "<h1>fpgarec report</h1>",
    ]
    meta = report.get("meta")
    summary = meta.get("dataset") if isinstance(meta, Mapping) else None
    if isinstance(summary, str):
        parts.append(f'<p class="note">{html.escape(summary)}</p>')

    parts.append("<h2>Test metrics</h2>")
    if models:
        parts.append(_results_table(report, models))
        parts.append(f'<p class="note">Missing values are shown as {MISSING}.</p>')
    else:
        parts.append('<p class="note">No model results.</p>')

    bars = report.get("bars")
    if isinstance(bars, list) and bars:
        n_pass = sum(bool(b.get("passed")) for b in bars if isinstance(b, Mapping))
        parts.append(f"<h2>Acceptance checks ({n_pass}/{len(bars)} passed)</h2>")
        parts.append(_bars_table([b for b in bars if isinstance(b, Mapping)]))

    parts.extend(_extra_sections(report, models))

    parts.append("<h2>Plots</h2>")
    for rel in plots:
        parts.append(f'<div><img src="{html.escape(rel)}" alt="{html.escape(rel)}"></div>')

    if isinstance(meta, Mapping) and meta:
        parts.append("<h2>Run information</h2>")
        parts.append(_kv_table(meta))

    design = report.get("design")
    if isinstance(design, Mapping) and design:
        parts.append("<h2>Hardware design</h2>")
        parts.append(_kv_table(design))

    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- entry point


def write_report(report: dict, out_dir: Path) -> Path:
    """Write ``report.json``, ``report.html`` and ``plots/*.png`` into ``out_dir``.

    Args:
        report: the run's results (schema in the module docstring). It is not modified.
        out_dir: created if missing.

    Returns:
        The path of ``report.html``.
    """
    import matplotlib

    matplotlib.use("Agg")

    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)

    json_path = out_dir / "report.json"
    json_path.write_text(
        json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    log.info("wrote %s", json_path)

    models = model_names(report)
    _plot_curves(report, plot_dir / CURVES_PNG)
    _plot_metrics(report, models, plot_dir / METRICS_PNG)
    plots = [f"plots/{CURVES_PNG}", f"plots/{METRICS_PNG}"]
    design = report.get("design")
    if isinstance(design, Mapping) and _plot_design_layers(design, plot_dir / "design_layers.png"):
        plots.append("plots/design_layers.png")

    html_path = out_dir / "report.html"
    html_path.write_text(_render_html(report, models, plots), encoding="utf-8")
    log.info("wrote %s (%d models)", html_path, len(models))
    return html_path
