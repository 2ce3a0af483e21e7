"""The QONNX-level ``AttentionAggregate`` (domain kernels.qonnx_ops): what the export writes;
numpy execution = the golden model, so the exported file executes bit-exactly like the
hardware. ``transform.py`` turns it into the FINN HW op.

    AttentionAggregate(x (B, K, D) integers, meta (B, K) words) -> u (B, D) [, a (B, K)]
    attrs K, Query, TypeBias, PosBias, the exp / weight / output settings (finn_op.ATTR_TYPES)
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from kernels.attention_aggregate.golden import (
    AttentionParams,
    attend,
    params_from_attrs,
    unpack_meta,
)
from kernels.finn_common import VerifiesParams

#: the QONNX-level attributes: the FINN op's, without shapes and folding
ATTR_TYPES = {
    "K": ("i", True, 0),
    "inputDataType": ("s", False, "INT4"),
    "idDataType": ("s", False, "UINT16"),
    "Query": ("ints", True, []),
    "TypeBias": ("ints", True, []),
    "PosBias": ("ints", True, []),
    "QueryBits": ("i", False, 8),
    "BiasBits": ("i", False, 8),
    "ExpMult": ("i", False, 1 << 10),
    "ExpShift": ("i", False, 10),
    "ExpFracBits": ("i", False, 4),
    "ExpBits": ("i", False, 15),
    "WeightBits": ("i", False, 10),
    "GuardBits": ("i", False, 4),
    "FracBits": ("i", False, 4),
    "OutBits": ("i", False, 8),
    "NullId": ("i", False, 0),
    "EmitWeights": ("i", False, 0),
}


class AttentionAggregate(VerifiesParams, CustomOp):
    def get_nodeattr_types(self):
        return dict(ATTR_TYPES)

    def params(self) -> AttentionParams:
        d = len(self.get_nodeattr("Query"))
        return params_from_attrs(self.get_nodeattr, d=d, pe=1)

    def make_shape_compatible_op(self, model):
        shape = model.get_tensor_shape(self.onnx_node.input[0])
        return self.make_const_shape_op([*shape[:-2], shape[-1]])

    def infer_node_datatype(self, model):
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        p = self.params()
        model.set_tensor_datatype(node.output[0], DataType[p.out_datatype])
        if len(node.output) > 1:
            model.set_tensor_datatype(node.output[1], DataType[p.weight_datatype])

    def execute_node(self, context, graph):
        node = self.onnx_node
        p = self.params()
        x = np.rint(context[node.input[0]]).astype(np.int64)
        words = np.rint(context[node.input[1]]).astype(np.int64).reshape(-1, p.k)
        u, a = attend(p, x.reshape(-1, p.k, p.d), unpack_meta(p, words))
        context[node.output[0]] = u.astype(np.float32).reshape(*x.shape[:-2], p.d)
        if len(node.output) > 1:
            context[node.output[1]] = a.astype(np.float32).reshape(*x.shape[:-2], p.k)
