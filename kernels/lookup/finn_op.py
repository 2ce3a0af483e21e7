"""FINN's ``Lookup`` with the golden model's numpy execution, and its RTL backend ``Lookup_rtl``
(rtl/lookup_rom.sv: the table in a ROM loaded from a ``$readmemh`` file).

Inputs: in0 ids (*V) of ``InputType`` (unsigned), in1 the table (NumEmbeddings, EmbeddingDim)
of ``EmbeddingType`` (a constant). Output (*V, EmbeddingDim): one table row per beat, as FINN's
Lookup streams it (the core's PE = D). Cycles: one id per cycle (FINN's ``get_exp_cycles``).
Resources: FINN's Lookup estimate (block RAM: ceil(D·bits/16) · ceil(N/1024) BRAM18; the
README has the Yosys figures: 29 BRAM18 for the demo table where FINN estimates 32).
"""

from __future__ import annotations

import numpy as np
from finn.custom_op.fpgadataflow.lookup import Lookup as FinnLookup
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
from qonnx.core.datatype import DataType

from kernels import finn_common
from kernels._params import KernelParameterError, parse_datatype
from kernels.lookup import golden

KERNEL = "lookup"


class Lookup(FinnLookup):
    """FINN's abstract Lookup; numpy execution: the golden model ``T[ids]``.

    FINN's own ``execute_node`` hands its ids to onnxruntime as int64 without converting them,
    but ``DuplicateStreams`` passes float32 copies on, so a Lookup behind a DuplicateStreams
    (the ids fan out to the two lookups and the aggregation kernel) fails there; here the ids
    (exact integers) are converted first. A real-valued table is gathered as it is.

    ``IdBits`` (0: the input word is the id): the id is the word's low ``IdBits`` bits (the
    attention design's input words pack id | type | bucket; ``transform.py``).
    """

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(), "IdBits": ("i", False, 0)}

    def id_bits(self) -> int:
        """Bits of the id the table is indexed with (``IdBits``, else the input's width)."""
        return self.get_nodeattr("IdBits") or parse_datatype("InputType", self.get_nodeattr("InputType"))[0]

    def execute_node(self, context, graph):
        node = self.onnx_node
        ids = np.rint(np.asarray(context[node.input[0]], dtype=np.float64)).astype(np.int64)
        if self.get_nodeattr("IdBits"):
            ids = ids & ((1 << self.get_nodeattr("IdBits")) - 1)
        table = np.asarray(context[node.input[1]])
        if DataType[self.get_nodeattr("EmbeddingType")].is_integer():
            rows = golden.lookup(np.rint(table).astype(np.int64), ids)
        else:
            rows = table[ids]
        context[node.output[0]] = rows.astype(np.float32).reshape(*ids.shape, table.shape[-1])


class Lookup_rtl(finn_common.RTLKernel, Lookup, RTLBackend):  # noqa: N801 - FINN's naming
    """RTL backend: kernels/lookup/rtl/lookup_rom.sv in a byte-padded wrapper; the table is
    written as ``<node>.table.mem`` next to it (``golden.table_mem_lines``)."""

    KERNEL = KERNEL
    CORE = "lookup_rom"

    def __init__(self, onnx_node, **kwargs):
        super().__init__(onnx_node, **kwargs)
        why = self.rtl_unsupported(self)
        if why:
            raise KernelParameterError(f"{onnx_node.name}: {why}")

    @classmethod
    def rtl_unsupported(cls, op) -> str:
        if op.get_nodeattr("mem_mode") != "internal_embedded":
            return f"mem_mode={op.get_nodeattr('mem_mode')}: the ROM holds the table (internal_embedded only)"
        try:
            _, signed = parse_datatype("InputType", op.get_nodeattr("InputType"))
            parse_datatype("EmbeddingType", op.get_nodeattr("EmbeddingType"))
        except KernelParameterError as exc:
            return str(exc)
        if signed:
            return f"InputType={op.get_nodeattr('InputType')}: ids must be unsigned"
        return ""

    def verify_node(self):
        why = self.rtl_unsupported(self)
        return [why] if why else []

    def _mem_name(self) -> str:
        return f"{self.get_verilog_top_module_name()}.table.mem"

    def core_parameters(self) -> dict[str, int | str]:
        bits, _ = parse_datatype("EmbeddingType", self.get_nodeattr("EmbeddingType"))
        id_bits = self.id_bits()
        d = self.get_nodeattr("EmbeddingDim")
        return {"N_ENTRIES": self.get_nodeattr("NumEmbeddings"), "D": d, "PE": d, "BITS": bits,
                "ID_BITS": id_bits, "TABLE_FILE": f'"{self._mem_name()}"'}

    def data_files(self, model) -> dict[str, str]:
        table = model.get_initializer(self.onnx_node.input[1])
        if table is None:
            raise KernelParameterError(f"{self.onnx_node.name}: the table (input 1) must be a constant")
        bits = self.core_parameters()["BITS"]
        return {self._mem_name(): "\n".join(golden.table_mem_lines(np.rint(table).astype(np.int64), bits)) + "\n"}

    def data_file_names(self) -> list[str]:
        return [self._mem_name()]

    def wrapper_text(self) -> str:
        top = self.get_verilog_top_module_name()
        wi, wo = self.get_instream_width(0), self.get_outstream_width()
        pi, po = self.get_instream_width_padded(0), self.get_outstream_width_padded()
        ports = finn_common.axis_port("in0_V", pi, "in") + finn_common.axis_port("out0_V", po, "out")
        body, out_expr = finn_common.padded_output("out0_V", wo, po)
        body += finn_common.unused_padding([("in0_V", wi, pi)])
        # the core reads the id field (the low IdBits) of each input word
        conns = [f".in0_V_TDATA(in0_V_TDATA[{self.id_bits() - 1}:0])", ".in0_V_TVALID(in0_V_TVALID)",
                 ".in0_V_TREADY(in0_V_TREADY)", f".out0_V_TDATA({out_expr})", ".out0_V_TVALID(out0_V_TVALID)",
                 ".out0_V_TREADY(out0_V_TREADY)"]
        return finn_common.render_wrapper(top, self.CORE, self.core_parameters(), ports, conns, body)
