"""The kernels as QONNX-level ops: what ``fpgarec.compile.export`` writes into the QONNX file.

Domain ``kernels.qonnx_ops``: qonnx finds an op of this domain by importing this module and
reading its ``custom_op`` dict, which is built from ``kernels.registry`` (each kernel's
``qonnx_op``, e.g. ``kernels/neighbor_aggregate/qonnx_op.py``). Their numpy execution is the
golden model, so the exported QONNX file executes bit-exactly like the hardware; the compile
flow replaces them by FINN's HW ops (``registry.transforms()``).
"""

from __future__ import annotations

from kernels import registry

DOMAIN = registry.QONNX_DOMAIN

#: op type -> class (qonnx' registry reads this dict)
custom_op = registry.qonnx_custom_ops()
