"""``fpgarec study attention-bits``: the attention student at several bit widths as designs
(issue 15 item 4): for each trained student, its accuracy (Brevitas, and the compiled design's
own output through the bit-exact emulation), FINN's estimate, the whole design simulated in
Verilator (cycles per query, latency, mismatches against the emulation, weights included) and
Yosys' synthesis (no place and route); then a chart of accuracy against LUTs and a table.

    fpgarec study attention-student --models attention --bits 8 --distill-weight 0.25 --save build/att_w8
    fpgarec study attention-bits build/att_w8/student_w8_attention.safetensors \\
        build/demo/models/student_w4_attention.safetensors build/att_w2/student_w2_attention.safetensors

Writes ``<out>/attention_bits.{json,md,png}``; the last output line is the JSON. Every figure
names its source; a step that fails (Yosys on the 8-bit thresholds) is reported, not hidden.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from fpgarec.config import DemoConfig
from fpgarec.errors import FpgarecError

log = logging.getLogger(__name__)

YOSYS = "Yosys synthesis (no place and route)"
FINN = "FINN estimate (LUT a lower bound)"


def _accuracy(student, split) -> dict:
    """NDCG@10 / Recall@10 of the student (Brevitas) on all and cold users of the test split."""
    from fpgarec.train.evaluate import evaluate_test

    res = evaluate_test(student, split)
    return {g: {m: round(res[g][m], 4) for m in ("ndcg@10", "recall@10")} for g in ("all", "cold")}


def _build(path: Path, args, attention: bool) -> Path:
    from fpgarec.compile.config import BuildConfig
    from fpgarec.compile.flow import build

    cfg = BuildConfig(board=args.board, output_dir=args.out / "bitstreams", build_dir=args.out / "finn" / path.stem,
                      folding_file=args.folding_file if attention else None, pad_items_multiple=48,
                      exclude_seen=True, emit_weights=attention, check_fit=False, vivado="skip")
    return build(path, cfg, progress=False)


def _synthesis(bundle_dir: Path, args) -> dict:
    """Yosys' totals of the stitched design (FIFO depths from the simulation), or why not."""
    from fpgarec.hwsim.stitch import stitch
    from fpgarec.hwsim.synth import synthesize
    from fpgarec.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    try:
        syn = synthesize(stitch(bundle, bundle.manifest["rtl"]["fifo_depths"]), bundle.manifest["part"],
                         args.cache, timeout_s=args.synth_timeout * 60)
    except Exception as exc:  # noqa: BLE001 - a failed synthesis is a result of the study, reported
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.error("%s: synthesis failed: %s", bundle_dir.name, first)
        return {"failed": first}
    t = syn.total
    return {"LUT": t["LUT"] + t["LUTRAM"], "LUTRAM": t["LUTRAM"], "FF": t["FF"], "DSP": t["DSP"],
            "BRAM18": t["BRAM18"], "seconds": round(syn.seconds, 1), "cached": syn.cached, "source": YOSYS}


