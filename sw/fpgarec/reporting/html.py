"""Write a run's results as ``report.json``, ``report.html`` and PNG plots.

The input is one dict (see :func:`write_report`). Every top-level value that is a dict with an
``"all"`` key is a model's results::

    {"all": {"recall@10": .., "ndcg@10": .., "recall@20": .., "ndcg@20": ..},
     "cold": {...}, "new": {...}, "train_seconds": float}

The other recognised keys are ``"curves"`` (per-model training curves), ``"meta"`` (run
information; ``meta["protocol"]`` defines the user groups), ``"bars"`` (acceptance checks, each
with a pass/fail flag), ``"design"`` (the hardware design: FINN estimates, ``measured`` figures,
``layers``, ``bitexact``) and the later issues' keys (``lora``, ``distillation``, ``multimodal``,
``explanations``). Missing values (``None`` or NaN) are shown as an en dash in the page and
written as ``null`` in the JSON, so the JSON is always valid.

The page's first screen is the hardware design box (every figure labelled with its source)
beside the accuracy table, the user groups' definitions and the failed checks; the rest follows
as readable tables and charts. No raw JSON is on the page: it links report.json.

matplotlib is imported lazily, with the non-interactive Agg backend, only when plots are drawn.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fpgarec.reporting import accuracy, charts, sections
from fpgarec.reporting.design import design_box, resource_points
from fpgarec.reporting.format import MISSING, esc, json_safe, model_names
from fpgarec.reporting.runinfo import header_line, run_info, stamp
from fpgarec.reporting.style import CSS

log = logging.getLogger(__name__)

__all__ = ["write_report", "model_names"]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _first_screen(report: Mapping[str, Any], models: list[str]) -> str:
    """The design box beside the accuracy table, its definitions and the failed checks."""
    right = ['<section id="summary" class="box"><h2>Accuracy on the test users</h2>']
    if models:
        right.append('<div class="acc-row">' + accuracy.accuracy_table(report, models)
                     + accuracy.definitions(report) + "</div>")
        right.append(accuracy.seeds_note(report) + accuracy.model_group_notes(report, models)
                     + accuracy.protocol_note(report))
    else:
        right.append('<p class="note">No model results.</p>')
    failed = report.get("failed")
    if isinstance(failed, Mapping) and failed:
        items = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in failed.items())
        right.append(f'<div id="failed-tasks"><h3>Tasks that did not finish ({len(failed)})</h3>'
                     f'<p class="note">This report holds what the other tasks produced; the log has the '
                     f"tracebacks.</p><ul>{items}</ul></div>")
    bars = [b for b in report.get("bars") or [] if isinstance(b, Mapping)]
    if bars:
        right.append(accuracy.failed_list(bars))
    right.append("</section>")
    return '<div class="first">' + design_box(report) + "".join(right) + "</div>"


def _img(path: str | None, alt: str) -> str:
    return f'<img src="{esc(path)}" alt="{esc(alt)}">' if path else ""


def _accuracy_section(report: Mapping[str, Any], models: list[str], plots: Mapping[str, str]) -> str:
    parts = [accuracy.full_results(report, models), f'<p class="note">Missing values are shown as {MISSING}; '
             "</p>", accuracy.definitions(report).replace('id="definitions"', ""),
             accuracy.seeds_note(report), accuracy.protocol_note(report), _img(plots.get("metrics"), "test metrics per model")]
    if plots.get("accuracy"):
        parts += ["<h3>Accuracy against precision and resources</h3>", _img(plots["accuracy"], "accuracy vs resources"),
                  '<p class="note">Float = the teacher (not compiled). Each student is annotated with the resources '
                  "this run knows for it, with their source: FINN's estimate for every student (the demo runs the "
                  "flow to code generation for the ones it does not build as its design, about 15 s each), and "
                  "for the design's model also Yosys' synthesis. FINN's LUT figure is a lower bound (it counts 0 "
                  "for some layers); compare students on one source.</p>"]
    return "".join(parts)


def _later_sections(report: Mapping[str, Any], models: list[str], plots: Mapping[str, str]) -> list[tuple[str, str]]:
    """(title, html) of every section below the first screen, in page order."""
    out: list[tuple[str, str]] = []
    design = report.get("design")
    if isinstance(design, Mapping):
        hw = sections.hardware_layers(design, plots.get("layers"))
        if hw:
            out.append(hw)
    if models:
        out.append(("Accuracy in full", _accuracy_section(report, models, plots)))
    bars = [b for b in report.get("bars") or [] if isinstance(b, Mapping)]
    if bars:
        out.append(("Acceptance checks", accuracy.bars_table(bars)))
    training = accuracy.training_table(report)
    out.append(("Training", _img(plots.get("curves"), "training curves") + training))
    for s in (sections.ctr(report, models), sections.distillation(report), sections.lora(report)):
        if s:
            out.append(s)
    out.extend(sections.model_about(report, models))
    for s in (sections.multimodal(report), sections.explanations(report), sections.model_notes(report, models)):
        if s:
            out.append(s)
    meta = report.get("meta")
    if isinstance(meta, Mapping) and meta:
        out.append(("Run information", run_info(meta)))
    return out


def render_page(report: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The whole page (``plots``: role -> relative PNG path)."""
    models = model_names(report)
    meta = report.get("meta") if isinstance(report.get("meta"), Mapping) else {}
    later = _later_sections(report, models, plots)
    toc = [("design", "Hardware design"), ("summary", "Accuracy")] + [(_slug(t), t) for t, _ in later]
    nav = ('<nav class="toc"><b>Contents:</b> ' + " \u00b7 ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in toc)
           + ' \u00b7 <a href="report.json">report.json</a> (every number)</nav>')
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width">', "<title>fpgarec report</title>",
             f"<style>{CSS}</style>", "</head><body>", "<header><h1>fpgarec report</h1>", header_line(meta), nav,
             "</header>", _first_screen(report, models)]
    for title, body in later:
        parts.append(f'<section id="{_slug(title)}"><h2>{esc(title)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _draw(report: Mapping[str, Any], plot_dir: Path) -> dict[str, str]:
    """Draw every chart the report has data for; role -> path relative to the page."""
    models = model_names(report)
    drawn = {"curves": charts.plot_curves(report, plot_dir / charts.CURVES_PNG),
             "metrics": charts.plot_metrics(report, models, plot_dir / charts.METRICS_PNG)}
    design = report.get("design")
    drawn["layers"] = isinstance(design, Mapping) and charts.plot_design_layers(design, plot_dir / charts.LAYERS_PNG)
    drawn["accuracy"] = charts.plot_accuracy_resources(report, resource_points(report),
                                                       plot_dir / charts.ACCURACY_PNG)
    files = {"curves": charts.CURVES_PNG, "metrics": charts.METRICS_PNG, "layers": charts.LAYERS_PNG,
             "accuracy": charts.ACCURACY_PNG}
    return {role: f"plots/{files[role]}" for role, ok in drawn.items() if ok}


def write_report(report: dict, out_dir: Path) -> Path:
    """Write ``report.json``, ``report.html`` and ``plots/*.png`` into ``out_dir``.

    ``report["meta"]`` gains ``written_at``, ``commit``, ``command`` and ``machine`` where it
    lacks them (:func:`fpgarec.reporting.runinfo.stamp`), in the files written; the ``report``
    dict itself is not modified.

    Returns:
        The path of ``report.html``.
    """
    import matplotlib

    matplotlib.use("Agg")

    out_dir = Path(out_dir)
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    report = stamp(report)

    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    log.info("wrote %s", json_path)

    plots = _draw(report, plot_dir)
    html_path = out_dir / "report.html"
    html_path.write_text(render_page(report, plots), encoding="utf-8")
    log.info("wrote %s (%d models, %d plots)", html_path, len(model_names(report)), len(plots))
    return html_path
