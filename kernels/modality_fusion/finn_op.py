"""FINN custom op ``ModalityFusion`` (abstract HW op, numpy execution = golden model) and its
RTL backend ``ModalityFusion_rtl`` (expected cycles, resource estimate, wrapper + tcl).

Inputs: M streams (*V, D) of ``inputDataType`` (V = ``numInputVectors``, e.g. [1, K] items);
output (*V, D) of ``outputDataType``. ``Weights``: W_m; ``FracBits``: F (golden.py).
Folding: PE channels per beat (PE divides D); D/PE cycles per item.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from kernels import finn_common
from kernels._params import KernelParameterError
from kernels.modality_fusion.golden import FusionParams, fuse, params_from_attrs

KERNEL = "modality_fusion"


class ModalityFusion(finn_common.KernelResources, HWCustomOp):
    """Gated sum of M modality streams with integer weights, rounding shift and saturation."""

    KERNEL = KERNEL

    def __init__(self, onnx_node, **kwargs):
        super().__init__(onnx_node, **kwargs)
        self.params()
        if len(onnx_node.input) != self.params().m:
            raise KernelParameterError(f"{onnx_node.name}: {len(onnx_node.input)} inputs for "
                                       f"{self.params().m} weights")

    def get_nodeattr_types(self):
        attrs = {
            "NumChannels": ("i", True, 0),
            "PE": ("i", True, 0),
            "inputDataType": ("s", True, ""),
            "outputDataType": ("s", True, ""),
            "Weights": ("ints", True, []),
            "WeightBits": ("i", False, 10),
            "FracBits": ("i", False, 0),
            "numInputVectors": ("ints", False, [1]),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def params(self) -> FusionParams:
        return params_from_attrs(self.get_nodeattr)

    def _vecs(self) -> list[int]:
        return list(self.get_nodeattr("numInputVectors"))

    def get_normal_input_shape(self, ind=0):
        return tuple(self._vecs() + [self.params().d])

    def get_folded_input_shape(self, ind=0):
        p = self.params()
        return tuple(self._vecs() + [p.fold, p.pe])

    def get_normal_output_shape(self, ind=0):
        return self.get_normal_input_shape()

    def get_folded_output_shape(self, ind=0):
        return self.get_folded_input_shape()

    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType")]

    def get_output_datatype(self, ind=0):
        return DataType[self.get_nodeattr("outputDataType")]

    def get_instream_width(self, ind=0):
        p = self.params()
        return p.pe * p.in_bits

    def get_outstream_width(self, ind=0):
        p = self.params()
        return p.pe * p.out_bits

    def get_number_output_values(self):
        return int(np.prod(self._vecs())) * self.params().fold

    def get_exp_cycles(self):
        """D/PE per item."""
        return int(np.prod(self._vecs())) * self.params().fold

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model):
        node = self.onnx_node
        dts = {model.get_tensor_datatype(i).name for i in node.input}
        if len(dts) != 1:
            raise KernelParameterError(f"{node.name}: the modality inputs have different datatypes {sorted(dts)}")
        self.set_nodeattr("inputDataType", dts.pop())
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())


    def execute_node(self, context, graph):
        """The golden model (what the RTL computes, bit for bit)."""
        node = self.onnx_node
        p = self.params()
        xs = np.stack([np.rint(context[i]).astype(np.int64).reshape(-1, p.d) for i in node.input])
        context[node.output[0]] = fuse(p, xs).astype(np.float32).reshape(self.get_normal_output_shape())


class ModalityFusion_rtl(finn_common.RTLKernel, ModalityFusion, RTLBackend):  # noqa: N801 - FINN's naming
    """RTL backend: kernels/modality_fusion/rtl/modality_fusion.sv in a byte-padded wrapper."""

    def core_parameters(self) -> dict[str, int | str]:
        p = self.params()
        packed = 0
        for m, w in enumerate(p.weights):
            packed |= (w & ((1 << p.w_bits) - 1)) << (m * p.w_bits)
        return {"M": p.m, "D": p.d, "PE": p.pe, "IN_BITS": p.in_bits, "IN_SIGNED": int(p.in_signed),
                "W_BITS": p.w_bits, "FRAC_BITS": p.frac_bits, "OUT_BITS": p.out_bits,
                "OUT_SIGNED": int(p.out_signed), "WEIGHTS": f"{p.m * p.w_bits}'h{packed:x}"}

    def wrapper_text(self) -> str:
        p = self.params()
        top = self.get_verilog_top_module_name()
        wi, wo = self.get_instream_width(), self.get_outstream_width()
        pi, po = self.get_instream_width_padded(), self.get_outstream_width_padded()
        ports = []
        for m in range(p.m):
            ports += finn_common.axis_port(f"in{m}_V", pi, "in")
        ports += finn_common.axis_port("out0_V", po, "out")
        body, out_expr = finn_common.padded_output("out0_V", wo, po)
        body += finn_common.unused_padding([(f"in{m}_V", wi, pi) for m in range(p.m)])
        rev = list(range(p.m - 1, -1, -1))  # modality m at bits [m*wi +: wi]
        conns = [".in_TDATA({" + ", ".join(f"in{m}_V_TDATA[{wi - 1}:0]" for m in rev) + "})",
                 ".in_TVALID({" + ", ".join(f"in{m}_V_TVALID" for m in rev) + "})",
                 ".in_TREADY({" + ", ".join(f"in{m}_V_TREADY" for m in rev) + "})",
                 f".out0_V_TDATA({out_expr})", ".out0_V_TVALID(out0_V_TVALID)", ".out0_V_TREADY(out0_V_TREADY)"]
        return finn_common.render_wrapper(top, KERNEL, self.core_parameters(), ports, conns, body)

