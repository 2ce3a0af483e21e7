"""Replace the exported ``ModalityFusion`` (domain kernels.qonnx_ops) by the FINN HW op.

The HW op starts at PE = 1; the compile flow's folding step sets PE.
"""

from __future__ import annotations

from onnx import helper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from kernels.finn_common import node_attr as _attr
from kernels.qonnx_ops import DOMAIN


class InferModalityFusionLayer(Transformation):
    def apply(self, model):
        changed = False
        for idx, node in enumerate(list(model.graph.node)):
            if node.domain != DOMAIN or node.op_type != "ModalityFusion":
                continue
            shape = model.get_tensor_shape(node.input[0])  # (*V, D)
            out_dt = _attr(node, "outputDataType")
            new = helper.make_node(
                "ModalityFusion", list(node.input), list(node.output),
                domain="finn.custom_op.fpgadataflow", backend="fpgadataflow", name=f"ModalityFusion_{idx}",
                NumChannels=int(shape[-1]), PE=1,
                inputDataType=model.get_tensor_datatype(node.input[0]).name,
                outputDataType=out_dt,
                Weights=[int(w) for w in _attr(node, "Weights")], WeightBits=int(_attr(node, "WeightBits", 10)),
                FracBits=int(_attr(node, "FracBits", 0)), numInputVectors=[int(x) for x in shape[:-1]] or [1],
            )
            model.graph.node.insert(idx, new)
            model.graph.node.remove(node)
            changed = True
        if changed:
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False
