"""Replace the exported ``NeighborAggregate`` (domain kernels.qonnx_ops) by the FINN HW op."""

from __future__ import annotations

from kernels.finn_common import InferKernelLayer, hw_node
from kernels.finn_common import node_attr as _attr


class InferNeighborAggregateLayer(InferKernelLayer):
    OP_TYPE = "NeighborAggregate"

    def make_node(self, model, node, idx):
        shape = model.get_tensor_shape(node.input[0])  # (*V, K, D)
        return hw_node(
            "NeighborAggregate", node.input, node.output, f"NeighborAggregate_{idx}",
            K=int(shape[-2]), NumChannels=int(shape[-1]), PE=1,
            inputDataType=model.get_tensor_datatype(node.input[0]).name,
            idDataType=model.get_tensor_datatype(node.input[1]).name,
            Mode=_attr(node, "Mode", "mean"),
            FracBits=int(_attr(node, "FracBits", 0)), NullId=int(_attr(node, "NullId", 0)),
            numInputVectors=[int(x) for x in shape[:-2]] or [1],
        )
