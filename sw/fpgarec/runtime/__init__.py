"""The accelerator runtime: bundles and backends, with numpy and nothing heavier.

It must run on a PYNQ board image (its own Python 3.10, numpy 1.x) as well as here, so no
module under ``fpgarec.runtime`` imports torch, finn, qonnx or brevitas.

- :mod:`fpgarec.runtime.bundle`: read and verify a compiled design (``manifest.json``, ``.npy``)
- :mod:`fpgarec.runtime.emulation`: bit-exact CPU execution of a bundle's HW layers
- :mod:`fpgarec.runtime.topk`: the top-k tie rule (equal scores: lower index first)
- :mod:`fpgarec.runtime.accelerator`: the one API over the backends (PYNQ board, emulation, FINN)
- :mod:`fpgarec.runtime.sampler`: the host sampler (K neighbour ids per query, O(K))
- :mod:`fpgarec.runtime.ids`: the data set's user and item ids <-> internal indices, item titles
- :mod:`fpgarec.runtime.pynq_backend`: the PYNQ backend: buffers and FINN's IODMA protocol
- :mod:`fpgarec.runtime.pynq_overlay`: loading a design on the board (bitstream checks, overlay, FCLK0)
- :mod:`fpgarec.runtime.packing`: FINN's packed stream layout, vectorised (bench against
  finn-plus' own functions: :mod:`fpgarec.compile.bench_packing`)
"""

from fpgarec.runtime.accelerator import Accelerator
from fpgarec.runtime.bundle import Bundle, BundleError, load_bundle
from fpgarec.runtime.emulation import EmulationBackend
from fpgarec.runtime.ids import IdMap
from fpgarec.runtime.sampler import History, HostSampler
from fpgarec.runtime.topk import tie_rule_topk

__all__ = ["Accelerator", "Bundle", "BundleError", "EmulationBackend", "History", "IdMap", "HostSampler", "load_bundle",
           "tie_rule_topk"]
