"""The hardware design box of the first screen: board, clock, latency, queries/s, resource bars
against the board's capacity and the CPU baseline, every figure labelled with its source.

A figure is shown as measured only where the report says it was measured (``design.measured``:
Verilator for latency and queries/s, Yosys for resources); otherwise it is FINN's estimate and
says so. Nothing here comes from Vivado: no place and route runs in the demo.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fpgarec.reporting.format import MISSING, as_float, esc, num, percent

RESOURCES = ("LUT", "FF", "BRAM18", "DSP")
#: a resource above this share of the board is flagged
FULL_SHARE = 0.80

VERILATOR = "Verilator simulation"
YOSYS = "Yosys synthesis (no place and route)"
FINN = "FINN estimate"
CPU = "measured on this CPU (numpy emulation, batched)"
SYNTH_HINT = "<code>fpgarec sim BUNDLE --synth</code> measures them with Yosys"


def _measured(design: Mapping[str, Any]) -> Mapping[str, Any]:
    m = design.get("measured")
    return m if isinstance(m, Mapping) else {}


def _bundle_clock(bundle: Any) -> float | None:
    """The clock the bundle was built for (its manifest), where the bundle is on this disk."""
    try:
        manifest = json.loads((Path(str(bundle)) / "manifest.json").read_text(encoding="utf-8"))
        return as_float(manifest.get("clock_mhz"))
    except (OSError, ValueError, AttributeError):
        return None


def _board_clock(board: Any) -> float | None:
    """The board file's default clock (the clock the flow builds for unless told otherwise)."""
    try:
        from fpgarec.compile.boards import load_board

        return load_board(str(board)).clock_mhz
    except Exception:  # an unknown board (or no board file) only loses the clock line
        return None


def timing(design: Mapping[str, Any]) -> dict[str, Any]:
    """Latency, queries/s and clock, each as (value, source), measured where measured."""
    m, estimate = _measured(design), design.get("estimate_source") or FINN
    out = {}
    for key in ("latency_us", "queries_per_s"):
        if as_float(m.get(key)) is not None:
            out[key] = (m[key], VERILATOR, design.get(key))
        else:
            out[key] = (design.get(key), estimate, None)
    clock = as_float(design.get("clock_mhz")) or as_float(m.get("clock_mhz"))
    if clock is not None:
        out["clock_mhz"] = (clock, "design")
    elif design.get("bundle") and _bundle_clock(design["bundle"]) is not None:
        out["clock_mhz"] = (_bundle_clock(design["bundle"]), "bundle manifest")
    else:
        out["clock_mhz"] = (_board_clock(design.get("board")), "board file's default clock")
    return out


