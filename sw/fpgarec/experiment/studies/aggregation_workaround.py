"""``fpgarec study aggregation-workaround``: the aggregation kernel against FINN's MVAU workaround.

For one configuration (from a bundle's NeighborAggregate layer, or given), the kernel's LUTs
from Yosys beside FINN's estimate of the cheapest [I..I] MVAU meeting the same cycles per query
(:mod:`kernels.neighbor_aggregate.workaround`). The last line is one JSON object::

    fpgarec study aggregation-workaround --bundle bitstreams/student_w4_pynq-z2
    fpgarec study aggregation-workaround --k 20 --d 64 --pe 8 --in-dtype INT4 --frac-bits 4
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    from kernels.neighbor_aggregate.golden import AggregateParams
    from kernels.neighbor_aggregate.workaround import (
        kernel_figures,
        mvau_workaround,
        params_from_bundle,
    )

    ap = argparse.ArgumentParser(prog="fpgarec study aggregation-workaround", description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, help="take K, D, PE and datatypes from a bundle's NeighborAggregate")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--pe", type=int, default=8)
    ap.add_argument("--in-dtype", default="INT4")
    ap.add_argument("--frac-bits", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("build/workaround"))
    args = ap.parse_args(argv)
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
    sys.stdout.write(json.dumps({"config": {"K": p.k, "D": p.d, "PE": p.pe, "in": p.in_datatype, "mode": p.mode},
                                 "kernel_yosys": kern, "mvau_workaround_finn_estimate": mvau,
                                 "lut_ratio": round(ratio, 4)}) + "\n")
    return 0
