"""RTL backend ``DuplicateStreams_rtl`` of FINN's ``DuplicateStreams`` (rtl/axis_dup.sv).

FINN's abstract op stays as it is (numpy execution: every output = the input). The core sends
every input beat on each of the M = ``NumOutputStreams`` outputs and consumes it when all have
taken it: NumChannels/PE cycles per vector (FINN's ``get_exp_cycles``).

Resources (a structural count of axis_dup.sv, no fitted figures): M flip-flops (``sent``),
about 2M + 1 LUTs (per output its TVALID and its ``sent`` update; the input's TREADY), no
block RAM or DSP. The data bits are wires.
"""

from __future__ import annotations

from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from kernels import finn_common

KERNEL = "stream"


class DuplicateStreams_rtl(finn_common.RTLKernel, DuplicateStreams, RTLBackend):  # noqa: N801 - FINN's naming
    """RTL backend: kernels/stream/rtl/axis_dup.sv in a byte-padded wrapper."""

    KERNEL = KERNEL
    CORE = "axis_dup"

    def lut_estimation(self, fpgapart=None):
        return 2 * self.get_num_output_streams() + 1

    def bram_estimation(self, fpgapart=None):
        return 0

    def dsp_estimation(self, fpgapart=None):
        return 0

    def uram_estimation(self, fpgapart=None):
        return 0

    def core_parameters(self) -> dict[str, int]:
        return {"WIDTH": self.get_instream_width(), "M": self.get_num_output_streams()}

    def wrapper_text(self) -> str:
        top = self.get_verilog_top_module_name()
        m, w = self.get_num_output_streams(), self.get_instream_width()
        pi, po = self.get_instream_width_padded(), self.get_outstream_width_padded()
        ports = finn_common.axis_port("in0_V", pi, "in")
        for i in range(m):
            ports += finn_common.axis_port(f"out{i}_V", po, "out")
        body = [f"  wire [{m * w - 1}:0] out_core;"]
        for i in range(m):
            data = f"out_core[{(i + 1) * w - 1}:{i * w}]"
            body.append(f"  assign out{i}_V_TDATA = {data};" if po == w else
                        f"  assign out{i}_V_TDATA = {{{po - w}'b0, {data}}};")
        body += finn_common.unused_padding([("in0_V", w, pi)])
        rev = list(range(m - 1, -1, -1))  # output i at bits [i*w +: w], bit i of the buses
        conns = [f".in0_V_TDATA(in0_V_TDATA[{w - 1}:0])", ".in0_V_TVALID(in0_V_TVALID)",
                 ".in0_V_TREADY(in0_V_TREADY)", ".out_TDATA(out_core)",
                 ".out_TVALID({" + ", ".join(f"out{i}_V_TVALID" for i in rev) + "})",
                 ".out_TREADY({" + ", ".join(f"out{i}_V_TREADY" for i in rev) + "})"]
        return finn_common.render_wrapper(top, self.CORE, self.core_parameters(), ports, conns, body)
