"""Replace the exported ``NeighborAggregate`` (domain kernels.qonnx_ops) by the FINN HW op.

The HW op starts at PE = 1; the compile flow's folding step sets PE.
"""

from __future__ import annotations

from onnx import helper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from kernels.finn_common import node_attr as _attr
from kernels.qonnx_ops import DOMAIN


class InferNeighborAggregateLayer(Transformation):
    def apply(self, model):
        changed = False
        for idx, node in enumerate(list(model.graph.node)):
            if node.domain != DOMAIN or node.op_type != "NeighborAggregate":
                continue
            shape = model.get_tensor_shape(node.input[0])  # (*V, K, D)
            mode = _attr(node, "Mode", "mean")
            new = helper.make_node(
                "NeighborAggregate", list(node.input), list(node.output),
                domain="finn.custom_op.fpgadataflow", backend="fpgadataflow", name=f"NeighborAggregate_{idx}",
                K=int(shape[-2]), NumChannels=int(shape[-1]), PE=1,
                inputDataType=model.get_tensor_datatype(node.input[0]).name,
                idDataType=model.get_tensor_datatype(node.input[1]).name,
                Mode=mode,
                FracBits=int(_attr(node, "FracBits", 0)), NullId=int(_attr(node, "NullId", 0)),
                numInputVectors=[int(x) for x in shape[:-2]] or [1],
            )
            model.graph.node.insert(idx, new)
            model.graph.node.remove(node)
            changed = True
        if changed:
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False
