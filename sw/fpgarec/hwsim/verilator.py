"""Verilator build and run of a stitched design (C++ testbench, no Python in the clock loop).

The testbench (``testbench.cpp`` beside this file) drives the top cycle by cycle from a binary
file of packed input beats and writes the output beats, each query's first-input and last-output
cycle, and the FIFOs' peak occupancies. Builds are cached in ``<cache>/<hash>/`` by the hash of
the generated top, the ROM files, the kernel sources and the Verilator version: a second
``fpgarec sim`` of the same design does not recompile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.hwsim.stitch import TOP, Design
from kernels import hwtools

log = logging.getLogger(__name__)

TESTBENCH = Path(__file__).with_name("testbench.cpp")


class SimulationError(FpgarecError):
    """The simulation could not be built or run, or the design stalled."""


def _words(width: int) -> int:
    return max(1, -(-width // 32))


def _ctype_access(name: str, width: int, words: str, write: bool) -> str:
    """C++ statements moving a ``width``-bit Verilator port to/from uint32 words ``w``."""
    port = f"t->{name}"
    if width <= 32:
        return f"{port} = {words}[0];" if write else f"{words}[0] = (uint32_t){port};"
    if width <= 64:
        return (f"{port} = ((uint64_t){words}[1] << 32) | {words}[0];" if write else
                f"{words}[0] = (uint32_t){port}; {words}[1] = (uint32_t)({port} >> 32);")
    n = _words(width)
    body = f"{port}[i] = {words}[i];" if write else f"{words}[i] = {port}[i];"
    return f"for (int i = 0; i < {n}; i++) {body}"


def tb_config(design: Design) -> str:
    """The generated ``tb_config.h``: beat shapes and port accessors of ``design``."""
    nf = len(design.fifos)
    occ_w = 16 * nf
    n_in = len(design.inputs)
    lines = [
        "#pragma once",
        f"#define N_INPUTS {n_in}",
        f"static const long IN_BEATS[N_INPUTS] = {{{', '.join(str(i.beats) for i in design.inputs)}}};",
        f"static const long IN_WORDS[N_INPUTS] = {{{', '.join(str(_words(i.width)) for i in design.inputs)}}};",
        f"#define OUT_BEATS {design.out_beats}",
        f"#define OUT_WORDS {_words(design.out_width)}",
        f"#define N_FIFOS {nf}",
        "static inline void set_valid(Vdesign_top* t, int i, bool v) {",
        *(f"  if (i == {i}) t->in{i}_V_TVALID = v;" for i in range(n_in)),
        "}",
        "static inline bool get_ready(Vdesign_top* t, int i) {",
        *(f"  if (i == {i}) return t->in{i}_V_TREADY;" for i in range(n_in)),
        "  return false;",
        "}",
        "static inline void set_in(Vdesign_top* t, int i, const uint32_t* w) {",
        *(f"  if (i == {i}) {{ {_ctype_access(f'in{i}_V_TDATA', inp.width, 'w', True)} }}"
          for i, inp in enumerate(design.inputs)),
        "}",
        "static inline void get_out(Vdesign_top* t, uint32_t* w) { "
        + _ctype_access("out0_V_TDATA", design.out_width, "w", False) + " }",
        *_out1_config(design),
        "static inline void get_occupancy(Vdesign_top* t, unsigned* occ) {",
        f"  uint32_t w[{_words(occ_w)}];",
        "  " + _ctype_access("dbg_occupancy", occ_w, "w", False),
        f"  for (int i = 0; i < {nf}; i++) occ[i] = (w[i / 2] >> (16 * (i % 2))) & 0xffffu;",
        "}",
        "",
    ]
    return "\n".join(lines)


def _out1_config(design: Design) -> list[str]:
    """tb_config.h lines of the second output (``HAS_OUT1`` designs): its beats per query, words
    per beat and reader; none for a design without it."""
    o = design.out1
    if o is None:
        return []
    return [f"#define OUT1_BEATS {o.beats}", f"#define OUT1_WORDS {_words(o.width)}",
            "static inline void get_out1(Vdesign_top* t, uint32_t* w) { "
            + _ctype_access("out1_V_TDATA", o.width, "w", False) + " }"]


def design_hash(design: Design) -> str:
    h = hashlib.sha256()
    h.update(design.top_sv.encode())
    for name in sorted(design.mem_files):
        h.update(name.encode())
        h.update("\n".join(design.mem_files[name]).encode())
    h.update(hwtools.sources_digest(design.sources).encode())
    h.update(TESTBENCH.read_bytes())
    h.update(tb_config(design).encode())
    return h.hexdigest()[:16]


@dataclass
class Build:
    """A built simulator: its folder (the ROM files live there; it is the run's working
    folder) and executable."""

    folder: Path
    exe: Path
    seconds: float
    cached: bool


#: widest constant Verilator accepts (its default, 65,536 bits, is below an 8-bit design's
#: per-channel thresholds: 64 channels x 255 steps x 16 bits = 261,120 bits in one parameter)
MAX_NUM_WIDTH = 1 << 22


def build(design: Design, cache: Path, jobs: int = 2) -> Build:
    """Verilate and compile ``design`` (cached by :func:`design_hash`)."""
    env = hwtools.tool_env()
    version = hwtools.verilator_version()
    folder = (cache / f"{TOP}-{design_hash(design)}-{hashlib.sha256(version.encode()).hexdigest()[:6]}").resolve()
    exe = folder / "obj" / "tb"
    if exe.exists() and (folder / "built.ok").exists():
        return Build(folder, exe, 0.0, True)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "tb_config.h").write_text(tb_config(design))
    srcs = [str(s) for s in design.write(folder)]
    cmd = [str(hwtools.verilator_root() / "bin" / "verilator"), "--cc", "--exe", "--build",
           "-O3", "--x-assign", "fast", "--x-initial", "unique", "-Wno-fatal", "-Wno-lint",
           "-Wno-style", "--max-num-width", str(MAX_NUM_WIDTH), "--top-module", TOP, "-Mdir", "obj", "-o", "tb", "-j", str(jobs),
           "-CFLAGS", "-O2", "-CFLAGS", f"-I{folder}",
           *(["-CFLAGS", "-DHAS_OUT1=1"] if design.out1 is not None else []), *srcs, str(TESTBENCH)]
    log.info("verilating %s (%d sources) in %s", TOP, len(srcs), folder)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    (folder / "build.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0 or not exe.exists():
        errors = [line for line in (out.stdout + out.stderr).splitlines() if "%Error" in line or "error:" in line]
        raise SimulationError(f"Verilator build failed (log {folder / 'build.log'}):\n" + "\n".join(errors[:20]))
    (folder / "built.ok").write_text(version)
    return Build(folder, exe, time.perf_counter() - t0, False)


def pack_beats(values: np.ndarray, lanes: int, bits: int) -> np.ndarray:
    """Beats of ``lanes`` x ``bits`` (lane 0 lowest) as uint32 words. Shapes: values
    (beats, lanes) -> (beats, words) uint32."""
    values = np.asarray(values, dtype=np.int64).reshape(-1, lanes)
    nw = _words(lanes * bits)
    out = np.zeros((len(values), nw), dtype=np.uint64)
    mask = (1 << bits) - 1
    for j in range(lanes):
        v = values[:, j].astype(np.uint64) & np.uint64(mask)
        pos = j * bits
        while v.any() or pos < (j + 1) * bits:
            w, off = divmod(pos, 32)
            take = min(32 - off, (j + 1) * bits - pos)
            out[:, w] |= (v & np.uint64((1 << take) - 1)) << np.uint64(off)
            v = v >> np.uint64(take)
            pos += take
            if pos >= (j + 1) * bits:
                break
    return out.astype(np.uint32)


def unpack_beats(words: np.ndarray, lanes: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack_beats`. Shapes: (beats, words) -> (beats, lanes) int64."""
    words = np.asarray(words, dtype=np.uint64)
    out = np.zeros((len(words), lanes), dtype=np.int64)
    for j in range(lanes):
        v = np.zeros(len(words), dtype=np.uint64)
        pos, got = j * bits, 0
        while got < bits:
            w, off = divmod(pos, 32)
            take = min(32 - off, bits - got)
            v |= ((words[:, w] >> np.uint64(off)) & np.uint64((1 << take) - 1)) << np.uint64(got)
            pos += take
            got += take
        x = v.astype(np.int64)
        if signed:
            x = np.where(x >= (1 << (bits - 1)), x - (1 << bits), x)
        out[:, j] = x
    return out


