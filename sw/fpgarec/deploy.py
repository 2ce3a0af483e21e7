"""``fpgarec deploy``: a self-contained folder to copy onto a PYNQ board.

Layout of ``DIR`` (the bundle's design ``<design>``)::

    README.md             how to copy and run it on the board
    run.py                the run script (``fpgarec/deploy_run.py``): FPGA, --emulate, --check,
                          --throughput; last stdout line one JSON object
    deploy.json           what was deployed: design, board, bitstream status, sha256 of every file
    bundle/<design>/      the bundle, verified (sha256 of every file) before and after the copy
    lib/fpgarec/          __init__.py (minimal), errors.py, runtime/*.py
    lib/kernels/          __init__.py, _params.py, <kernel>/__init__.py, <kernel>/golden.py

``lib/`` is numpy + stdlib only (``pynq`` is imported lazily by the PYNQ backend): the copied
modules are parsed and every import they make at module level must resolve inside ``lib/``, to
numpy or to the standard library, otherwise the deploy is refused naming the file and line.

The folder is built beside ``DIR`` and moved into place at the end; an existing ``DIR`` is
replaced only if it is an earlier deploy (it has ``deploy.json``) or empty.
"""

from __future__ import annotations

import ast
import json
import logging
import shutil
import sys
from pathlib import Path

import fpgarec
from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import MANIFEST, load_bundle, sha256_file

log = logging.getLogger(__name__)

MARKER = "deploy.json"
#: third-party packages the deployed runtime may import (pynq only inside functions)
ALLOWED_THIRD_PARTY = {"numpy"}
LAZY_ONLY = {"pynq", "pynqmetadata"}


class DeployError(FpgarecError):
    """The bundle, the board or the output folder does not allow a deploy."""


def _runtime_sources() -> list[tuple[Path, str]]:
    """``(source file, destination relative to lib/)`` of the runtime and the golden models."""
    import kernels

    pkg = Path(fpgarec.__file__).resolve().parent
    kpkg = Path(kernels.__file__).resolve().parent
    files = [(pkg / "errors.py", "fpgarec/errors.py")]
    files += [(p, f"fpgarec/runtime/{p.relative_to(pkg / 'runtime').as_posix()}")
              for p in sorted((pkg / "runtime").rglob("*.py")) if "__pycache__" not in p.parts]
    files += [(kpkg / name, f"kernels/{name}") for name in ("__init__.py", "_params.py", "registry.py")]
    for sub in sorted(p for p in kpkg.iterdir() if p.is_dir() and (p / "golden.py").is_file()):
        for name in ("__init__.py", "golden.py"):
            if (sub / name).is_file():
                files.append((sub / name, f"kernels/{sub.name}/{name}"))
    return files


_INIT = '''"""fpgarec {version}, deployed subset: the numpy-only runtime (``fpgarec.runtime``) and errors.

Written by ``fpgarec deploy``; the training, compile and service packages are not included.
"""

__version__ = "{version}"
'''


