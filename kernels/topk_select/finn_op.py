"""FINN's ``LabelSelect`` with the project's tie rule and seen filter (numpy execution = the
golden model), and its RTL backend ``LabelSelect_rtl`` (rtl/topk_select.sv).

Inputs: in0 scores (*V, Labels) of ``inputDataType`` (integers; unsigned ones are widened by
one bit for the signed core); with ``SeenMode`` 1 in1 the query's context ids (*V, NumSeenIds)
of ``seenIdDataType``, with ``SeenMode`` 2 in1 the seen bitmap (*V, Labels) of BINARY (PE bits
per beat, one beat per score beat). Output (*V, K): the indices of the K best eligible labels,
best first (equal scores: lower index first); items >= ``NumValidLabels`` (0: all) and seen
items are not eligible; slots a query has no eligible item for hold ``Labels``.

Folding: PE scores per beat (PE divides Labels). Cycles (``golden.cycles``): max(Labels/PE · L,
2K + D, ...) per query, L = ``LanesPerSorter``. Resources: ``resources.estimate``.
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.labelselect import LabelSelect as FinnLabelSelect
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType
from qonnx.util.basic import roundup_to_integer_multiple

from kernels import finn_common
from kernels._params import KernelParameterError, parse_datatype
from kernels.topk_select import golden

KERNEL = "topk_select"


def topk_params(op, lanes_per_sorter: int = 1) -> golden.TopkParams:
    """The core's parameters for a LabelSelect node ``op``; refuses what it cannot build."""
    get = op.get_nodeattr
    in_bits, in_signed = parse_datatype("inputDataType", get("inputDataType"))
    out_bits, out_signed = parse_datatype("outputDataType", get("outputDataType"))
    if out_signed:
        raise KernelParameterError(f"outputDataType={get('outputDataType')}: must be unsigned")
    id_bits = 16
    if get("SeenMode") == 1:
        id_bits, id_signed = parse_datatype("seenIdDataType", get("seenIdDataType"))
        if id_signed:
            raise KernelParameterError(f"seenIdDataType={get('seenIdDataType')}: ids must be unsigned")
    return golden.TopkParams(
        n=get("Labels"), n_valid=get("NumValidLabels") or get("Labels"), pe=get("PE"),
        in_bits=in_bits + (0 if in_signed else 1), k=get("K"), out_bits=out_bits, seen_mode=get("SeenMode"),
        k_ctx=get("NumSeenIds"), id_bits=id_bits, lanes_per_sorter=lanes_per_sorter)


class LabelSelect(FinnLabelSelect):
    """FINN's abstract LabelSelect plus the seen filter; numpy execution: ``golden.topk`` on
    integer scores (FINN's onnxruntime TopK, the same tie rule, on real-valued ones). Creating
    the op checks nothing beyond FINN (the graph may still carry wide datatypes); the RTL
    backend's ``params()`` refuses what the core cannot build."""

    def __init__(self, onnx_node, **kwargs):
        super().__init__(onnx_node, **kwargs)
        # a slot without an eligible item holds Labels: the output datatype must hold it
        labels = self.get_nodeattr("Labels")
        if self._short() and DataType[self.get_nodeattr("outputDataType")].max() < labels:
            bits = roundup_to_integer_multiple(int(labels).bit_length(), 8)
            self.set_nodeattr("outputDataType", f"UINT{bits}")

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        attrs.update({
            # seen filter: 0 none, 1 context ids (in1), 2 bitmap (in1)
            "SeenMode": ("i", False, 0, {0, 1, 2}),
            # labels that may be selected: 0..NumValidLabels-1 (0: all; the rest is padding)
            "NumValidLabels": ("i", False, 0),
            # SeenMode 1: context ids per query and their datatype
            "NumSeenIds": ("i", False, 1),
            "seenIdDataType": ("s", False, "UINT16"),
        })
        return attrs

    def _n_valid(self) -> int:
        return self.get_nodeattr("NumValidLabels") or self.get_nodeattr("Labels")

    def _short(self) -> bool:
        """A query may have fewer than K eligible labels (golden ``TopkParams.short``)."""
        mode, k = self.get_nodeattr("SeenMode"), self.get_nodeattr("K")
        if mode == 2:
            return True
        return self._n_valid() - (self.get_nodeattr("NumSeenIds") if mode == 1 else 0) < k

    def _vecs(self) -> list[int]:
        return list(self.get_nodeattr("numInputVectors"))

    def get_normal_input_shape(self, ind=0):
        if ind == 0:
            return super().get_normal_input_shape()
        mode = self.get_nodeattr("SeenMode")
        return tuple(self._vecs() + [self.get_nodeattr("NumSeenIds") if mode == 1 else self.get_nodeattr("Labels")])

    def get_folded_input_shape(self, ind=0):
        if ind == 0 or self.get_nodeattr("SeenMode") == 2:
            return super().get_folded_input_shape()
        return tuple(self._vecs() + [self.get_nodeattr("NumSeenIds"), 1])

    def get_input_datatype(self, ind=0):
        if ind == 0:
            return super().get_input_datatype()
        return DataType["BINARY"] if self.get_nodeattr("SeenMode") == 2 else DataType[self.get_nodeattr("seenIdDataType")]

    def get_instream_width(self, ind=0):
        if ind == 0:
            return super().get_instream_width()
        mode = self.get_nodeattr("SeenMode")
        if mode == 0:
            return 0
        return self.get_nodeattr("PE") if mode == 2 else self.get_input_datatype(1).bitwidth()

    def infer_node_datatype(self, model):
        super().infer_node_datatype(model)
        node = self.onnx_node
        if self.get_nodeattr("SeenMode") == 1 and len(node.input) > 1:
            self.set_nodeattr("seenIdDataType", model.get_tensor_datatype(node.input[1]).name)

    def verify_node(self):
        mode, n_in = self.get_nodeattr("SeenMode"), len(self.onnx_node.input)
        if n_in != (1 if mode == 0 else 2):
            return [f"SeenMode {mode} needs {1 if mode == 0 else 2} inputs, the node has {n_in}"]
        return []

    def execute_node(self, context, graph):
        node = self.onnx_node
        if not self.get_input_datatype(0).is_integer():
            super().execute_node(context, graph)
            return
        labels, k, mode = self.get_nodeattr("Labels"), self.get_nodeattr("K"), self.get_nodeattr("SeenMode")
        scores = np.rint(np.asarray(context[node.input[0]], dtype=np.float64)).astype(np.int64).reshape(-1, labels)
        ids = seen = None
        if mode == 1:
            ids = np.rint(np.asarray(context[node.input[1]], dtype=np.float64)).astype(np.int64)
            ids = ids.reshape(len(scores), -1)
        elif mode == 2:
            seen = np.asarray(context[node.input[1]]).reshape(len(scores), labels) != 0
        out = golden.topk(scores, k, self._n_valid(), ids, seen)
        context[node.output[0]] = out.astype(np.float32).reshape(self.get_normal_output_shape())


