"""Replace the exported ``AttentionAggregate`` (domain kernels.qonnx_ops) by the FINN HW op."""

from __future__ import annotations

from kernels.attention_aggregate.qonnx_op import ATTR_TYPES
from kernels.finn_common import InferKernelLayer, hw_node
from kernels.finn_common import node_attr as _attr

#: attributes copied from the QONNX-level node (the datatypes and shapes come from the graph)
COPIED = [a for a in ATTR_TYPES if a not in ("K", "inputDataType")]


class InferAttentionAggregateLayer(InferKernelLayer):
    OP_TYPE = "AttentionAggregate"

    def make_node(self, model, node, idx):
        shape = model.get_tensor_shape(node.input[0])  # (*V, K, D)
        attrs = {a: _attr(node, a, ATTR_TYPES[a][2]) for a in COPIED}
        attrs = {a: (list(v) if isinstance(v, (list, tuple)) else v) for a, v in attrs.items()}
        return hw_node(
            "AttentionAggregate", node.input, node.output, f"AttentionAggregate_{idx}",
            K=int(shape[-2]), NumChannels=int(shape[-1]), PE=1,
            inputDataType=model.get_tensor_datatype(node.input[0]).name,
            numInputVectors=[int(x) for x in shape[:-2]] or [1], **attrs,
        )
