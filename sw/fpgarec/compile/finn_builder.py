"""FINN's ``DataflowBuildConfig`` for a :class:`~fpgarec.compile.config.BuildConfig`.

FINN's builder steps (``finn.builder.build_dataflow_steps``, see :mod:`fpgarec.compile._finn`)
take FINN's own configuration: :func:`finn_config` derives it from ours (board part and shell,
clock, target rate, MVAU implementation preference, folding file, outputs: estimate reports
only, or the stitched IP, bitfile, PYNQ driver and deployment package when Vivado is found),
with FINN's output in ``<work dir>/finn``. One config per distinct ``BuildConfig`` (cached).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fpgarec.compile import _finn
from fpgarec.compile.boards import ShellType
from fpgarec.compile.config import BuildConfig, ImplStyle


@lru_cache(maxsize=8)
def _finn_config_cached(key: str):
    cfg = BuildConfig(**json.loads(key))
    return _make_finn_config(cfg)


def finn_config(cfg: BuildConfig):
    """FINN's ``DataflowBuildConfig`` for ``cfg`` (output in ``<work dir>/finn``)."""
    return _finn_config_cached(json.dumps(cfg.to_json(), sort_keys=True))


def _make_finn_config(cfg: BuildConfig):
    _finn.builder_steps()  # the builder's config module imports the guarded steps module
    from finn.builder.build_dataflow_config import (
        DataflowBuildConfig,
        DataflowOutputType,
        ShellFlowType,
    )

    board = cfg.resolve_board()
    outputs = [DataflowOutputType.ESTIMATE_REPORTS]
    if cfg.vivado_path() is not None:
        outputs += [DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE,
                    DataflowOutputType.PYNQ_DRIVER, DataflowOutputType.DEPLOYMENT_PACKAGE]
    shell = ShellFlowType.VITIS_ALVEO if board.shell is ShellType.VITIS_ALVEO else ShellFlowType.VIVADO_ZYNQ
    out = Path(cfg.work_dir(cfg.design or "model")).resolve() / "finn"
    out.mkdir(parents=True, exist_ok=True)
    spec = None
    if cfg.mvau_impl is not ImplStyle.AUTO:
        spec = out / "specialize_layers.json"
        spec.write_text(json.dumps({"Defaults": {"preferred_impl_style": [cfg.mvau_impl.value, ["MVAU"]]}}))
    kwargs = dict(
        output_dir=str(out), synth_clk_period_ns=cfg.clock_period_ns(), fpga_part=board.part,
        board=board.finn_board or None, shell_flow_type=shell, target_fps=int(cfg.target_qps),
        mvau_wwidth_max=cfg.mvau_wwidth_max, standalone_thresholds=True, generate_outputs=outputs,
        folding_config_file=cfg.folding_file.resolve() if cfg.folding_file else None,
        specialize_layers_config_file=spec, save_intermediate_models=False,
    )
    if board.platform:
        kwargs["vitis_platform"] = board.platform
    return DataflowBuildConfig(**kwargs)