def _module_exists(lib: Path, name: str) -> bool:
    path = lib.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(tree: ast.AST):
    """``(module, line, lazy)`` of every absolute import; ``lazy`` inside a function body."""
    def walk(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, lazy
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield child.module, child.lineno, lazy
            yield from walk(child, inner)

    yield from walk(tree, False)


def check_self_contained(lib: Path) -> list[str]:
    """Refuse (:class:`DeployError`) a module-level import in ``lib`` that is neither in ``lib``,
    numpy nor the standard library; return warnings for such imports inside functions."""
    warnings = []
    stdlib = set(sys.stdlib_module_names)
    for path in sorted(lib.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for module, line, lazy in _imports(tree):
            root = module.split(".")[0]
            if root in stdlib or root in ALLOWED_THIRD_PARTY:
                continue
            if root in ("fpgarec", "kernels") and _module_exists(lib, module):
                continue
            where = f"{path.relative_to(lib)}:{line}"
            if lazy:
                if root not in LAZY_ONLY:
                    warnings.append(f"{where}: imports {module} inside a function; it is not deployed")
                continue
            raise DeployError(f"{where}: imports {module}, which the deployed runtime does not contain "
                              "(the runtime must import numpy and nothing heavier)")
    return warnings


def _readme(manifest: dict, out_name: str) -> str:
    bit = manifest.get("bitstream", {})
    status = ("built: `run.py` drives the FPGA" if bit.get("built") else
              f"**not built** ({bit.get('reason') or 'no bitstream'}): only `python3 run.py --emulate` runs; "
              "rebuild the bundle with Vivado and deploy again for the FPGA")
    est = manifest.get("estimates", {})
    return f"""# {manifest['design']} on a {manifest['board']}

Written by `fpgarec deploy` (fpgarec {fpgarec.__version__}). This folder runs on its own: it needs
Python 3.10+ and numpy, and for the FPGA the `pynq` package and root, which PYNQ board images
provide. Nothing is installed.

- Bitstream: {status}.
- Design: part {manifest['part']}, {manifest.get('clock_mhz')} MHz, {manifest['model']['k']} neighbour ids
  in, top-{manifest['model']['top_k']} of {manifest['model']['n_items']} items out; FINN's estimate
  {est.get('latency_us', '?')} us per query, {est.get('queries_per_s', '?')} queries/s.

## Copy to the board and run

    scp -r {out_name} xilinx@<board>:~/{out_name}
    ssh xilinx@<board>
    sudo -i                                    # pynq maps /dev/mem: root only
    source /etc/profile.d/pynq_venv.sh         # PYNQ 3.x images: the Python that has pynq
    cd /home/xilinx/{out_name}
    python3 run.py                             # 1024 random queries on the FPGA
    python3 run.py --check                     # FPGA vs CPU emulation, bit for bit
    python3 run.py --throughput --seconds 5    # queries/s at --batch 1024
    python3 run.py --ids my_queries.npy --out top.npy
    python3 run.py --emulate                   # the CPU emulation, no FPGA (any machine)
    python3 run.py --history history.npz --user 196 --items 242,302   # by the data set's ids

`--user` / `--items` take the data set's own user and item ids and print the answers by item id
and title; the history file (known users' items and the id maps) is written with
`fpgarec serve BUNDLE --history DATA --save-history history.npz` and copied here. `--ids`,
random queries and `--out` use the design's internal indices.

The last line of stdout is one JSON object (backend, FCLK0 MHz, queries/s, ...). A design that
does not answer within `--timeout` seconds stops with the DMA registers in the message.

## Contents

- `run.py`: the run script (`python3 run.py --help`).
- `bundle/{manifest['design']}/`: the compiled design; `manifest.json` lists the sha256 of every
  file and is checked each time the bundle is opened; the bitstream is re-hashed before loading.
- `lib/`: `fpgarec.runtime` (bundle reader, PYNQ backend, CPU emulation, bit packing) and the
  kernels' golden models, numpy only.
- `deploy.json`: what was deployed, with the sha256 of every file here.
"""


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise DeployError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise DeployError(f"{out}: exists, is not empty and is not an earlier deploy ({MARKER} missing); "
                              "choose another --out")


def deploy(bundle_dir: Path | str, board: str | None, out_dir: Path | str) -> Path:
    """Write the deploy folder of the bundle in ``bundle_dir`` for ``board`` into ``out_dir``.

    The bundle is verified first (sha256 of every file), must be built for ``board`` (None: the
    manifest's board) and for a PYNQ Zynq shell; the copy is verified again. Returns ``out_dir``.
    """
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    if board is not None and board != m["board"]:
        raise DeployError(f"{bundle.root}: the bundle is built for board {m['board']!r}, not {board!r}; "
                          f"rebuild it with `fpgarec build ... --board {board}`")
    if m.get("shell") != "zynq-iodma":
        raise DeployError(f"{bundle.root}: shell {m.get('shell')!r}; deploy writes folders for PYNQ Zynq boards "
                          "(zynq-iodma)")
    out = Path(out_dir)
    _prepare_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        lib = staging / "lib"
        for src, rel in _runtime_sources():
            (lib / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, lib / rel)
        (lib / "fpgarec" / "__init__.py").write_text(_INIT.format(version=fpgarec.__version__))
        for warning in check_self_contained(lib):
            log.warning("deploy: %s", warning)
        dst = staging / "bundle" / m["design"]
        dst.mkdir(parents=True)
        for rel in [MANIFEST, *m["files"]]:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle.root / rel, dst / rel)
        load_bundle(dst)  # the copy passes the same checks
        shutil.copyfile(Path(__file__).with_name("deploy_run.py"), staging / "run.py")
        (staging / "run.py").chmod(0o755)
        (staging / "README.md").write_text(_readme(m, out.name))
        files = {p.relative_to(staging).as_posix(): sha256_file(p)
                 for p in sorted(staging.rglob("*")) if p.is_file()}
        info = {"design": m["design"], "board": m["board"], "part": m["part"], "fpgarec_version": fpgarec.__version__,
                "bundle": f"bundle/{m['design']}", "bitstream_built": bundle.bitstream_built,
                "bitstream_reason": m.get("bitstream", {}).get("reason", ""), "files": files}
        (staging / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    if not bundle.bitstream_built:
        log.warning("deploy: %s has no bitstream (%s): on the board only `run.py --emulate` runs",
                    m["design"], m.get("bitstream", {}).get("reason") or "not built")
    log.info("deploy: %s for %s written to %s (%d files)", m["design"], m["board"], out, len(files))
    return out
