"""The accelerator runtime: bundles and backends, with numpy and nothing heavier.

It must run on a PYNQ board image (its own Python 3.10, numpy 1.x) as well as here, so no
module under ``fpgarec.runtime`` imports torch, finn, qonnx or brevitas.

- :mod:`fpgarec.runtime.bundle`: read and verify a compiled design (``manifest.json``, ``.npy``)
- :mod:`fpgarec.runtime.emulation`: bit-exact CPU execution of a bundle's HW layers
- :mod:`fpgarec.runtime.packing`: FINN's packed stream layout, vectorised (bench against
  finn-plus' own functions: :mod:`fpgarec.compile.bench_packing`)
"""

from fpgarec.runtime.bundle import Bundle, BundleError, load_bundle
from fpgarec.runtime.emulation import EmulationBackend, tie_rule_topk

__all__ = ["Bundle", "BundleError", "EmulationBackend", "load_bundle", "tie_rule_topk"]