class LabelSelect_rtl(finn_common.RTLKernel, finn_common.KernelResources, LabelSelect, RTLBackend):  # noqa: N801
    """RTL backend: kernels/topk_select/rtl/topk_select.sv in a byte-padded wrapper (SeenMode 0:
    the core's in1 is tied off)."""

    KERNEL = KERNEL

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        # L: lanes one insertion sorter serialises (divides PE; one in0 beat every L cycles)
        attrs["LanesPerSorter"] = ("i", False, 1)
        return attrs

    @classmethod
    def rtl_unsupported(cls, op) -> str:
        """Why the core cannot build LabelSelect node ``op`` ("" if it can), e.g. scores wider
        than 24 bits."""
        try:
            topk_params(op)
        except KernelParameterError as exc:
            return str(exc)
        return ""

    def params(self) -> golden.TopkParams:
        return topk_params(self, self.get_nodeattr("LanesPerSorter"))

    def verify_node(self):
        return LabelSelect.verify_node(self) + finn_common.VerifiesParams.verify_node(self)

    def get_exp_cycles(self):
        """golden.cycles per query: max(Labels/PE · L, 2K + D, NumSeenIds (SeenMode 1))."""
        return int(np.prod(self._vecs())) * golden.cycles(self.params()).per_query

    def wrapper_text(self) -> str:
        p = self.params()
        top = self.get_verilog_top_module_name()
        in_bits, in_signed = parse_datatype("inputDataType", self.get_nodeattr("inputDataType"))
        w0, p0 = self.get_instream_width(0), self.get_instream_width_padded(0)
        wo, po = self.get_outstream_width(), self.get_outstream_width_padded()
        ports = finn_common.axis_port("in0_V", p0, "in")
        padding = [("in0_V", w0, p0)]
        body, out_expr = finn_common.padded_output("out0_V", wo, po)
        if in_signed:
            scores = f"in0_V_TDATA[{w0 - 1}:0]"
        else:  # unsigned lanes: one zero bit on top of each for the signed core
            lanes = [f"1'b0, in0_V_TDATA[{(j + 1) * in_bits - 1}:{j * in_bits}]" for j in range(p.pe - 1, -1, -1)]
            scores = "{" + ", ".join(lanes) + "}"
        conns = [f".in0_V_TDATA({scores})", ".in0_V_TVALID(in0_V_TVALID)", ".in0_V_TREADY(in0_V_TREADY)"]
        if p.seen_mode == 0:
            body.append("  wire unused_in1_ready;")
            conns += [f".in1_V_TDATA({p.in1_bits}'b0)", ".in1_V_TVALID(1'b0)", ".in1_V_TREADY(unused_in1_ready)"]
        else:
            w1, p1 = self.get_instream_width(1), self.get_instream_width_padded(1)
            ports += finn_common.axis_port("in1_V", p1, "in")
            padding.append(("in1_V", w1, p1))
            conns += [f".in1_V_TDATA(in1_V_TDATA[{w1 - 1}:0])", ".in1_V_TVALID(in1_V_TVALID)",
                      ".in1_V_TREADY(in1_V_TREADY)"]
        ports += finn_common.axis_port("out0_V", po, "out")
        body += finn_common.unused_padding(padding)
        conns += [f".out0_V_TDATA({out_expr})", ".out0_V_TVALID(out0_V_TVALID)", ".out0_V_TREADY(out0_V_TREADY)"]
        return finn_common.render_wrapper(top, KERNEL, golden.hdl_params(p), ports, conns, body)
