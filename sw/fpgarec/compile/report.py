"""The design report: cycles, resources, latency, throughput and the MAC bound of a bundle.

All numbers are FINN's analytical estimates until a board measures them:

- per-layer cycles c_l (``get_exp_cycles``: e.g. an MVAU takes (MH/PE)·(MW/SIMD) cycles);
- latency = Σ_l c_l / f_clk (FINN's critical path: no overlap between layers, pessimistic);
- throughput = f_clk / max_l c_l queries per second (the slowest layer sets the pace);
- MAC bound: the MAC units instantiated do Σ_MVAU PE·SIMD multiply-accumulates per cycle and a
  query needs Σ_MVAU MH·MW, so no folding of these units runs faster than
  f_clk · (MACs per cycle) / (MACs per query) queries per second;
- resources against the board's totals. FINN does not estimate flip-flops and reports 0 LUT
  for several HLS layers and for the DSP-based RTL MVAU, so LUT totals understate the design.

The report is built from the manifest alone (``fpgarec.runtime`` reads it), so it needs no FINN.
"""

from __future__ import annotations

import json
from pathlib import Path

from fpgarec.compile.boards import RESOURCE_KEYS
from fpgarec.runtime.bundle import BundleError, write_text_safely

ESTIMATE_NOTE = ("estimates from FINN's analytical models (cycles and resources), not measurements; "
                 "FINN estimates no flip-flops and 0 LUT for some layers, so LUT is a lower bound")


def design_estimates(layers: list[dict], layer_resources: dict, clock_mhz: float,
                     available: dict, critical_path_cycles: int | None = None) -> dict:
    """The ``estimates`` object of a manifest from its layers and FINN's per-layer resources.

    ``layers``: manifest layers (``name``, ``op``, ``attrs``, ``cycles``); ``layer_resources``:
    FINN's ``estimate_layer_resources.json`` (``BRAM_18K``, ``LUT``, ``URAM``, ``DSP`` per layer).
    """
    f = clock_mhz * 1e6
    cycles = {layer["name"]: int(layer["cycles"]) for layer in layers}
    latency = int(critical_path_cycles) if critical_path_cycles else sum(cycles.values())
    slowest = max(cycles, key=cycles.get)
    macs_q = sum(int(layer["attrs"]["MH"]) * int(layer["attrs"]["MW"]) for layer in layers if layer["op"] == "MVAU")
    macs_c = sum(int(layer["attrs"]["PE"]) * int(layer["attrs"]["SIMD"]) for layer in layers if layer["op"] == "MVAU")
    per_layer = {}
    used = dict.fromkeys(RESOURCE_KEYS, 0.0)
    for layer in layers:
        est = layer_resources.get(layer["name"], {})
        res = {"LUT": float(est.get("LUT", 0) or 0), "FF": None, "BRAM18": float(est.get("BRAM_18K", 0) or 0),
               "URAM": float(est.get("URAM", 0) or 0), "DSP": float(est.get("DSP", 0) or 0)}
        for r in ("LUT", "BRAM18", "URAM", "DSP"):
            used[r] += res[r]
        per_layer[layer["name"]] = {"op": layer["op"], "impl": layer.get("impl", ""), "cycles": cycles[layer["name"]],
                                    "folding": {k: layer["attrs"][k] for k in ("PE", "SIMD") if k in layer["attrs"]},
                                    "resources": res}
    used["FF"] = None
    # LUT with a rough floor for layers FINN estimates at 0 LUT although they grow with PE
    lut_floor = sum(float(layer.get("lut_floor", 0)) for layer in layers
                    if not float(layer_resources.get(layer["name"], {}).get("LUT", 0) or 0))
    util = {r: (used[r] / available[r] if used[r] is not None and available.get(r) else None) for r in RESOURCE_KEYS}
    mac_cycles = macs_q / macs_c if macs_c else None
    return {
        "clock_mhz": clock_mhz,
        "latency_cycles": latency,
        "latency_us": latency / clock_mhz,
        "max_cycles": cycles[slowest],
        "slowest_layer": slowest,
        "queries_per_s": f / cycles[slowest],
        "macs_per_query": macs_q,
        "macs_per_cycle": macs_c,
        "mac_bound_cycles": mac_cycles,
        "mac_bound_queries_per_s": f / mac_cycles if mac_cycles else None,
        "resources": {"used": used, "available": dict(available), "utilization": util,
                      "LUT_with_floor": used["LUT"] + lut_floor},
        "layers": per_layer,
        "note": ESTIMATE_NOTE,
    }


