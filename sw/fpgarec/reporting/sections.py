"""The sections below the first screen: hardware per layer, click-through, distillation, LoRA,
sequences, heterogeneous graph, multimodal, explanations, model notes and run information.
Each function returns ``(title, html)`` or None when the report lacks its key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fpgarec.reporting.format import GROUPS, as_float, esc, label, metric, num, percent, seconds
from fpgarec.reporting.tables import kv_table, table

Section = tuple[str, str] | None


def _note(text: Any) -> str:
    return f'<p class="note">{esc(text)}</p>' if text else ""


def _bottleneck(layers: Mapping[str, Any]) -> str:
    """The layers with the most cycles per query (they set the design's throughput)."""
    cycles = {n: as_float(v.get("rtl_cycles")) or as_float(v.get("finn_cycles"))
              for n, v in layers.items() if isinstance(v, Mapping)}
    cycles = {n: c for n, c in cycles.items() if c is not None}
    if not cycles:
        return ""
    top = max(cycles.values())
    slow = [esc(n) for n, c in cycles.items() if c == top]
    return (f"<p>Slowest layer{'s' if len(slow) > 1 else ''}: {', '.join(slow)} at {num(top)} cycles per query; "
            "the slowest layer sets the queries/s of the pipeline.</p>")


def hardware_layers(design: Mapping[str, Any], layers_png: str | None) -> Section:
    """Per layer: FINN's estimates beside the RTL's cycles (Verilator) and Yosys' counts."""
    layers = design.get("layers")
    if not isinstance(layers, Mapping) or not layers:
        return None
    cols = [("finn_cycles", "cycles, FINN estimate"), ("rtl_cycles", "cycles, Verilator"),
            ("finn_lut", "LUT, FINN estimate"), ("yosys_lut", "LUT, Yosys"),
            ("finn_bram18", "BRAM18, FINN estimate"), ("yosys_bram18", "BRAM18, Yosys"),
            ("finn_dsp", "DSP, FINN estimate"), ("yosys_dsp", "DSP, Yosys")]
    rows = [[esc(n)] + [num(layer.get(k)) for k, _ in cols] for n, layer in layers.items() if isinstance(layer, Mapping)]
    parts = [_bottleneck(layers), f'<img src="{esc(layers_png)}" alt="per-layer cycles and resources">' if layers_png else "",
             table(["layer"] + [esc(h) for _, h in cols], rows),
             '<p class="note">A dash: not measured in this run (Yosys runs with <code>fpgarec sim BUNDLE '
             "--synth</code>; Yosys counts are before place and route).</p>"]
    bitexact = design.get("bitexact")
    if isinstance(bitexact, Mapping):
        rows = [[label(k), num(v.get("topk")), num(v.get("scores")), num(v.get("any"))]
                for k, v in bitexact.items() if isinstance(v, Mapping)]
        parts += ["<h3>Bit-exact checks (mismatching queries)</h3>", table(["comparison", "top-k", "scores", "any"], rows),
                  f'<p class="note">{num(bitexact.get("queries"))} queries through the emulation in '
                  f'{seconds(bitexact.get("emulation_seconds"))}; {num(bitexact.get("finn_queries"))} through FINN\'s '
                  f'execution in {seconds(bitexact.get("finn_seconds"))}.</p>']
    delivered = design.get("delivered")
    if isinstance(delivered, Mapping):
        rows = [[esc(g), metric(v.get("ndcg@10")), metric(v.get("recall@10")), num(v.get("users")),
                 percent(v.get("share_k_unseen")), num(v.get("seen_on_chip")), esc(v.get("source", ""))]
                for g, v in delivered.items() if isinstance(v, Mapping)]
        parts += ["<h3>Accuracy of the design's own output</h3>",
                  table(["users", "NDCG@10", "Recall@10", "users", "top-k all unseen", "seen filter on chip",
                         "source"], rows, text_from=6)]
    return "Hardware per layer", "".join(parts)


def ctr(report: Mapping[str, Any], models: list[str]) -> Section:
    rows = []
    for name in models:
        c = report[name].get("ctr")
        if isinstance(c, Mapping):
            rows.append([esc(name), metric(c.get("auc")), metric(c.get("gauc")), metric(c.get("logloss")),
                         num(c.get("test_examples"))])
    if not rows:
        return None
    note = (report.get("meta") or {}).get("ctr protocol")
    return "Click-through prediction", table(["model", "AUC", "GAUC", "log-loss", "test examples"], rows) + _note(note)


def distillation(report: Mapping[str, Any]) -> Section:
    d = report.get("distillation")
    if not isinstance(d, Mapping):
        return None
    rows = [[label(r)] + [(percent(d[r].get(g), 1, signed=True) if r == "gain" else metric(d[r].get(g)))
                          for g in GROUPS] for r in ("with", "without", "gain") if isinstance(d.get(r), Mapping)]
    body = table(["NDCG@10"] + [f"{g} users" for g in GROUPS], rows)
    if d.get("without_train_seconds") is not None:
        body += f'<p class="note">Training without the teacher took {seconds(d["without_train_seconds"])}.</p>'
    return "Distillation (4-bit student, NDCG@10)", body + _note(
        f"{d['detail']}; gain = with / without - 1." if d.get("detail") else "")


def _setting(value: Any) -> str:
    """One setting in a line of settings: lists joined with ``/``, None as ``none``."""
    if isinstance(value, (list, tuple)):
        return "/".join(map(str, value))
    return "none" if value is None else str(value)


def lora(report: Mapping[str, Any]) -> Section:
    lo = report.get("lora")
    if not isinstance(lo, Mapping):
        return None
    modes = [m for m in ("frozen", "lora", "full") if isinstance(lo.get(m), Mapping)]
    cols = [("ndcg@10 all", lambda r: metric((r.get("all") or {}).get("ndcg@10", r.get("ndcg@10")))),
            ("ndcg@10 cold", lambda r: metric((r.get("cold") or {}).get("ndcg@10"))),
            ("ndcg@10 new", lambda r: metric((r.get("new") or {}).get("ndcg@10"))),
            ("training time", lambda r: seconds(r.get("train_seconds"))),
            ("encoding time", lambda r: seconds(r.get("encode_seconds"))),
            ("peak memory MB", lambda r: num(r.get("peak_mb"), 0)),
            ("trainable parameters", lambda r: num(r.get("trainable_params"))),
            ("of which encoder", lambda r: num(r.get("encoder_trainable_params"))),
            ("head parameters", lambda r: num(r.get("head_params")))]
    parts = [table(["mode"] + [h for h, _ in cols], [[esc(m)] + [f(lo[m]) for _, f in cols] for m in modes])]
    phases = sorted({p for m in modes for p in (lo[m].get("phase_seconds") or {})})
    if phases:
        parts += ["<h3>Time per phase</h3>", table(["mode"] + [label(p) for p in phases],
                                                   [[esc(m)] + [seconds((lo[m].get("phase_seconds") or {}).get(p))
                                                                for p in phases] for m in modes])]
    if lo.get("plot"):
        parts.append(f'<img src="{esc(lo["plot"])}" alt="LoRA comparison">')
    rest = {k: v for k, v in lo.items() if k not in (*modes, "plot", "bars")}
    meta = rest.pop("meta", None)
    if isinstance(meta, Mapping):  # the run's facts as rows, its settings as one line
        rest = {**{k: v for k, v in meta.items() if k != "config"}, **rest}
        settings = meta.get("config")
        if isinstance(settings, Mapping):
            rest["settings"] = ", ".join(f"{k} {_setting(v)}" for k, v in settings.items())
    if rest:
        parts += ["<h3>Set-up</h3>", kv_table(rest)]
    return "Text encoder fine-tuning: frozen vs LoRA vs full", "".join(parts)


def _relations(about: Mapping[str, Any]) -> str:
    edges = about.get("edges") if isinstance(about.get("edges"), Mapping) else {}
    gates = about.get("gate_mean_abs") if isinstance(about.get("gate_mean_abs"), Mapping) else {}
    names = list(about.get("relations") or edges)
    rows = [[esc(r), num(edges.get(r)), num(gates.get(r))] for r in names]
    return table(["relation", "edges", "gate mean |g|"], rows) if rows else ""


def model_about(report: Mapping[str, Any], models: list[str]) -> list[tuple[str, str]]:
    """The sequence and heterogeneous models' descriptions (``about``, ``about_new_split``)."""
    out = []
    titles = {"sequence": "Behaviour sequences", "hetero": "Heterogeneous message passing"}
    for name in models:
        entry = report[name]
        parts = []
        for key in ("about", "about_new_split"):
            about = entry.get(key)
            if not isinstance(about, Mapping):
                continue
            if key != "about":
                parts.append("<h3>The same model trained for the new-user split</h3>")
            parts.append(_relations(about))
            parts.append(kv_table({k: v for k, v in about.items() if k not in ("relations", "edges", "gate_mean_abs")}))
        if parts:
            out.append((titles.get(name, f"Model {name}"), "".join(parts)))
    for key, title in (("sequence_info", "Behaviour sequences"), ("hetero_info", "Heterogeneous message passing")):
        if isinstance(report.get(key), Mapping):
            out.append((title, kv_table(report[key])))
    return out


def multimodal(report: Mapping[str, Any]) -> Section:
    mm = report.get("multimodal")
    return ("Multimodal item encoder", kv_table(mm)) if isinstance(mm, Mapping) else None


def explanations(report: Mapping[str, Any]) -> Section:
    ex = report.get("explanations")
    if not isinstance(ex, Mapping):
        return None
    parts = []
    if ex.get("example"):
        link, every = esc(ex["example"]), esc(ex.get("all_users", ""))
        parts.append(f'<p>Example: <a href="{link}">{link}</a> (neighbour items, modalities and interest over '
                     f'time); every recommendation: <a href="{every}">{every}</a>.</p>')
    parts.append(kv_table({k: v for k, v in ex.items() if k not in ("example", "all_users")}))
    return "Explanations", "".join(parts)


def model_notes(report: Mapping[str, Any], models: list[str]) -> Section:
    """Per model: its text notes and small extra values (e.g. modality weights)."""
    rows = {}
    for m in models:
        for k, v in report[m].items():
            if k in (*GROUPS, "ctr", "train_seconds", "about", "about_new_split"):
                continue
            if isinstance(v, str) or (isinstance(v, (list, tuple)) and all(as_float(x) is not None for x in v)):
                rows[f"{m}: {k}"] = v
    return ("Model notes", kv_table(rows)) if rows else None

