"""FINN custom op ``NeighborAggregate`` (abstract HW op, numpy execution = golden model) and its
RTL backend ``NeighborAggregate_rtl`` (expected cycles, resource estimate, wrapper + tcl).

Inputs: in0 features (*V, K, D) of ``inputDataType``; in1 ids (*V, K) of ``idDataType``.
Output: (*V, D) of the golden model's output datatype. V = ``numInputVectors`` (queries).
Folding: PE channels per beat (PE divides D); K·D/PE cycles per query.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from kernels import finn_common
from kernels.neighbor_aggregate.golden import AggregateParams, aggregate, params_from_attrs

KERNEL = "neighbor_aggregate"
MODE_CODES = {"sum": 0, "mean": 1, "max": 2}



class NeighborAggregate(finn_common.ContextSlotShapes, finn_common.KernelResources, HWCustomOp):
    """Streaming reduction of K neighbour vectors (sum, mean over real neighbours, max)."""

    KERNEL = KERNEL

    def __init__(self, onnx_node, **kwargs):
        super().__init__(onnx_node, **kwargs)
        self.params()  # refuse unbuildable parameters when the op is created

    def get_nodeattr_types(self):
        attrs = {
            "K": ("i", True, 0),
            "NumChannels": ("i", True, 0),
            "PE": ("i", True, 0),
            "inputDataType": ("s", True, ""),
            "idDataType": ("s", True, ""),
            "Mode": ("s", False, "mean", {"sum", "mean", "max"}),
            "FracBits": ("i", False, 0),
            "NullId": ("i", False, 0),
            "numInputVectors": ("ints", False, [1]),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def params(self) -> AggregateParams:
        return params_from_attrs(self.get_nodeattr)

    def get_normal_output_shape(self, ind=0):
        return tuple(self._vecs() + [self.params().d])

    def get_folded_output_shape(self, ind=0):
        p = self.params()
        return tuple(self._vecs() + [p.fold, p.pe])

    def get_input_datatype(self, ind=0):
        return DataType[self.get_nodeattr("inputDataType" if ind == 0 else "idDataType")]

    def get_output_datatype(self, ind=0):
        return DataType[self.params().out_datatype]

    def get_instream_width(self, ind=0):
        p = self.params()
        return p.pe * p.in_bits if ind == 0 else p.id_bits

    def get_outstream_width(self, ind=0):
        p = self.params()
        return p.pe * p.out_bits

    def get_number_output_values(self):
        return int(np.prod(self._vecs())) * self.params().fold

    def get_exp_cycles(self):
        """K·D/PE per query (one input beat per cycle; the output overlaps the next query)."""
        return int(np.prod(self._vecs())) * self.params().expected_cycles()

    def make_shape_compatible_op(self, model):
        return super().make_const_shape_op(self.get_normal_output_shape())

    def infer_node_datatype(self, model):
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        self.set_nodeattr("idDataType", model.get_tensor_datatype(node.input[1]).name)
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())


    def execute_node(self, context, graph):
        """The golden model (what the RTL computes, bit for bit)."""
        node = self.onnx_node
        p = self.params()
        feats = np.rint(context[node.input[0]]).astype(np.int64).reshape(-1, p.k, p.d)
        ids = np.rint(context[node.input[1]]).astype(np.int64).reshape(-1, p.k)
        out = aggregate(p, feats, ids)
        context[node.output[0]] = out.astype(np.float32).reshape(self.get_normal_output_shape())


class NeighborAggregate_rtl(finn_common.RTLKernel, NeighborAggregate, RTLBackend):  # noqa: N801 - FINN's naming
    """RTL backend: kernels/neighbor_aggregate/rtl/neighbor_aggregate.sv in a byte-padded wrapper."""

    def core_parameters(self) -> dict[str, int]:
        p = self.params()
        return {"K": p.k, "D": p.d, "PE": p.pe, "IN_BITS": p.in_bits, "IN_SIGNED": int(p.in_signed),
                "MODE": MODE_CODES[p.mode], "FRAC_BITS": p.frac_bits, "ID_BITS": p.id_bits,
                "NULL_ID": p.null_id, "OUT_BITS": p.out_bits}

    def wrapper_text(self) -> str:
        top = self.get_verilog_top_module_name()
        w0, w1, wo = (self.get_instream_width(0), self.get_instream_width(1), self.get_outstream_width())
        p0, p1, po = (self.get_instream_width_padded(0), self.get_instream_width_padded(1),
                      self.get_outstream_width_padded())
        body, out_expr = finn_common.padded_output("out0_V", wo, po)
        body += finn_common.unused_padding([("in0_V", w0, p0), ("in1_V", w1, p1)])
        ports = (finn_common.axis_port("in0_V", p0, "in") + finn_common.axis_port("in1_V", p1, "in")
                 + finn_common.axis_port("out0_V", po, "out"))
        conns = [f".in0_V_TDATA(in0_V_TDATA[{w0 - 1}:0])", ".in0_V_TVALID(in0_V_TVALID)",
                 ".in0_V_TREADY(in0_V_TREADY)", f".in1_V_TDATA(in1_V_TDATA[{w1 - 1}:0])",
                 ".in1_V_TVALID(in1_V_TVALID)", ".in1_V_TREADY(in1_V_TREADY)",
                 f".out0_V_TDATA({out_expr})", ".out0_V_TVALID(out0_V_TVALID)", ".out0_V_TREADY(out0_V_TREADY)"]
        return finn_common.render_wrapper(top, KERNEL, self.core_parameters(), ports, conns, body)

