"""Accuracy and acceptance checks: the first screen's accuracy table with the user groups'
definitions beside it, the "what failed and why" list, and the full tables further down."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fpgarec.reporting.design import design_model
from fpgarec.reporting.format import (
    GROUPS,
    METRICS,
    as_float,
    esc,
    get_metric,
    metric,
    num,
    percent,
    ratio,
    seconds,
)
from fpgarec.reporting.tables import cell, table

#: the baselines the other models are compared with
BASELINES = ("popularity", "bpr", "lightgcn")
#: one seed's run-to-run noise in NDCG@10 (measured spread of repeated demo runs is not in the report)
NOISE_NDCG = 0.005
_PAIR = re.compile(r"(\d+\.\d+)\s+vs\s+(\d+\.\d+)")


def _model_label(name: str, design_model: str | None = None) -> str:
    bits = name.rsplit("_w", 1)[1] if "_w" in name else ""
    kind = ("baseline" if name in BASELINES else "float" if name == "teacher" else
            f"{bits}-bit" + (", the design" if name == design_model else "") if bits.isdigit() else "")
    return esc(name) + (f" <small>{kind}</small>" if kind else "")


def accuracy_table(report: Mapping[str, Any], models: list[str], metrics=("ndcg@10", "recall@10"),
                   table_id: str = "accuracy") -> str:
    """Models x (group, metric), the best value of each column in bold, baselines marked."""
    cols = [(g, m) for g in GROUPS for m in metrics]
    best = {c: max((v for v in (get_metric(report, n, *c) for n in models) if v is not None), default=None)
            for c in cols}
    head1 = "<tr><th rowspan=2>model</th>" + "".join(
        f"<th colspan={len(metrics)}>{g} users</th>" for g in GROUPS) + "</tr>"
    head2 = "<tr>" + "".join(f"<th>{m.upper().replace('RECALL', 'Recall')}</th>" for _, m in cols) + "</tr>"
    rows = []
    for name in models:
        cells = []
        for c in cols:
            v = get_metric(report, name, *c)
            text = metric(v)
            cells.append(f'<td class="num">{"<b>" + text + "</b>" if v is not None and v == best[c] else text}</td>')
        cls = ' class="baseline"' if name in BASELINES else ""
        rows.append(f"<tr{cls}><th>{_model_label(name, design_model(report))}</th>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}" class="acc">{head1}{head2}' + "".join(rows) + "</table>"


def _protocol_parts(meta: Mapping[str, Any]) -> dict[str, str]:
    """``meta["protocol"]`` split at ``;`` into its ``cold = ..``/``new = ..`` and other parts."""
    out: dict[str, str] = {"rest": ""}
    rest = []
    for part in str(meta.get("protocol") or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key.strip() in GROUPS:
            out[key.strip()] = value.strip()
        elif part.strip():
            rest.append(part.strip())
    out["rest"] = "; ".join(rest)
    return out


def definitions(report: Mapping[str, Any]) -> str:
    """What "all", "cold", "new" and the metrics mean, from ``meta["protocol"]``."""
    meta = report.get("meta") if isinstance(report.get("meta"), Mapping) else {}
    p = _protocol_parts(meta)
    counts = [c.strip() for c in str(meta.get("users evaluated (all / cold / new)", "")).split("/")]
    n = dict(zip(GROUPS, counts, strict=False)) if len(counts) == 3 else {}

    def users(g):
        return f" ({esc(n[g])} users)" if g in n else ""

    items = [
        ("all", f"every test user{users('all')}"),
        ("cold", f"users with {esc(p['cold']).replace('&lt;=', chr(0x2264))}{users('cold')}" if "cold" in p
         else f"cold-start users{users('cold')}"),
        ("new", f"unseen in training{users('new')}" + (f": {esc(p['new'])}" if "new" in p else "")),
        ("NDCG@10, Recall@10", "of each user's top 10 in a ranking of all items"),
    ]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<dl id="definitions" class="defs">{dl}</dl>'


def model_group_notes(report: Mapping[str, Any], models: list[str]) -> str:
    """Per-group notes of the models (``new_note``: e.g. new users get the popularity fallback),
    the models sharing a note named together."""
    notes: dict[str, list[str]] = {}
    for name in models:
        for g in GROUPS:
            note = report[name].get(f"{g}_note")
            if isinstance(note, str) and note:
                notes.setdefault(f"{g} users, {note}", []).append(name)
    return "".join(f'<p class="note">{esc(", ".join(ms))} ({esc(text)}).</p>' for text, ms in notes.items())


def protocol_note(report: Mapping[str, Any]) -> str:
    """The evaluation protocol (``meta["protocol"]`` without the group definitions)."""
    meta = report.get("meta") if isinstance(report.get("meta"), Mapping) else {}
    rest = _protocol_parts(meta)["rest"]
    return f'<p class="note">Protocol: {esc(rest)}.</p>' if rest else ""


def seeds_note(report: Mapping[str, Any]) -> str:
    """How far the numbers can be trusted: one seed unless the report has a spread."""
    meta = report.get("meta") if isinstance(report.get("meta"), Mapping) else {}
    seeds = meta.get("seeds")
    if isinstance(seeds, (list, tuple)) and len(seeds) > 1:
        return f'<p class="note">{len(seeds)} seeds ({esc(", ".join(map(str, seeds)))}).</p>'
    cfg = meta.get("config") if isinstance(meta.get("config"), Mapping) else {}
    seed = f" (seed {esc(cfg['seed'])})" if "seed" in cfg else ""
    return (f'<p class="note">One seed{seed}; differences under ~{NOISE_NDCG} NDCG@10 are within '
            "run-to-run noise. Bold: best in its column.</p>")


# --------------------------------------------------------------------------- acceptance bars


def bar_view(bar: Mapping[str, Any]) -> dict[str, Any]:
    """One acceptance bar, readable: name, value and bar as ``1.12x``/``+14.7 %``, the
    comparison, a verdict (pass, fail, or pass within one seed's noise) and the detail."""
    name = str(bar.get("name", ""))
    value, target, passed = as_float(bar.get("value")), as_float(bar.get("target")), bool(bar.get("passed"))
    is_gain = "- 1" in name or "gain" in name.lower()
    fmt = (lambda v: percent(v, 1, signed=True)) if is_gain else ratio
    op = "\u2265"
    if value is not None and target is not None and value != target and (value >= target) != passed:
        op = "\u2264"
    verdict = "pass" if passed else "fail"
    pair = _PAIR.search(str(bar.get("detail", "")))
    margin = None
    if pair and value is not None and target is not None and "ndcg" in name.lower() and not is_gain:
        margin = abs(value - target) * float(pair.group(2))
        if passed and margin < NOISE_NDCG:
            verdict = "noise"
    pretty = re.sub(r"(NDCG@\d+),\s*(all|cold|new)$", r"\1 (\2 users)", name)
    return {"name": pretty, "value": fmt(value), "target": fmt(target), "op": op, "verdict": verdict,
            "detail": str(bar.get("detail", "")).strip().rstrip(";"), "margin": margin}


_VERDICT = {"pass": "PASS", "fail": "FAIL", "noise": "PASS, within noise"}


def failed_list(bars: list[Mapping[str, Any]]) -> str:
    """The first screen's list: failed bars, then passes whose margin is within the noise."""
    views = [bar_view(b) for b in bars]
    shown = [v for v in views if v["verdict"] == "fail"] + [v for v in views if v["verdict"] == "noise"]
    n_pass = sum(v["verdict"] != "fail" for v in views)
    n_noise = sum(v["verdict"] == "noise" for v in views)
    head = (f"<h3>Acceptance checks: {n_pass} of {len(views)} pass"
            + (f" ({n_noise} within one seed's noise)" if n_noise else "") + "</h3>")
    if not shown:
        return f'<div id="failed">{head}<p>Every check passes by more than one seed\'s noise.</p></div>'
    items = []
    for v in shown:
        why = (f"short of the bar ({esc(v['detail'])})" if v["verdict"] == "fail" else
               f"passes by {num(v['margin'], 4)} NDCG@10, under one seed's noise ({esc(v['detail'])})")
        items.append(f'<li class="{v["verdict"]}"><b>{_VERDICT[v["verdict"]]}</b> {esc(v["name"])} = '
                     f'{v["value"]}, bar {v["op"]} {v["target"]}: {why}</li>')
    return f'<div id="failed">{head}<ul>' + "".join(items) + "</ul></div>"


def bars_table(bars: list[Mapping[str, Any]]) -> str:
    """Every acceptance bar with its labelled value, bar and verdict."""
    rows = []
    for b in bars:
        v = bar_view(b)
        rows.append(f"<tr><td>{esc(v['name'])}</td><td class=\"num\">{v['value']}</td>"
                    f"<td class=\"num\">{v['op']} {v['target']}</td>"
                    f'<td class="{v["verdict"]}">{_VERDICT[v["verdict"]]}</td><td>{esc(v["detail"])}</td></tr>')
    head = "<tr><th>check (ratio or gain)</th><th>value</th><th>bar</th><th>result</th><th>detail</th></tr>"
    return '<table id="bars">' + head + "".join(rows) + "</table>"


def full_results(report: Mapping[str, Any], models: list[str]) -> str:
    """All four metrics of every model and group, and the training time."""
    rows = []
    for name in models:
        rows.append([_model_label(name)] + [metric(get_metric(report, name, g, m)) for g in GROUPS for m in METRICS]
                    + [seconds(report[name].get("train_seconds"))])
    heads = ["model"] + [f"{g}: {m}" for g in GROUPS for m in METRICS] + ["training time"]
    return table(heads, rows)


def training_table(report: Mapping[str, Any]) -> str:
    """Per model's training curve: epochs run, best epoch, best validation NDCG@10, the grid
    point chosen."""
    curves = report.get("curves") if isinstance(report.get("curves"), Mapping) else {}
    rows = []
    for name, c in curves.items():
        if not isinstance(c, Mapping):
            continue
        chosen = c.get("chosen")
        chosen = ", ".join(f"{esc(k)} {cell(v, 2)}" for k, v in chosen.items()) if isinstance(chosen, Mapping) else "\u2013"
        epochs = c.get("epochs") or []
        rows.append([esc(name), num(epochs[-1] if epochs else None), num(c.get("best_epoch")),
                     metric(c.get("best_valid_ndcg@10")), seconds(c.get("train_seconds")), chosen])
    if not rows:
        return ""
    return table(["model", "last epoch", "best epoch", "best valid NDCG@10", "training time", "grid point chosen"],
                 rows, text_from=5)
