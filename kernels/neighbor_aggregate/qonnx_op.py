"""The QONNX-level ``NeighborAggregate`` (domain kernels.qonnx_ops): what
``fpgarec.compile.export`` writes; numpy execution = the golden model, so the exported file
executes bit-exactly like the hardware. ``transform.py`` turns it into the FINN HW op.

    NeighborAggregate(x (B, K, D) integers, ids (B, K)) -> (B, D)   attrs K, Mode, FracBits, NullId
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from kernels._params import parse_datatype
from kernels.finn_common import VerifiesParams
from kernels.neighbor_aggregate.golden import AggregateParams, aggregate


class NeighborAggregate(VerifiesParams, CustomOp):
    def get_nodeattr_types(self):
        return {"K": ("i", True, 0), "Mode": ("s", False, "mean"), "FracBits": ("i", False, 0),
                "NullId": ("i", False, 0), "inputDataType": ("s", False, "INT8"),
                "idDataType": ("s", False, "UINT16")}

    def params(self, d: int = 1) -> AggregateParams:
        in_bits, in_signed = parse_datatype("inputDataType", self.get_nodeattr("inputDataType"))
        id_bits, _ = parse_datatype("idDataType", self.get_nodeattr("idDataType"))
        mode = self.get_nodeattr("Mode")
        return AggregateParams(k=self.get_nodeattr("K"), d=d, pe=1, in_bits=in_bits, in_signed=in_signed,
                               mode=mode.decode() if isinstance(mode, bytes) else mode,
                               frac_bits=self.get_nodeattr("FracBits"), id_bits=id_bits,
                               null_id=self.get_nodeattr("NullId"))

    def make_shape_compatible_op(self, model):
        shape = model.get_tensor_shape(self.onnx_node.input[0])
        return self.make_const_shape_op([*shape[:-2], shape[-1]])

    def infer_node_datatype(self, model):
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        self.set_nodeattr("idDataType", model.get_tensor_datatype(node.input[1]).name)
        model.set_tensor_datatype(node.output[0], DataType[self.params().out_datatype])

    def execute_node(self, context, graph):
        node = self.onnx_node
        x = np.rint(context[node.input[0]]).astype(np.int64)
        p = self.params(d=x.shape[-1])
        ids = np.rint(context[node.input[1]]).astype(np.int64).reshape(-1, p.k)
        y = aggregate(p, x.reshape(-1, p.k, p.d), ids)
        context[node.output[0]] = y.astype(np.float32).reshape(*x.shape[:-2], p.d)
