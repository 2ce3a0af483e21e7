"""The stitcher: one top-level SystemVerilog module for a bundle's whole dataflow design.

From the bundle's layer graph (each layer's ``inputs``/``outputs`` tensors) and the RTL of every
layer (:mod:`fpgarec.hwsim.layers`) it writes ``design_top.sv``:

    in0 (packed context ids) -> FIFO -> layer -> [width converter] -> FIFO -> [converter] -> layer
        ... -> top-k layer -> out0 (one item id per beat)

* every tensor between two layers is one AXI-Stream edge with an ``axis_fifo`` (first word
  fall through, registered valid/ready) placed on the narrower side of an ``axis_dwc`` where the
  producer's lanes per beat differ from the consumer's (one must divide the other);
* FIFO depths come from a sizing simulation (:func:`fpgarec.hwsim.simulate.size_fifos`: run with
  deep FIFOs, record each FIFO's peak occupancy, shrink to it), as FINN sizes its FIFOs with its
  own RTL simulation; the minimum is 2 (a depth-1 FIFO halves a stream's rate);
* ``dbg_occupancy`` (16 bits per FIFO, FIFO i at bits [16 i +: 16]) lets the testbench record
  peak occupancies and name the layer at which a stalled design waits.

The top's ports: ``ap_clk``, ``ap_rst_n`` (active low, synchronous), ``in0_V_TDATA`` (the
graph input's lanes x bits, no byte padding), ``out0_V_TDATA`` (the top-k ids), valid/ready;
``out1_V_TDATA`` where a layer writes a tensor no layer reads besides the top-k (the attention
weights of a design built with ``emit_weights``: W+1 bits, K beats per query), through its own
FIFO (``<layer>->output:<tensor>``).
ROM contents are written beside the top as ``.mem`` files that ``$readmemh`` reads from the
working folder of the simulator or synthesizer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from fpgarec.errors import FpgarecError
from fpgarec.hwsim.layers import Port, RtlLayer, rtl_layers
from fpgarec.runtime.bundle import Bundle
from kernels import hwtools

TOP = "design_top"
#: FIFO depth of the sizing run
SIZING_DEPTH = 256
MIN_DEPTH = 2


@dataclass
class Fifo:
    """One edge FIFO: the tensor it carries, between which layers, how deep and wide."""

    index: int
    tensor: str
    producer: str
    consumer: str
    depth: int
    width: int
    lanes: int
    bits: int

    @property
    def key(self) -> str:
        """``producer->consumer``: stable across builds (FINN names tensors at random)."""
        return f"{self.producer}->{self.consumer}"


@dataclass(frozen=True)
class TopInput:
    """One input stream of the top: the graph tensor it carries, lanes x bits, beats per query."""

    tensor: str
    lanes: int
    bits: int
    beats: int

    @property
    def width(self) -> int:
        return self.lanes * self.bits


@dataclass
class Design:
    """A stitched design: the top's source, ROM files, RTL sources, FIFOs and the stream
    shapes of the top's ports (``inputs``: in0 the context ids, in1 a seen-items bitmap where
    the design has one; out0 lanes x bits, beats per query; ``out1``: the second output, the
    attention weights, where the design has one)."""

    top_sv: str
    mem_files: dict[str, list[str]]
    sources: list[Path]
    fifos: list[Fifo]
    layers: list[RtlLayer]
    inputs: list[TopInput]
    out_lanes: int
    out_bits: int
    out_beats: int
    out1: TopInput | None = None

    @property
    def out_width(self) -> int:
        return self.out_lanes * self.out_bits

    def write(self, folder: Path) -> list[Path]:
        """Write design_top.sv, the ROM files and design.json into ``folder``; returns the SV
        files to compile (the kernels' sources, then the top)."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{TOP}.sv").write_text(self.top_sv)
        for name, lines in self.mem_files.items():
            (folder / name).write_text("\n".join(lines) + "\n")
        info = {"fifos": [asdict(f) for f in self.fifos],
                "layers": [{"name": r.name, "op": r.op, "module": r.module, "cycles": r.cycles}
                           for r in self.layers],
                "in": [[i.tensor, i.lanes, i.bits, i.beats] for i in self.inputs],
                "out": [self.out_lanes, self.out_bits, self.out_beats],
                "out1": None if self.out1 is None else [self.out1.tensor, self.out1.lanes, self.out1.bits,
                                                        self.out1.beats]}
        (folder / "design.json").write_text(json.dumps(info, indent=1))
        return [*self.sources, folder / f"{TOP}.sv"]


class _Signals:
    """Names of a layer port's TDATA/TVALID/TREADY expressions in the top."""

    def __init__(self, layer_idx: int, port: Port):
        base = f"l{layer_idx}_{port.prefix}"
        self.port = port
        if port.index is None:
            self.data, self.valid, self.ready = f"{base}_TDATA", f"{base}_TVALID", f"{base}_TREADY"
        else:
            w, i = port.width, port.index
            self.data = f"{base}_TDATA[{i * w} +: {w}]"
            self.valid, self.ready = f"{base}_TVALID[{i}]", f"{base}_TREADY[{i}]"


def _param_text(params: dict) -> str:
    return ", ".join(f".{k}({v})" for k, v in params.items())


def stitch(bundle: Bundle, depths: dict[str, int] | None = None, default_depth: int = MIN_DEPTH) -> Design:
    """Stitch ``bundle``'s layers into one top. ``depths``: FIFO depth per edge
    (:attr:`Fifo.key`, ``producer->consumer``), else ``default_depth``."""
    layers = rtl_layers(bundle)
    manifest_layers = bundle.manifest["layers"]
    producer, consumer, graph_out, top_inputs = _graph(manifest_layers)
    sig, decl, mem_files, sources = _layer_signals(layers)
    out_port = layers[producer[graph_out][0]].outputs[producer[graph_out][1]]
    edges = _Edges(decl, depths or {}, default_depth)

    inputs: list[TopInput] = []
    port_decl: list[str] = []
    for ti, tensor in enumerate(top_inputs):
        ci, cp = consumer[tensor]
        s = sig[("in", ci, cp)]
        shape = manifest_layers[ci]["in_shape"] if ti == 0 else [1, *bundle.manifest["io"][tensor]["shape_normal"][1:]]
        inputs.append(TopInput(tensor, s.port.lanes, s.port.bits, _beats(shape, s.port.lanes)))
        port_decl.append(f"  input  logic [{s.port.width - 1}:0] in{ti}_V_TDATA, input logic in{ti}_V_TVALID, "
                         f"output logic in{ti}_V_TREADY,")
        edges.add(tensor, (f"in{ti}_V_TDATA", f"in{ti}_V_TVALID", f"in{ti}_V_TREADY", s.port.lanes, s.port.bits,
                           f"input:{tensor}"),
                  (s.data, s.valid, s.ready, s.port.lanes, s.port.bits, layers[ci].name))
    out1 = None
    for tensor, (pl, pp) in producer.items():
        if tensor == graph_out:
            continue
        a = sig[("out", pl, pp)]
        if tensor not in consumer:
            if out1 is not None:
                raise FpgarecError(f"tensors {out1.tensor} and {tensor} are read by no layer: the top has "
                                   "one output besides the top-k")
            shape = [1, *_second_output_shape(bundle, manifest_layers[pl], tensor)]
            out1 = TopInput(tensor, a.port.lanes, a.port.bits, _beats(shape, a.port.lanes))
            port_decl.append(f"  output logic [{a.port.width - 1}:0] out1_V_TDATA, output logic out1_V_TVALID, "
                             "input logic out1_V_TREADY,")
            edges.add(tensor, (a.data, a.valid, a.ready, a.port.lanes, a.port.bits, layers[pl].name),
                      ("out1_V_TDATA", "out1_V_TVALID", "out1_V_TREADY", a.port.lanes, a.port.bits,
                       f"output:{tensor}"))
            continue
        cl, cp = consumer[tensor]
        b = sig[("in", cl, cp)]
        edges.add(tensor, (a.data, a.valid, a.ready, a.port.lanes, a.port.bits, layers[pl].name),
                  (b.data, b.valid, b.ready, b.port.lanes, b.port.bits, layers[cl].name))
    pl, pp = producer[graph_out]
    o = sig[("out", pl, pp)]
    lines = edges.lines
    lines.append(f"  assign out0_V_TDATA = {o.data};\n  assign out0_V_TVALID = {o.valid};\n"
                 f"  assign {o.ready} = out0_V_TREADY;")
    lines += _instances(layers)

    nf = len(edges.fifos)
    header = [
        f"// {TOP}: the whole dataflow design of bundle {bundle.manifest.get('design', '?')}, "
        "generated by fpgarec.hwsim.stitch (do not edit).",
        f"// layers: {', '.join(f'{r.name} ({r.module})' for r in layers)}",
        f"module {TOP} (",
        "  input  logic ap_clk, ap_rst_n,",
        *port_decl,
        f"  output logic [{out_port.width - 1}:0] out0_V_TDATA, output logic out0_V_TVALID, input logic out0_V_TREADY,",
        f"  output logic [{16 * nf - 1}:0] dbg_occupancy",
        ");",
    ]
    top = "\n".join(header + decl + lines + ["endmodule", ""])
    out_beats = _beats(manifest_layers[-1]["out_shape"], out_port.lanes)
    return Design(top, mem_files, sources, edges.fifos, layers, inputs, out_port.lanes, out_port.bits, out_beats,
                  out1)


def _second_output_shape(bundle: Bundle, layer: dict, tensor: str) -> list[int]:
    """The per-query shape (batch axis dropped) of a layer output no layer reads: the io record
    naming it (``io.weights``: the attention weights, [K])."""
    for entry in bundle.manifest["io"].values():
        if isinstance(entry, dict) and entry.get("name") == tensor:
            return [int(x) for x in entry["shape_normal"][1:]]
    raise FpgarecError(f"tensor {tensor} of layer {layer['name']} is read by no layer and is no design output")


def _graph(manifest_layers: list[dict]):
    """``(producer, consumer, graph_out, top_inputs)`` of the layer graph: tensor -> (layer
    index, port index) of the layer writing / reading it (each tensor feeds one layer), the
    top-k output, and the top's input tensors (the ids in0, then every other tensor no layer
    produces: a seen bitmap in1)."""
    producer: dict[str, tuple[int, int]] = {}
    consumer: dict[str, tuple[int, int]] = {}
    for li, lay in enumerate(manifest_layers):
        for pi, t in enumerate(lay["outputs"]):
            producer[t] = (li, pi)
        for pi, t in enumerate(lay["inputs"]):
            if t in consumer:
                raise FpgarecError(f"tensor {t} feeds two layers; a DuplicateStreams layer must split it")
            consumer[t] = (li, pi)
    graph_in = manifest_layers[0]["inputs"][0]
    graph_out = manifest_layers[-1]["outputs"][0]
    if graph_in in producer or graph_out not in producer:
        raise FpgarecError("the design must start with a layer reading the ids and end with the top-k layer")
    top_inputs = [graph_in] + [t for t in consumer if t not in producer and t != graph_in]
    return producer, consumer, graph_out, top_inputs


def _layer_signals(layers: list[RtlLayer]):
    """``(sig, decl, mem_files, sources)``: the signals of every layer port (``("in" | "out",
    layer, port)`` -> :class:`_Signals`) and their declarations, the layers' ROM files and the
    SV sources to compile (the layers', then the FIFO's and the width converter's)."""
    decl: list[str] = []
    sig: dict[tuple[str, int, int], _Signals] = {}
    mem_files: dict[str, list[str]] = {}
    sources: list[Path] = []
    for li, r in enumerate(layers):
        mem_files.update(r.mem_files)
        for s in r.sources:
            if s not in sources:
                sources.append(s)
        for kind, ports in (("in", r.inputs), ("out", r.outputs)):
            declared = set()
            for pi, port in enumerate(ports):
                sig[(kind, li, pi)] = _Signals(li, port)
                base = f"l{li}_{port.prefix}"
                if base in declared:
                    continue
                declared.add(base)
                n = r.buses.get(port.prefix, 1) if port.index is not None else 1
                decl.append(f"  logic [{n * port.width - 1}:0] {base}_TDATA;")
                decl.append(f"  logic [{n - 1}:0] {base}_TVALID, {base}_TREADY;")
    for s in (hwtools.SOURCES["axis_fifo"] + hwtools.SOURCES["axis_dwc"]):
        if s not in sources:
            sources.append(s)
    return sig, decl, mem_files, sources


class _Edges:
    """The top's edges, one per tensor between two stream ends: their FIFOs, the declarations
    (appended to ``decl``) and the assignments and instances (``lines``)."""

    def __init__(self, decl: list[str], depths: dict[str, int], default_depth: int):
        self.decl, self.depths, self.default_depth = decl, depths, default_depth
        self.lines: list[str] = []
        self.fifos: list[Fifo] = []

    def add(self, tensor: str, src: tuple[str, str, str, int, int, str],
            dst: tuple[str, str, str, int, int, str]) -> None:
        """src/dst: (data, valid, ready, lanes, bits, layer name)."""
        sd, sv, sr, sl, sb, sname = src
        dd, dv, dr, dl, db, dname = dst
        if sb != db:
            raise FpgarecError(f"tensor {tensor}: {sname} writes {sb}-bit lanes, {dname} reads {db}-bit lanes")
        if sl % dl and dl % sl:
            raise FpgarecError(f"tensor {tensor}: {sname} writes {sl} lanes per beat, {dname} reads "
                               f"{dl}; one must divide the other (change the folding)")
        narrow = min(sl, dl)
        fi = len(self.fifos)
        depth = int(self.depths.get(f"{sname}->{dname}", self.default_depth))
        self.fifos.append(Fifo(fi, tensor, sname, dname, depth, narrow * sb, narrow, sb))
        e = f"e{fi}"
        w_nar = narrow * sb
        # no tensor name here: FINN names tensors at random, and the top's text is the build caches' key
        self.decl.append(f"  // {sname} ({sl} lanes) -> {dname} ({dl} lanes), FIFO {fi} depth {depth}")
        self.decl.append(f"  logic [{w_nar - 1}:0] {e}_a_TDATA, {e}_b_TDATA;")
        self.decl.append(f"  logic {e}_a_TVALID, {e}_a_TREADY, {e}_b_TVALID, {e}_b_TREADY;")
        lines = self.lines
        # src -> (dwc down) -> a ; a -> fifo -> b ; b -> (dwc up) -> dst
        if sl > dl:
            lines.append(f"  axis_dwc #(.IN_LANES({sl}), .OUT_LANES({narrow}), .BITS({sb})) {e}_dwc (\n"
                         f"    .ap_clk, .ap_rst_n, .in0_V_TDATA({sd}), .in0_V_TVALID({sv}), .in0_V_TREADY({sr}),\n"
                         f"    .out0_V_TDATA({e}_a_TDATA), .out0_V_TVALID({e}_a_TVALID), .out0_V_TREADY({e}_a_TREADY));")
        else:
            lines.append(f"  assign {e}_a_TDATA = {sd};\n  assign {e}_a_TVALID = {sv};\n  assign {sr} = {e}_a_TREADY;")
        lines.append(f"  axis_fifo #(.WIDTH({w_nar}), .DEPTH({depth})) fifo{fi} (\n"
                     f"    .ap_clk, .ap_rst_n, .in0_V_TDATA({e}_a_TDATA), .in0_V_TVALID({e}_a_TVALID), .in0_V_TREADY({e}_a_TREADY),\n"
                     f"    .out0_V_TDATA({e}_b_TDATA), .out0_V_TVALID({e}_b_TVALID), .out0_V_TREADY({e}_b_TREADY),\n"
                     f"    .occupancy(dbg_occupancy[{16 * fi} +: 16]));")
        if dl > sl:
            lines.append(f"  axis_dwc #(.IN_LANES({narrow}), .OUT_LANES({dl}), .BITS({sb})) {e}_up (\n"
                         f"    .ap_clk, .ap_rst_n, .in0_V_TDATA({e}_b_TDATA), .in0_V_TVALID({e}_b_TVALID), .in0_V_TREADY({e}_b_TREADY),\n"
                         f"    .out0_V_TDATA({dd}), .out0_V_TVALID({dv}), .out0_V_TREADY({dr}));")
        else:
            lines.append(f"  assign {dd} = {e}_b_TDATA;\n  assign {dv} = {e}_b_TVALID;\n  assign {e}_b_TREADY = {dr};")


def _instances(layers: list[RtlLayer]) -> list[str]:
    """One instance per layer, its streams on the ``l<i>_<prefix>`` signals."""
    lines = []
    for li, r in enumerate(layers):
        conns = []
        seen = set()
        for p in r.inputs + r.outputs:
            if p.prefix in seen:
                continue
            seen.add(p.prefix)
            base = f"l{li}_{p.prefix}"
            data = f"{base}_TDATA" if p.used_bits is None else f"{base}_TDATA[{p.used_bits - 1}:0]"
            conns.append(f".{p.prefix}_TDATA({data}), .{p.prefix}_TVALID({base}_TVALID), "
                         f".{p.prefix}_TREADY({base}_TREADY)")
        if r.module == "topk_select" and len(r.inputs) == 1:  # no seen-items input: tie it off
            conns.append(".in1_V_TDATA('0), .in1_V_TVALID(1'b0), .in1_V_TREADY()")
        if r.module == "attention_aggregate" and len(r.outputs) == 1:  # no weight stream: always ready
            conns.append(".out1_V_TDATA(), .out1_V_TVALID(), .out1_V_TREADY(1'b1)")
        params = _param_text(r.params)
        lines.append(f"  // {r.name}: {r.op}, {r.cycles} cycles per query\n"
                     f"  {r.module} #({params}) u_{r.name} (\n    .ap_clk, .ap_rst_n,\n    "
                     + ",\n    ".join(conns) + "\n  );")
    return lines


def _beats(shape: list[int], lanes: int) -> int:
    n = 1
    for d in shape[1:]:
        n *= int(d)
    if n % lanes:
        raise FpgarecError(f"a query's {n} elements do not fill beats of {lanes} lanes")
    return n // lanes
