"""The QONNX-level ``ModalityFusion`` (domain kernels.qonnx_ops): what
``fpgarec.compile.export`` writes; numpy execution = the golden model, so the exported file
executes bit-exactly like the hardware. ``transform.py`` turns it into the FINN HW op.

    ModalityFusion(x_1 .. x_M (..., D) integers) -> (..., D)    attrs Weights, WeightBits,
                                                                FracBits, outputDataType
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from kernels._params import parse_datatype
from kernels.finn_common import VerifiesParams
from kernels.modality_fusion.golden import FusionParams, fuse


class ModalityFusion(VerifiesParams, CustomOp):
    def get_nodeattr_types(self):
        return {"Weights": ("ints", True, []), "WeightBits": ("i", False, 10), "FracBits": ("i", False, 0),
                "inputDataType": ("s", False, "INT8"), "outputDataType": ("s", True, "")}

    def params(self, d: int = 1) -> FusionParams:
        in_bits, in_signed = parse_datatype("inputDataType", self.get_nodeattr("inputDataType"))
        out_bits, out_signed = parse_datatype("outputDataType", self.get_nodeattr("outputDataType"))
        return FusionParams(weights=tuple(self.get_nodeattr("Weights")), d=d, pe=1, in_bits=in_bits,
                            in_signed=in_signed, w_bits=self.get_nodeattr("WeightBits"),
                            frac_bits=self.get_nodeattr("FracBits"), out_bits=out_bits, out_signed=out_signed)

    def make_shape_compatible_op(self, model):
        return self.make_const_shape_op(model.get_tensor_shape(self.onnx_node.input[0]))

    def infer_node_datatype(self, model):
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        model.set_tensor_datatype(node.output[0], DataType[self.get_nodeattr("outputDataType")])

    def execute_node(self, context, graph):
        node = self.onnx_node
        xs = np.stack([np.rint(context[i]).astype(np.int64) for i in node.input])
        p = self.params(d=xs.shape[-1])
        context[node.output[0]] = fuse(p, xs).astype(np.float32)