@dataclass
class RunResult:
    outputs: np.ndarray          # (beats, lanes) int64
    stats: dict
    seconds: float
    out1: np.ndarray | None = None  # the second output's beats (beats, lanes) int64, where the design has one


def run(b: Build, design: Design, in_words: list[np.ndarray], n_queries: int, *, gap: float = 0.0,
        backpressure: float = 0.0, seed: int = 0, isolate: bool = False,
        stall_cycles: int = 20_000, max_cycles: int | None = None, interval: int = 0) -> RunResult:
    """Run the testbench on ``in_words`` (per top input, ``n_queries`` x beats of uint32
    words); see testbench.cpp for the options. A design with a second output (out1) gets its
    own output file and independent random back-pressure (``backpressure``)."""
    tag = f"run-{seed}-{int(isolate)}-{gap}-{backpressure}"
    fin, fout, fstats = b.folder / f"{tag}.in", b.folder / f"{tag}.out", b.folder / f"{tag}.json"
    fout1 = b.folder / f"{tag}.out1"
    with open(fin, "wb") as f:
        for words in in_words:
            np.ascontiguousarray(words, dtype="<u4").tofile(f)
    limit = max_cycles or 10_000_000 + 5_000 * n_queries
    cmd = [str(b.exe), fin.name, str(n_queries), fout.name, fstats.name, repr(gap), repr(backpressure),
           str(seed), str(int(isolate)), str(stall_cycles), str(limit), str(interval),
           *([fout1.name] if design.out1 is not None else [])]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=b.folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode not in (0, 3, 4) or not fstats.exists():
        raise SimulationError(f"testbench failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    stats = json.loads(fstats.read_text())
    words = np.fromfile(fout, dtype="<u4").reshape(-1, _words(design.out_width))
    outputs = unpack_beats(words, design.out_lanes, design.out_bits, signed=False)
    out1 = None
    if design.out1 is not None:
        o = design.out1
        out1 = unpack_beats(np.fromfile(fout1, dtype="<u4").reshape(-1, _words(o.width)), o.lanes, o.bits,
                            signed=False)
    for f in (fin, fout, fstats, fout1):
        f.unlink(missing_ok=True)
    return RunResult(outputs, stats, seconds, out1)