def resources(design: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per resource: used, available, share, source (Yosys where measured, else FINN)."""
    res = design.get("resources") if isinstance(design.get("resources"), Mapping) else {}
    used = res.get("used") if isinstance(res.get("used"), Mapping) else {}
    avail = res.get("available") if isinstance(res.get("available"), Mapping) else {}
    measured = _measured(design).get("resources")
    measured = measured if isinstance(measured, Mapping) else {}
    estimate = design.get("estimate_source") or FINN
    ref = design.get("reference_synthesis") if isinstance(design.get("reference_synthesis"), Mapping) else {}
    ref_res = ref.get("resources") if isinstance(ref.get("resources"), Mapping) else {}
    rows = []
    for key in RESOURCES:
        finn, reference = as_float(used.get(key)), False
        if as_float(measured.get(key)) is not None:
            value, source = as_float(measured[key]), YOSYS
        elif as_float(ref_res.get(key)) is not None:
            value, source = as_float(ref_res[key]), f"{YOSYS}, committed bundle {ref.get('bundle', '')}".rstrip()
            reference = True
        else:
            value, source = finn, estimate
        cap = as_float(avail.get(key))
        share = value / cap if value is not None and cap else None
        rows.append({"name": key, "used": value, "available": cap, "share": share, "source": source,
                     "finn": finn if source != estimate else None, "reference": reference})
    return rows


def cpu_queries_per_s(design: Mapping[str, Any]) -> float | None:
    """The bit-exact emulation's queries/s on this CPU (numpy, batched)."""
    b = design.get("bitexact") if isinstance(design.get("bitexact"), Mapping) else {}
    q, s = as_float(b.get("queries")), as_float(b.get("emulation_seconds"))
    return q / s if q and s else None


def _bar(row: Mapping[str, Any]) -> str:
    share = row["share"]
    full = share is not None and share > FULL_SHARE
    width = 0 if share is None else min(share, 1.0) * 100
    flag = (f' <strong class="flag">\u26a0 {"does not fit" if share > 1 else "over 80 % of the board"}</strong>'
            if full else "")
    figure = (f"{num(row['used'])} / {num(row['available'])} ({percent(share)})" if share is not None
              else f"{MISSING} / {num(row['available'])} (not estimated)")
    source = row["source"] if row["used"] is not None else f"FINN gives none; {SYNTH_HINT}"
    if row.get("finn") is not None and row["available"]:
        finn_share = row["finn"] / row["available"]
        finn_flag = ("" if finn_share <= FULL_SHARE else
                     f' <strong class="flag">\u26a0 {"does not fit" if finn_share > 1 else "over 80 %"} by FINN\'s estimate</strong>')
        source += f" (FINN estimate {num(row['finn'])} = {percent(finn_share)}{finn_flag})"
    return (f'<div class="res{" full" if full else ""}" data-resource="{esc(row["name"])}">'
            f'<span class="rname">{esc(row["name"])}</span>'
            f'<span class="track"><span class="fill" style="width:{width:.1f}%"></span>'
            f'<span class="limit" title="80 % of the board"></span></span>'
            f'<span class="rfig">{figure}{flag}</span>'
            f'<span class="src">{source}</span></div>')


def _figure(name: str, value: str, source: str, extra: str = "") -> str:
    return (f'<div class="fig"><span class="fname">{name}</span> <span class="fval">{value}</span> '
            f'<span class="src">{esc(source)}</span>{extra}</div>')


def _timing_html(design: Mapping[str, Any]) -> list[str]:
    t = timing(design)
    lat, lat_src, lat_est = t["latency_us"]
    qps, qps_src, qps_est = t["queries_per_s"]
    clock, clock_src = t["clock_mhz"]
    parts = [_figure("Clock", f"{num(clock)} MHz" if clock else MISSING, clock_src),
             _figure("Latency", f'<span id="latency">{num(lat, 2)} \u00b5s</span>', lat_src,
                     f' <span class="note">(FINN estimate {num(lat_est, 2)} \u00b5s)</span>'
                     if lat_est is not None else ""),
             _figure("Throughput", f'<span id="throughput">{num(qps, 0)} queries/s</span>', qps_src,
                     f' <span class="note">(FINN estimate {num(qps_est, 0)})</span>'
                     if qps_est is not None and qps_src == VERILATOR else "")]
    cpu = cpu_queries_per_s(design)
    if cpu is not None:
        speed = (f' <span class="note">(design: {num(as_float(qps) / cpu, 0)}x this)</span>'
                 if as_float(qps) else "")
        parts.append(_figure("CPU baseline", f'<span id="cpu-qps">{num(cpu, 0)} queries/s</span>',
                             CPU, speed))
    return parts


def _resource_note(rows: list[dict[str, Any]], design: Mapping[str, Any]) -> str:
    notes = []
    ref = design.get("reference_synthesis") if isinstance(design.get("reference_synthesis"), Mapping) else {}
    if any(r.get("reference") for r in rows):
        notes.append(f"Resources: {esc(ref.get('source', ''))}; this run did not synthesize its own design "
                     f"({SYNTH_HINT}). FINN's estimate counts DSP48 multipliers for FINN's own MVU, which "
                     "Vivado's stitching would build; fpgarec's RTL puts 4-bit products in LUTs.")
    elif any(r["source"] != YOSYS for r in rows):
        notes.append(f"Resources are FINN's estimates: this run did not synthesize the design; {SYNTH_HINT} "
                     "(no place and route).")
    notes.append("No Vivado place and route ran: no figure here comes from Vivado. "
                 "Bars are drawn against the board's capacity; the tick marks 80 %.")
    skipped = _measured(design).get("skipped")
    if skipped:
        notes.append(f"Whole-design simulation skipped: {esc(skipped)}.")
    return '<p class="note">' + " ".join(notes) + "</p>"


def _checks_html(design: Mapping[str, Any]) -> str:
    m = _measured(design)
    bits = []
    if as_float(m.get("queries")) is not None:
        bits.append(f"Verilator vs emulation: {num(m.get('mismatches'))} mismatches in {num(m.get('queries'))} queries")
    if as_float(design.get("bitexact_queries")) is not None:
        bits.append(f"emulation vs FINN/Brevitas: {num(design.get('bitexact_mismatches'))} mismatches "
                    f"in {num(design.get('bitexact_queries'))} queries")
    delivered = design.get("delivered") if isinstance(design.get("delivered"), Mapping) else {}
    groups = [f"{esc(g)} {num(v.get('ndcg@10'), 4)}" for g, v in delivered.items() if isinstance(v, Mapping)]
    if groups:
        bits.append("the design's own top-10: NDCG@10 " + ", ".join(groups))
    return '<p class="checks">' + "; ".join(bits) + ".</p>" if bits else ""


def design_box(report: Mapping[str, Any]) -> str:
    """The first screen's hardware box, or a short note when the run built no design."""
    design = report.get("design")
    if not isinstance(design, Mapping) or not design:
        return ('<section id="design" class="box"><h2>Hardware design</h2>'
                '<p class="note">This run built no design (no <code>design</code> in report.json).</p></section>')
    rows = resources(design)
    title = f"Hardware design: {esc(design.get('board', 'board ?'))}"
    bundle = design.get("bundle")
    parts = [f'<section id="design" class="box"><h2>{title}</h2>']
    if bundle:
        parts.append(f'<p class="note">bundle <code>{esc(bundle)}</code></p>')
    parts += _timing_html(design)
    parts.append('<div class="resources">' + "".join(_bar(r) for r in rows) + "</div>")
    parts.append(_resource_note(rows, design))
    parts.append(_checks_html(design))
    parts.append("</section>")
    return "".join(parts)


def design_model(report: Mapping[str, Any]) -> str | None:
    """The model the design implements: ``design["model"]``, else the model whose name starts
    the bundle's folder name (``student_w4_pynq-z2`` -> ``student_w4``)."""
    design = report.get("design") if isinstance(report.get("design"), Mapping) else {}
    if design.get("model"):
        return str(design["model"])
    folder = str(design.get("bundle") or "").rstrip("/").rsplit("/", 1)[-1]
    names = [k for k, v in report.items() if isinstance(v, Mapping) and "all" in v and folder.startswith(k + "_")]
    return max(names, key=len) if names else None


def resource_points(report: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Model -> [{"LUT", "DSP", "source"}, ...] for every model whose resources the report
    knows: a model's own ``"resources"`` (the demo's FINN estimate of the students it does not
    build) and the design's model, by FINN's estimate and by Yosys where synthesized (so that
    every model has a figure of one source to compare on)."""
    points: dict[str, list[dict[str, Any]]] = {}
    for name, value in report.items():
        res = value.get("resources") if isinstance(value, Mapping) and "all" in value else None
        if isinstance(res, Mapping):
            points[name] = [{"LUT": as_float(res.get("LUT")), "DSP": as_float(res.get("DSP")),
                             "source": str(res.get("source", "source not given"))}]
    model = design_model(report)
    if model:
        rows = {r["name"]: r for r in resources(report["design"])}
        lut, dsp = rows["LUT"], rows["DSP"]
        if lut["finn"] is not None or dsp["finn"] is not None:  # the shown figure is Yosys': FINN's too
            estimate = report["design"].get("estimate_source") or FINN
            points.setdefault(model, []).append({"LUT": lut["finn"], "DSP": dsp["finn"],
                                                 "source": f"{estimate} (LUT a lower bound)"})
        if lut["used"] is not None or dsp["used"] is not None:
            points.setdefault(model, []).append({"LUT": lut["used"], "DSP": dsp["used"], "source": lut["source"]})
    return points