def format_report(manifest: dict) -> str:
    """The report as text (one table of layers, then totals)."""
    e = manifest["estimates"]
    lines = [
        f"design {manifest['design']}  board {manifest['board']} ({manifest['part']})  clock {e['clock_mhz']:g} MHz",
        f"{'layer':<26}{'op':<15}{'PE':>5}{'SIMD':>6}{'cycles':>8}{'LUT':>8}{'BRAM18':>8}{'URAM':>6}{'DSP':>6}",
    ]
    for name, layer in e["layers"].items():
        r, fo = layer["resources"], layer["folding"]
        lines.append(f"{name:<26}{layer['op']:<15}{fo.get('PE', ''):>5}{fo.get('SIMD', ''):>6}{layer['cycles']:>8}"
                     f"{r['LUT']:>8.0f}{r['BRAM18']:>8.0f}{r['URAM']:>6.0f}{r['DSP']:>6.0f}")
    used, avail = e["resources"]["used"], e["resources"]["available"]
    parts = []
    for res in RESOURCE_KEYS:
        if used[res] is None:
            parts.append(f"{res} n/a of {avail[res]}")
        else:
            pct = f" ({100 * used[res] / avail[res]:.0f}%)" if avail.get(res) else ""
            parts.append(f"{res} {used[res]:.0f} of {avail[res]}{pct}")
    lut_f = e["resources"].get("LUT_with_floor")
    lines += [
        "resources: " + ", ".join(parts),
        f"LUT including a rough floor for layers FINN estimates at 0 LUT: {lut_f:.0f}" if lut_f is not None else "",
        f"latency {e['latency_us']:.2f} us ({e['latency_cycles']} cycles), throughput {e['queries_per_s']:,.0f} queries/s "
        f"(slowest layer {e['slowest_layer']}, {e['max_cycles']} cycles)",
    ]
    if e.get("mac_bound_cycles"):
        lines.append(f"MAC bound: {e['macs_per_query']:,} MACs/query / {e['macs_per_cycle']:,} MACs/cycle = "
                     f"{e['mac_bound_cycles']:.0f} cycles -> at most {e['mac_bound_queries_per_s']:,.0f} queries/s")
    lines += format_measured(manifest)
    bit = manifest.get("bitstream", {})
    lines.append("bitstream: " + ("built" if bit.get("built") else f"not built ({bit.get('reason', '')})"))
    lines.append("NOTE: " + e["note"] + "; the measured section (Verilator simulation, Yosys synthesis) "
                 "replaces them where present; a board measurement replaces both.")
    return "\n".join(line for line in lines if line)


