"""The fit check: FINN's resource estimate against the board, before code generation.

Used by :func:`fpgarec.compile.steps.step_generate_estimate_reports`; a design whose estimate
exceeds ``max_utilization`` of any board resource is refused, naming the resource, the layer
that uses most of it and a folding change.
"""

from __future__ import annotations

import json
from pathlib import Path

from fpgarec.compile.config import BuildConfig
from fpgarec.errors import FpgarecError


class DesignDoesNotFitError(FpgarecError):
    """The estimates exceed the board's resources."""


def estimated_totals(report_dir: Path) -> dict:
    """Board-keyed totals (LUT, BRAM18, URAM, DSP) of FINN's ``estimate_layer_resources.json``."""
    res = json.loads((Path(report_dir) / "estimate_layer_resources.json").read_text())
    total = res.get("total", {})
    return {"LUT": float(total.get("LUT", 0)), "BRAM18": float(total.get("BRAM_18K", 0)),
            "URAM": float(total.get("URAM", 0)), "DSP": float(total.get("DSP", 0))}


def check_fit(report_dir: Path, cfg: BuildConfig, model=None) -> None:
    """Raise :class:`DesignDoesNotFitError` if an estimated resource exceeds its allowance.

    LUT counts FINN's estimate plus :func:`fpgarec.compile.folding.lut_floor` for the layers
    FINN estimates at 0 LUT (LabelSelect, GlobalAccPool), when ``model`` is given.
    """
    board = cfg.resolve_board()
    used = estimated_totals(report_dir)
    if model is not None:
        from qonnx.custom_op.registry import getCustomOp

        from fpgarec.compile.folding import lut_floor

        layers_res = json.loads((Path(report_dir) / "estimate_layer_resources.json").read_text())
        for node in model.graph.node:
            if not float(layers_res.get(node.name, {}).get("LUT", 0) or 0):
                used["LUT"] += lut_floor(getCustomOp(node), node.op_type)
    over = [(r, used[r], board.resources[r]) for r in used if used[r] > cfg.max_utilization * board.resources[r]]
    if not over:
        return
    layers = json.loads((Path(report_dir) / "estimate_layer_resources.json").read_text())
    r, amount, avail = over[0]
    key = {"BRAM18": "BRAM_18K"}.get(r, r)
    worst = max((n for n in layers if n != "total"), key=lambda n: float(layers[n].get(key, 0) or 0))
    raise DesignDoesNotFitError(
        f"design does not fit {board.name}: {r} {amount:.0f} of {avail} "
        f"({100 * amount / max(avail, 1):.0f}% > {100 * cfg.max_utilization:.0f}%), most in layer {worst}; "
        f"lower target_qps (now {cfg.target_qps:.0f}) or the latency goal, or give a folding file with a "
        f"smaller PE/SIMD for {worst}"
    )
