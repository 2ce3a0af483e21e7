"""The aggregation kernel against FINN's MVAU workaround, for one configuration.

Without a reduction kernel, FINN averages K neighbour vectors with an MVAU whose weight matrix
is [I ... I] (K·D x D, the 1/K folded into the next thresholds). This module sizes that MVAU at
the same throughput as the kernel (matrix folds (K·D/SIMD)·(D/PE) <= K·D/PE_kernel cycles,
cheapest such folding by FINN's own LUT estimate) and reports, side by side:

- the MVAU's LUTs as FINN 1.6.1 estimates them (``MVAU_hls.lut_estimation``: the FINN-R cost
  model; LUT multipliers, weights of the smallest datatype holding {0, 1}, i.e. UINT1/BINARY);
- the kernel's LUTs from Yosys (``synth_xilinx -family xc7``, LUT + LUTRAM) and its estimate.

Usage (last line is one JSON object)::

    python -m kernels.neighbor_aggregate.workaround --bundle bitstreams/student_w4_pynq-z2
    python -m kernels.neighbor_aggregate.workaround --k 20 --d 64 --pe 8 --in-dtype INT4 --frac-bits 4
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from kernels.neighbor_aggregate.golden import AggregateParams

log = logging.getLogger(__name__)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, help="take K, D, PE and datatypes from a bundle's NeighborAggregate")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--pe", type=int, default=8)
    ap.add_argument("--in-dtype", default="INT4")
    ap.add_argument("--frac-bits", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("build/workaround"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.bundle:
        p = params_from_bundle(args.bundle)
    else:
        from kernels._params import parse_datatype

        bits, signed = parse_datatype("in-dtype", args.in_dtype)
        p = AggregateParams(k=args.k, d=args.d, pe=args.pe, in_bits=bits, in_signed=signed, mode="mean",
                            frac_bits=args.frac_bits, id_bits=11, null_id=1682)
    mvau = mvau_workaround(p)
    kern = kernel_figures(p, args.work.resolve())
    ratio = kern["LUT"] / mvau["LUT"]
    log.info("K=%d D=%d PE=%d %s mean: kernel %d LUT (Yosys) vs MVAU workaround %d LUT (FINN estimate, PE %d "
             "SIMD %d, %d cycles): %.1f %%", p.k, p.d, p.pe, p.in_datatype, kern["LUT"], mvau["LUT"], mvau["PE"],
             mvau["SIMD"], mvau["cycles"], 100 * ratio)
    print(json.dumps({"config": {"K": p.k, "D": p.d, "PE": p.pe, "in": p.in_datatype, "mode": p.mode},
                      "kernel_yosys": kern, "mvau_workaround_finn_estimate": mvau, "lut_ratio": round(ratio, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
