"""Replace the exported ``ModalityFusion`` (domain kernels.qonnx_ops) by the FINN HW op."""

from __future__ import annotations

from kernels.finn_common import InferKernelLayer, hw_node
from kernels.finn_common import node_attr as _attr


class InferModalityFusionLayer(InferKernelLayer):
    OP_TYPE = "ModalityFusion"

    def make_node(self, model, node, idx):
        shape = model.get_tensor_shape(node.input[0])  # (*V, D)
        return hw_node(
            "ModalityFusion", node.input, node.output, f"ModalityFusion_{idx}",
            NumChannels=int(shape[-1]), PE=1,
            inputDataType=model.get_tensor_datatype(node.input[0]).name,
            outputDataType=_attr(node, "outputDataType"),
            Weights=[int(w) for w in _attr(node, "Weights")], WeightBits=int(_attr(node, "WeightBits", 10)),
            FracBits=int(_attr(node, "FracBits", 0)), numInputVectors=[int(x) for x in shape[:-1]] or [1],
        )