def format_measured(manifest: dict) -> list[str]:
    """Estimate and measurement side by side: per layer FINN's cycles and resources next to the
    RTL kernel's cycles and Yosys' cells, then the whole design's simulated latency and
    throughput next to FINN's estimate. Empty if the bundle has no measurements."""
    m = manifest.get("measured")
    if not m or "simulation" not in m:
        return []
    e, sim, syn = manifest["estimates"], m["simulation"], m.get("synthesis")
    out = ["", "estimate vs measurement (FINN estimate | RTL: kernel cycles, checked in simulation | "
               "Yosys synthesis, no place and route)",
           f"{'layer':<26}{'FINN cyc':>9}{'RTL cyc':>8}{'FINN LUT':>9}{'Yosys LUT':>10}{'FF':>7}"
           f"{'FINN BRAM':>10}{'BRAM18':>7}{'FINN DSP':>9}{'DSP':>5}{'depth':>9}"]
    for name, layer in e["layers"].items():
        r = layer["resources"]
        y = (syn or {}).get("layers", {}).get(name, {})
        d = (syn or {}).get("logic_depth", {}).get(name)
        depth = f"{d['lut_levels']}L+{d['carry_cells']}C" if d else "-"
        rtl_c = sim.get("layer_cycles", {}).get(name, "-")
        lut = y.get("LUT", 0) + y.get("LUTRAM", 0) if y else "-"
        out.append(f"{name:<26}{layer['cycles']:>9}{rtl_c:>8}{r['LUT']:>9.0f}{lut:>10}{y.get('FF', '-'):>7}"
                   f"{r['BRAM18']:>10.0f}{y.get('BRAM18', '-'):>7}{r['DSP']:>9.0f}{y.get('DSP', '-'):>5}{depth:>9}")
    if syn:
        y = syn["layers"].get("streams")
        if y:
            d = syn["logic_depth"].get("streams")
            out.append(f"{'FIFOs and width converters':<26}{'':>9}{'':>8}{'':>9}{y['LUT'] + y['LUTRAM']:>10}"
                       f"{y['FF']:>7}{'':>10}{y['BRAM18']:>7}{'':>9}{y['DSP']:>5}"
                       f"{(str(d['lut_levels']) + 'L+' + str(d['carry_cells']) + 'C') if d else '-':>9}")
        t, avail = syn["total"], e["resources"]["available"]
        parts = []
        for key, val in (("LUT", t["LUT"] + t["LUTRAM"]), ("FF", t["FF"]), ("BRAM18", t["BRAM18"]),
                         ("URAM", t["URAM"]), ("DSP", t["DSP"])):
            pct = f" ({100 * val / avail[key]:.0f}%)" if avail.get(key) else ""
            parts.append(f"{key} {val:,} of {avail.get(key, 0):,}{pct}")
        worst = max(syn["logic_depth"].values(), key=lambda d: (d["lut_levels"], d["carry_cells"]), default=None)
        out.append(f"Yosys synthesis ({syn['family']}, no place and route): " + ", ".join(parts))
        if worst:
            out.append(f"deepest register-to-register path: {worst['lut_levels']} LUT levels + "
                       f"{worst['carry_cells']} carry cells (100 MHz on a -1 xc7 allows about "
                       f"{syn['max_lut_levels_at_100mhz']} LUT levels plus a carry chain)")
    out.append(f"Verilator simulation of the whole design ({sim['queries']:,} queries, {sim['mismatches']} "
               f"mismatches against the emulation): latency {sim['latency_us']:.2f} us ({sim['latency_cycles']} "
               f"cycles; FINN estimate {e['latency_us']:.2f} us), throughput {sim['queries_per_s']:,.0f} "
               f"queries/s ({sim['cycles_per_query']:g} cycles/query; FINN estimate {e['queries_per_s']:,.0f})")
    if e.get("mac_bound_cycles"):
        out.append(f"MAC bound {e['mac_bound_cycles']:.0f} cycles/query: the simulated design reaches "
                   f"{100 * e['mac_bound_cycles'] / sim['cycles_per_query']:.0f}% of it")
    return out


def report_json(manifest: dict) -> dict:
    """The machine-readable report (the manifest's estimates plus identity fields)."""
    return {"design": manifest["design"], "board": manifest["board"], "part": manifest["part"],
            "bitstream_built": bool(manifest.get("bitstream", {}).get("built")), **manifest["estimates"],
            **({"measured": manifest["measured"]} if manifest.get("measured") else {})}