def design_entry(path: Path, prep, args) -> dict:
    """Everything the study measures of one student (see the module docstring)."""
    from fpgarec.compile.design_metrics import design_test_metrics
    from fpgarec.data.behaviour import BehaviourLog
    from fpgarec.hwsim.measure import measure
    from fpgarec.train.checkpoint import load_student

    student = load_student(path)
    blog = BehaviourLog.from_data(prep.data)
    if student.attention:
        student.use_behaviour(blog)  # the types it was trained to read
    entry: dict = {"student": str(path), "bits": student.shape.weight_bits,
                   "aggregation": "attention" if student.attention else "mean",
                   "accuracy": {"student": _accuracy(student, prep.standard),
                                "source": "measured on this CPU (Brevitas), test split"}}
    t0 = time.perf_counter()
    bundle = _build(path, args, student.attention)
    est = json.loads((bundle / "manifest.json").read_text())["estimates"]
    entry["bundle"] = str(bundle)
    entry["finn"] = {**{k: est["resources"]["used"][k] for k in ("LUT", "DSP", "BRAM18")},
                     "cycles_per_query": est["max_cycles"], "latency_cycles": est["latency_cycles"], "source": FINN}
    delivered = design_test_metrics(bundle, prep.standard, types=blog.aligned(prep.standard.known_before_test())[0])
    entry["accuracy"]["design"] = {g: {"ndcg@10": round(delivered[g]["ndcg@10"], 4)} for g in ("all", "cold")}
    sim = measure(bundle, queries=args.queries, record=True, cache=args.cache)
    entry["simulation"] = {k: sim[k] for k in ("queries", "mismatches", "cycles_per_query", "latency_cycles",
                                                "queries_per_s", "clock_mhz") if k in sim}
    entry["simulation"]["weight_mismatches"] = sim.get("weight_mismatches")
    entry["simulation"]["source"] = "Verilator simulation"
    entry["synthesis"] = _synthesis(bundle, args) if args.synth else {"failed": "not run (--no-synth)"}
    entry["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("%s: %s", path.stem, json.dumps(entry))
    return entry


def plot(entries: list[dict], path: Path) -> None:
    """NDCG@10 (all and cold users) against LUTs: FINN's estimate for every design (hollow, a
    lower bound) and Yosys' count where synthesized (filled), so designs compare on one
    source; each design labelled with its bits and its simulated cycles per query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(9, 5.2))
    colors = {"all": "#1f77b4", "cold": "#ff7f0e"}
    for group, color in colors.items():
        for e in entries:
            y = e["accuracy"]["student"][group]["ndcg@10"]
            ax.scatter([e["finn"]["LUT"]], [y], s=60, color="white", edgecolors=color, linewidths=1.5, zorder=3)
            if "LUT" in e["synthesis"]:
                ax.scatter([e["synthesis"]["LUT"]], [y], s=60, color=color, zorder=3)
                ax.plot([e["finn"]["LUT"], e["synthesis"]["LUT"]], [y, y], color=color, alpha=0.3, linewidth=1)
    for e in entries:
        lut = e["synthesis"].get("LUT", e["finn"]["LUT"])
        cyc = e["simulation"].get("cycles_per_query")
        ax.annotate(f"w{e['bits']}: {cyc:.0f} cycles/query" + ("" if "LUT" in e["synthesis"] else ", not synthesized"),
                    (lut, e["accuracy"]["student"]["all"]["ndcg@10"]), xytext=(0, 8), textcoords="offset points",
                    fontsize=8, ha="center")
    handles = [Line2D([], [], color=c, marker="o", linestyle="", label=f"{g} users") for g, c in colors.items()]
    handles += [Line2D([], [], color="#555", marker="o", linestyle="", label=YOSYS),
                Line2D([], [], color="#555", marker="o", markerfacecolor="white", linestyle="", label=FINN)]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel("LUT (incl. LUTRAM for Yosys)")
    same = all(e["accuracy"]["design"][g]["ndcg@10"] == e["accuracy"]["student"][g]["ndcg@10"]
               for e in entries for g in colors)
    ax.set_ylabel("test NDCG@10" + (" (the designs' own output: the same)" if same else " (Brevitas)"), fontsize=9)
    ax.set_title("Attention student: accuracy against LUTs, per bit width (one seed; cycles: Verilator)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(entries: list[dict]) -> str:
    """The study's figures as a Markdown table, one column per student."""
    def row(name, f):
        return f"| {name} | " + " | ".join(f(e) for e in entries) + " |"

    def syn(e, key):
        s = e["synthesis"]
        return f"{s[key]:,}" if key in s else f"— ({s['failed'].rstrip(':')})" if key == "LUT" else "—"

    lines = ["| | " + " | ".join(f"w{e['bits']} {e['aggregation']}" for e in entries) + " | source |",
             "|---" * (len(entries) + 2) + "|",
             row("NDCG@10 all / cold (student)", lambda e: "{} / {}".format(
                 *(e["accuracy"]["student"][g]["ndcg@10"] for g in ("all", "cold")))) + " measured on this CPU |",
             row("NDCG@10 all / cold (the design's own output)", lambda e: "{} / {}".format(
                 *(e["accuracy"]["design"][g]["ndcg@10"] for g in ("all", "cold")))) + " bit-exact emulation |",
             row("RTL vs emulation mismatches (top-k / weights)", lambda e: "{} / {} of {:,}".format(
                 e["simulation"]["mismatches"], e["simulation"].get("weight_mismatches"),
                 e["simulation"]["queries"])) + " Verilator simulation |",
             row("cycles/query, latency (cycles)", lambda e: "{:.0f}, {}".format(
                 e["simulation"]["cycles_per_query"], e["simulation"]["latency_cycles"])) + " Verilator simulation |",
             row("LUT (incl. LUTRAM) / FF / DSP / BRAM18", lambda e: " / ".join(
                 syn(e, k) for k in ("LUT", "FF", "DSP", "BRAM18"))) + f" {YOSYS} |",
             row("LUT / DSP / BRAM18", lambda e: " / ".join(
                 f"{e['finn'][k]:,.0f}" for k in ("LUT", "DSP", "BRAM18"))) + f" {FINN} |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="fpgarec study attention-bits", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("students", type=Path, nargs="+", help="trained students (<name>.safetensors + <name>.json)")
    ap.add_argument("--out", type=Path, default=Path("build/attention-bits"), help="output folder")
    ap.add_argument("--board", default="pynq-z2", help="board the designs are built for")
    ap.add_argument("--folding-file", type=Path, default=Path("hw/folding/student_w4_attention.json"),
                    help="folding of the attention designs (the demo design's)")
    ap.add_argument("--queries", type=int, default=10_000, help="queries of each Verilator simulation")
    ap.add_argument("--no-synth", dest="synth", action="store_false", help="skip Yosys")
    ap.add_argument("--synth-timeout", type=float, default=25.0, help="minutes Yosys may take per design")
    ap.add_argument("--cache", type=Path, default=Path("build/rtlsim"), help="Verilator and Yosys build cache")
    ap.add_argument("--data", type=Path, default=None, help="RecBole folder (default: ML-100k from recbole)")
    args = ap.parse_args(argv)
    for path in args.students:
        if not path.is_file():
            raise FpgarecError(f"{path}: student not found")
    from fpgarec.experiment.tasks import prepared

    prep = prepared(DemoConfig(data=args.data, workers=1, progress=False, build_design=False))
    entries = [design_entry(p, prep, args) for p in args.students]
    entries.sort(key=lambda e: -e["bits"])
    args.out.mkdir(parents=True, exist_ok=True)
    plot(entries, args.out / "attention_bits.png")
    (args.out / "attention_bits.md").write_text(table(entries))
    result = {"designs": entries, "chart": str(args.out / "attention_bits.png"),
              "table": str(args.out / "attention_bits.md")}
    (args.out / "attention_bits.json").write_text(json.dumps(result, indent=1))
    sys.stdout.write(json.dumps(result) + "\n")  # the command's one output line
    return 0
