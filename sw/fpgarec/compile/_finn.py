"""FINN as a library, offline: its settings, its build folder and the ``finn.xsi`` guard.

finn-plus keeps global settings (``finn.util.settings``) that it builds from ``FINN_BUILD_DIR``
and ``FINN_SETTINGS`` the first time they are needed. :func:`use_build_dir` points both at the
build's own work folder (the settings file may be missing; naming it keeps FINN from writing
``~/.finn``) and drops any settings cached by an earlier build in this process.

``import finn.builder.build_dataflow_steps`` does ``from finn.xsi import SimEngine``, which needs
Vivado (``XILINX_VIVADO``); :func:`builder_steps` gives ``finn.xsi`` a placeholder first when
Vivado is absent, so the steps that do not simulate can be used. It also registers the
project's kernels with FINN (:func:`register_kernels`, the table in ``kernels/registry.py``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def use_build_dir(build_dir: Path, vivado: Path | None) -> Path:
    """Point FINN at ``build_dir`` (created, absolute) and return it.

    ``vivado``: the Vivado install the build may use, exported as ``XILINX_VIVADO`` for FINN's
    Vivado stages; None leaves the environment's value alone.
    """
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(build_dir)
    os.environ["FINN_SETTINGS"] = str(build_dir / "finn_settings.yaml")
    if vivado is not None:
        os.environ["XILINX_VIVADO"] = str(vivado)
    import finn.util.settings as settings

    settings._SETTINGS = None  # rebuilt from the variables above on first use
    return build_dir


def builder_steps():
    """``finn.builder.build_dataflow_steps``, importable without Vivado.

    Without Vivado, ``from finn.xsi import SimEngine`` raises (``OSError``, or FINN's
    settings error before :func:`use_build_dir`); the builder only needs the name at import
    time, so ``finn.xsi`` gets a placeholder and the import is retried (RTL simulation stays
    unavailable; any other import problem raises again on the retry).
    """
    try:
        import finn.builder.build_dataflow_steps as steps
    except Exception:  # noqa: BLE001
        import finn.xsi

        finn.xsi.SimEngine = None
        import finn.builder.build_dataflow_steps as steps
    register_kernels()
    return steps


def register_kernels() -> None:
    """Make FINN know the project's kernels (``kernels.finn_registry.register_finn``; idempotent):
    their abstract ops (including ``kernels/lookup``'s Lookup, which executes integer ids behind
    a DuplicateStreams) and their ``_rtl`` backends."""
    from kernels import finn_registry

    finn_registry.register_finn()


def quiet_finn_logging() -> None:
    """FINN logs routine notes as warnings (e.g. on every shape inference of an Unsqueeze with
    an axes input); show FINN's errors only, unless our own logger is at DEBUG."""
    if log.isEnabledFor(logging.DEBUG):
        return
    for name in ("finn_logger", "finn", "qonnx", "onnx_passes", "mip", "mip.model"):
        logging.getLogger(name).setLevel(logging.ERROR)
