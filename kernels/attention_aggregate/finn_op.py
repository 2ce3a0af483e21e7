"""FINN custom op ``AttentionAggregate`` (abstract HW op, numpy execution = golden model) and its
RTL backend ``AttentionAggregate_rtl`` (expected cycles, resource estimate, wrapper + tcl).

Inputs: in0 items (*V, K, D) of ``inputDataType``; in1 meta words (*V, K) (id | type << ID_BITS |
bucket << (ID_BITS + TB), UINT of ``golden.AttentionParams.meta_bits``; ``idDataType`` gives the
id bits). Outputs: out0 (*V, D) of ``OutBits`` with the input's signedness; out1 (*V, K) the
weights (UINT of W+1 bits) when ``EmitWeights`` = 1 (the node then has two outputs).
V = ``numInputVectors`` (queries). Folding: PE channels per beat (PE divides D);
``golden.cycles(p).per_query`` cycles per query.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from kernels import finn_common
from kernels.attention_aggregate.golden import (
    AttentionParams,
    attend,
    cycles,
    hdl_params,
    params_from_attrs,
    unpack_meta,
)
from kernels.attention_aggregate.qonnx_op import ATTR_TYPES as QONNX_ATTR_TYPES

KERNEL = "attention_aggregate"

#: the learned constants and settings (the QONNX-level op's, defaults = golden AttentionParams')
ATTR_TYPES = {a: t for a, t in QONNX_ATTR_TYPES.items() if a not in ("K", "inputDataType", "idDataType")}


class AttentionAggregate(finn_common.ContextSlotShapes, finn_common.KernelResources, HWCustomOp):
    """Attention pooling of K context items: weights softmax(q.x + b_type + b_pos) over the real
    slots, output the weighted sum (and the weights)."""

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
            **ATTR_TYPES,
            "numInputVectors": ("ints", False, [1]),
        }
        attrs.update(super().get_nodeattr_types())
        return attrs

    def params(self) -> AttentionParams:
        return params_from_attrs(self.get_nodeattr)

    def get_normal_output_shape(self, ind=0):
        p = self.params()
        return tuple(self._vecs() + [p.d if ind == 0 else p.k])

    def get_folded_output_shape(self, ind=0):
        p = self.params()
        return tuple(self._vecs() + ([p.fold, p.pe] if ind == 0 else [p.k, 1]))

    def get_input_datatype(self, ind=0):
        p = self.params()
        return DataType[p.in_datatype if ind == 0 else p.meta_datatype]

    def get_output_datatype(self, ind=0):
        p = self.params()
        return DataType[p.out_datatype if ind == 0 else p.weight_datatype]

    def get_instream_width(self, ind=0):
        p = self.params()
        return p.pe * p.in_bits if ind == 0 else p.meta_bits

    def get_outstream_width(self, ind=0):
        p = self.params()
        return p.pe * p.out_bits if ind == 0 else p.weight_bits

    def get_number_output_values(self):
        p = self.params()
        n = int(np.prod(self._vecs()))
        return {"out0": n * p.fold, "out1": n * p.k} if len(self.onnx_node.output) > 1 else n * p.fold

    def get_exp_cycles(self):
        """golden.cycles(p).per_query per query (the back end's fixed schedule)."""
        return int(np.prod(self._vecs())) * cycles(self.params()).per_query

    def make_shape_compatible_op(self, model):
        # out0's shape; a second output (the weights) keeps the shape the graph declares
        return super().make_const_shape_op(self.get_normal_output_shape(0))

    def infer_node_datatype(self, model):
        node = self.onnx_node
        self.set_nodeattr("inputDataType", model.get_tensor_datatype(node.input[0]).name)
        for i, out in enumerate(node.output):
            model.set_tensor_datatype(out, self.get_output_datatype(i))

    def execute_node(self, context, graph):
        """The golden model (what the RTL computes, bit for bit)."""
        node = self.onnx_node
        p = self.params()
        x = np.rint(context[node.input[0]]).astype(np.int64).reshape(-1, p.k, p.d)
        words = np.rint(context[node.input[1]]).astype(np.int64).reshape(-1, p.k)
        u, a = attend(p, x, unpack_meta(p, words))
        context[node.output[0]] = u.astype(np.float32).reshape(self.get_normal_output_shape(0))
        if len(node.output) > 1:
            context[node.output[1]] = a.astype(np.float32).reshape(self.get_normal_output_shape(1))


class AttentionAggregate_rtl(finn_common.RTLKernel, AttentionAggregate, RTLBackend):  # noqa: N801 - FINN's naming
    """RTL backend: kernels/attention_aggregate/rtl/attention_aggregate.sv in a byte-padded wrapper."""

    def core_parameters(self) -> dict[str, object]:
        return hdl_params(self.params())

    def wrapper_text(self) -> str:
        p = self.params()
        top = self.get_verilog_top_module_name()
        w0, w1, wo = (self.get_instream_width(0), self.get_instream_width(1), self.get_outstream_width(0))
        p0, p1, po = (self.get_instream_width_padded(0), self.get_instream_width_padded(1),
                      self.get_outstream_width_padded(0))
        body, out_expr = finn_common.padded_output("out0_V", wo, po)
        body += finn_common.unused_padding([("in0_V", w0, p0), ("in1_V", w1, p1)])
        ports = (finn_common.axis_port("in0_V", p0, "in") + finn_common.axis_port("in1_V", p1, "in")
                 + finn_common.axis_port("out0_V", po, "out"))
        conns = [f".in0_V_TDATA(in0_V_TDATA[{w0 - 1}:0])", ".in0_V_TVALID(in0_V_TVALID)",
                 ".in0_V_TREADY(in0_V_TREADY)", f".in1_V_TDATA(in1_V_TDATA[{w1 - 1}:0])",
                 ".in1_V_TVALID(in1_V_TVALID)", ".in1_V_TREADY(in1_V_TREADY)",
                 f".out0_V_TDATA({out_expr})", ".out0_V_TVALID(out0_V_TVALID)", ".out0_V_TREADY(out0_V_TREADY)"]
        if p.emit_weights and len(self.onnx_node.output) > 1:
            w_o, p_o = self.get_outstream_width(1), self.get_outstream_width_padded(1)
            b1, o1 = finn_common.padded_output("out1_V", w_o, p_o)
            body += b1
            ports += finn_common.axis_port("out1_V", p_o, "out")
            conns += [f".out1_V_TDATA({o1})", ".out1_V_TVALID(out1_V_TVALID)", ".out1_V_TREADY(out1_V_TREADY)"]
        else:
            body += [f"  wire [{p.weight_bits - 1}:0] unused_out1_data;", "  wire unused_out1_valid;"]
            conns += [".out1_V_TDATA(unused_out1_data)", ".out1_V_TVALID(unused_out1_valid)", ".out1_V_TREADY(1'b1)"]
        return finn_common.render_wrapper(top, KERNEL, self.core_parameters(), ports, conns, body)