def write_report(manifest: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.txt`` into ``out_dir``; return both paths. Each file is
    written to a temporary file beside it and moved into place; a symlink (the folder or either
    file) is refused, never written through."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise BundleError(f"{out_dir}: is a symlink; refusing to write the report through it")
    out_dir.mkdir(parents=True, exist_ok=True)
    js_text = json.dumps(report_json(manifest), indent=2, sort_keys=True) + "\n"
    txt_text = format_report(manifest) + "\n"
    return (write_text_safely(out_dir / "report.json", js_text), write_text_safely(out_dir / "report.txt", txt_text))


def report(bundle_dir: Path, out_dir: Path | None = None) -> str:
    """``fpgarec report BUNDLE``: verify the bundle and return its report's text; with
    ``out_dir``, also write report.{json,txt} there. The bundle itself is never written (its
    ``reports/`` hold the report of its build), so ``out_dir`` may not lie inside it."""
    from fpgarec.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    where = bundle.root / "manifest.json"
    try:
        text = format_report(bundle.manifest)
        report_json(bundle.manifest)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ZeroDivisionError) as exc:
        raise BundleError(f"{where}: the estimates cannot be reported ({type(exc).__name__}: {exc})") from exc
    if out_dir is not None:
        out = Path(out_dir)
        root = bundle.root.resolve()
        if out.resolve() == root or root in out.resolve().parents:
            raise BundleError(f"{out}: lies inside the bundle {bundle.root}; `fpgarec report` never writes into a "
                              "bundle: choose another --out")
        write_report(bundle.manifest, out)
    return text


def design_summary(bundle_dir: Path, bitexact_queries: int, bitexact_mismatches: int) -> dict:
    """The ``"design"`` object of the demo's report.json."""
    from fpgarec.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    e = bundle.manifest["estimates"]
    used = {k: v for k, v in e["resources"]["used"].items()}
    return {
        "board": bundle.manifest["board"], "latency_us": e["latency_us"], "queries_per_s": e["queries_per_s"],
        "resources": {"used": used, "available": e["resources"]["available"]},
        "bundle": str(bundle.root), "bitexact_queries": int(bitexact_queries),
        "bitexact_mismatches": int(bitexact_mismatches),
        "estimate_source": "FINN estimate",
        **({"measured": measured_summary(bundle.manifest), "layers": layer_table(bundle.manifest)}
           if bundle.manifest.get("measured") else {}),
    }


def layer_table(manifest: dict) -> dict:
    """Per layer, estimate beside measurement: FINN's cycles, LUT, BRAM18 and DSP estimates
    ("finn_*"), the RTL kernel's cycles per query ("rtl_cycles", checked in simulation) and
    Yosys' counts ("yosys_*", where the bundle was synthesized)."""
    e = manifest["estimates"]["layers"]
    m = manifest.get("measured", {})
    sim = m.get("simulation", {}).get("layer_cycles", {})
    syn = m.get("synthesis", {}).get("layers", {})
    out = {}
    for name, layer in e.items():
        r, y = layer["resources"], syn.get(name)
        out[name] = {"finn_cycles": layer["cycles"], "rtl_cycles": sim.get(name),
                     "finn_lut": r["LUT"], "yosys_lut": (y["LUT"] + y["LUTRAM"]) if y else None,
                     "finn_bram18": r["BRAM18"], "yosys_bram18": y["BRAM18"] if y else None,
                     "finn_dsp": r["DSP"], "yosys_dsp": y["DSP"] if y else None}
    return out


def measured_summary(manifest: dict) -> dict:
    """{latency_us, queries_per_s, resources, sources} of a bundle's recorded measurements."""
    m = manifest["measured"]
    return {"latency_us": m.get("latency_us"), "queries_per_s": m.get("queries_per_s"),
            "resources": m.get("resources"), "queries": m.get("simulation", {}).get("queries"),
            "mismatches": m.get("simulation", {}).get("mismatches"),
            "source": "Verilator simulation (latency, queries/s); Yosys synthesis, no place and route (resources)"}
