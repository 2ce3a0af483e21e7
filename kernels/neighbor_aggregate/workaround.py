"""The aggregation kernel against FINN's MVAU workaround, for one configuration.

Without a reduction kernel, FINN averages K neighbour vectors with an MVAU whose weight matrix
is [I ... I] (K·D x D, the 1/K folded into the next thresholds). This module sizes that MVAU at
the same throughput as the kernel (matrix folds (K·D/SIMD)·(D/PE) <= K·D/PE_kernel cycles,
cheapest such folding by FINN's own LUT estimate) and reports, side by side:

- the MVAU's LUTs as FINN 1.6.1 estimates them (``MVAU_hls.lut_estimation``: the FINN-R cost
  model; LUT multipliers, weights of the smallest datatype holding {0, 1}, i.e. UINT1/BINARY);
- the kernel's LUTs from Yosys (``synth_xilinx -family xc7``, LUT + LUTRAM) and its estimate.

Run it as ``fpgarec study aggregation-workaround`` (fpgarec.experiment.studies); this module
only computes (kernels never import fpgarec).
"""

from __future__ import annotations

import json
from pathlib import Path

from kernels.neighbor_aggregate.golden import AggregateParams

PART = "xc7z020clg400-1"


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def mvau_workaround(p: AggregateParams, part: str = PART) -> dict:
    """FINN's estimate of the cheapest [I..I] MVAU that meets the kernel's cycles per query."""
    import finn.custom_op.fpgadataflow.hls  # noqa: F401 - registers the HLS variants
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    mw, mh = p.k * p.d, p.d
    best = None
    for pe in _divisors(mh):
        for simd in _divisors(mw):
            cycles = (mw // simd) * (mh // pe)
            if cycles > p.expected_cycles():
                continue
            node = helper.make_node(
                "MVAU_hls", ["x", "w"], ["y"], domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow",
                MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=p.in_datatype, weightDataType="BINARY",
                outputDataType=f"INT{p.in_bits + 5 + p.k.bit_length()}", noActivation=1, binaryXnorMode=0,
                mem_mode="internal_decoupled", ram_style="auto", resType="lut", numInputVectors=[1],
            )
            op = getCustomOp(node)
            luts = int(op.lut_estimation(part))
            if best is None or luts < best["LUT"]:
                best = {"LUT": luts, "BRAM18": int(op.bram_estimation(part)), "DSP": int(op.dsp_estimation(part)),
                        "PE": pe, "SIMD": simd, "cycles": cycles, "MW": mw, "MH": mh}
    return best


def kernel_figures(p: AggregateParams, workdir: Path) -> dict:
    """The kernel's Yosys cell counts (LUT includes LUTRAM) and its estimate."""
    from kernels import hwtools
    from kernels.neighbor_aggregate.resources import estimate

    hwtools.setup_env()
    stat = hwtools.yosys_stat(hwtools.SOURCES["neighbor_aggregate"], "neighbor_aggregate",
                              hwtools.aggregate_hdl_params(p), workdir)
    return {"LUT": stat["LUT"] + stat.get("LUTRAM", 0), "FF": stat["FF"], "DSP": stat["DSP"],
            "BRAM18": stat["BRAM18"], "estimate": estimate(p), "cycles": p.expected_cycles()}


def params_from_bundle(bundle: Path) -> AggregateParams:
    from kernels.neighbor_aggregate.golden import params_from_attrs

    manifest = json.loads((Path(bundle) / "manifest.json").read_text())
    layer = next(layer for layer in manifest["layers"] if layer["op"] == "NeighborAggregate")
    return params_from_attrs(lambda a: layer["attrs"][a])
