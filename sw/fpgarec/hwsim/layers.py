"""RTL backends of a bundle's HW layers: which SystemVerilog module implements each layer, with
which parameters, stream ports and ROM files.

A bundle layer (manifest ``layers[i]``: ``op``, ``attrs``, ``params``, ``in_dtype``/``out_dtype``)
maps to one :class:`RtlLayer` through :data:`BACKENDS` (op -> builder). Every port is a stream
of ``lanes`` elements of ``bits`` bits per beat (lane 0 in the least significant bits):

    op                  module                kernel room                   ports (lanes)
    DuplicateStreams    axis_dup              kernels/stream                in0 (PE) -> M x (PE)
    Lookup              lookup_rom            kernels/lookup                in0 (1 id or meta word) -> out0 (D)
    ModalityFusion      modality_fusion       kernels/modality_fusion       M x (PE) -> out0 (PE)
    NeighborAggregate   neighbor_aggregate    kernels/neighbor_aggregate    in0 (PE), in1 (1 id) -> out0 (PE)
    AttentionAggregate  attention_aggregate   kernels/attention_aggregate   in0 (PE), in1 (1 meta word) -> out0 (PE)[, out1 (1 weight)]
    Thresholding        thresholding_stream   kernels/thresholding          in0 (PE) -> out0 (PE)
    MVAU                mvau_stream           kernels/matrix_vector         in0 (SIMD) -> out0 (PE)
    LabelSelect         topk_select           kernels/topk_select           in0 (PE)[, in1 (1 id)] -> out0 (1)

The folding (PE, SIMD) is the bundle's: the RTL computes what the bundle's layer computes, at
the layer's own parallelism. A layer whose op has no RTL backend raises :class:`NoRtlBackend`
naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from kernels.attention_aggregate import golden as attention_golden
from kernels.lookup import golden as lookup_golden
from kernels.matrix_vector import golden as mvau_golden
from kernels.modality_fusion import golden as fusion_golden
from kernels.neighbor_aggregate import golden as aggregate_golden
from kernels.thresholding import golden as threshold_golden
from kernels.topk_select import golden as topk_golden

from fpgarec.errors import FpgarecError
from fpgarec.runtime.bundle import Bundle
from kernels import hwtools

#: MVAU weight ROMs at least this deep go to block RAM (with ``ram_style`` "auto")
BLOCK_ROM_DEPTH = 64


class NoRtlBackend(FpgarecError):
    """A layer of the design has no RTL implementation (the message names it)."""


def parse_dtype(name: str) -> tuple[int, bool]:
    """(bits, signed) of a FINN integer datatype name: ``INT4`` -> (4, True), ``UINT11`` ->
    (11, False)."""
    if name.startswith("UINT"):
        return int(name[4:]), False
    if name.startswith("INT"):
        return int(name[3:]), True
    raise FpgarecError(f"datatype {name}: only INTn / UINTn streams have an RTL backend")


@dataclass(frozen=True)
class Port:
    """One stream port of a module: ``prefix`` names its TDATA/TVALID/TREADY signals
    (``{prefix}_TDATA``); ``index`` selects bit ``index`` of a shared valid/ready bus and slice
    ``index`` of a shared data bus (ports of one bus: modality_fusion's inputs, axis_dup's
    outputs)."""

    prefix: str
    lanes: int
    bits: int
    index: int | None = None
    #: the module's port takes only the low ``used_bits`` of the (one-lane) stream, e.g. a
    #: Lookup's id field of the attention design's meta words (None: all ``bits``)
    used_bits: int | None = None

    @property
    def width(self) -> int:
        return self.lanes * self.bits


@dataclass
class RtlLayer:
    """A layer's RTL: module name, Verilog parameters, its input/output ports in the order of
    the layer's ``inputs``/``outputs`` tensors, ROM files to write (relative name -> lines),
    the source files, and the cycles per query the module needs (for reporting)."""

    name: str
    op: str
    module: str
    params: dict[str, object]
    inputs: list[Port]
    outputs: list[Port]
    sources: list[Path]
    cycles: int
    mem_files: dict[str, list[str]] = field(default_factory=dict)
    #: bus widths of shared buses: prefix -> number of ports on it
    buses: dict[str, int] = field(default_factory=dict)


def _attrs(layer: dict) -> dict:
    return layer.get("attrs", {})


def _dup(layer: dict, bundle: Bundle) -> RtlLayer:
    a = _attrs(layer)
    bits, _ = parse_dtype(a.get("inputDataType", layer["in_dtype"]))
    pe, m = int(a["PE"]), int(a.get("NumOutputStreams", len(layer["outputs"])))
    chans = int(a.get("NumChannels", pe))
    return RtlLayer(layer["name"], layer["op"], "axis_dup", {"WIDTH": pe * bits, "M": m},
                    [Port("in0_V", pe, bits)], [Port("out", pe, bits, index=i) for i in range(m)],
                    hwtools.SOURCES["axis_dup"], chans // pe, buses={"out": m})


def _lookup(layer: dict, bundle: Bundle) -> RtlLayer:
    a = _attrs(layer)
    table = bundle.array(layer["params"]["table"]).astype(np.int64)
    n, d = table.shape
    bits, _ = parse_dtype(layer["param_dtypes"]["table"])
    word_bits, _ = parse_dtype(layer["in_dtype"])
    id_bits = int(a.get("IdBits") or word_bits)  # IdBits: the id field of the attention's meta words
    pe = int(a.get("PE", d))
    mem = f"{layer['name']}.table.mem"
    return RtlLayer(layer["name"], layer["op"], "lookup_rom",
                    {"N_ENTRIES": n, "D": d, "PE": pe, "BITS": bits, "ID_BITS": id_bits,
                     "TABLE_FILE": f'"{mem}"'},
                    [Port("in0_V", 1, word_bits, used_bits=id_bits if id_bits < word_bits else None)],
                    [Port("out0_V", pe, bits)],
                    hwtools.SOURCES["lookup_rom"], int(np.prod(layer["in_shape"][1:])) * (d // pe),
                    mem_files={mem: lookup_golden.table_mem_lines(table, bits)})


def _fusion(layer: dict, bundle: Bundle) -> RtlLayer:
    p = fusion_golden.params_from_attrs(lambda k: _attrs(layer)[k])
    return RtlLayer(layer["name"], layer["op"], "modality_fusion", hwtools.fusion_hdl_params(p),
                    [Port("in", p.pe, p.in_bits, index=m) for m in range(p.m)],
                    [Port("out0_V", p.pe, p.out_bits)], hwtools.SOURCES["modality_fusion"],
                    p.d // p.pe * int(np.prod(_attrs(layer).get("numInputVectors", [1])[1:] or [1])),
                    buses={"in": p.m})


def _aggregate(layer: dict, bundle: Bundle) -> RtlLayer:
    p = aggregate_golden.params_from_attrs(lambda k: _attrs(layer)[k])
    return RtlLayer(layer["name"], layer["op"], "neighbor_aggregate", hwtools.aggregate_hdl_params(p),
                    [Port("in0_V", p.pe, p.in_bits), Port("in1_V", 1, p.id_bits)],
                    [Port("out0_V", p.pe, p.out_bits)], hwtools.SOURCES["neighbor_aggregate"],
                    p.k * p.d // p.pe)


def _attention(layer: dict, bundle: Bundle) -> RtlLayer:
    """attention_aggregate: in0 the fused vectors (PE lanes), in1 the meta words (one per slot);
    out0 u; the weight stream out1 (EMIT_WEIGHTS) is a second output when the layer has one."""
    p = attention_golden.params_from_attrs(lambda k: _attrs(layer)[k])
    outputs = [Port("out0_V", p.pe, p.out_bits)] + ([Port("out1_V", 1, p.weight_bits)] if p.emit_weights else [])
    return RtlLayer(layer["name"], layer["op"], "attention_aggregate", attention_golden.hdl_params(p),
                    [Port("in0_V", p.pe, p.in_bits), Port("in1_V", 1, p.meta_bits)], outputs,
                    hwtools.SOURCES["attention_aggregate"], attention_golden.cycles(p).per_query)


def _thresholding(layer: dict, bundle: Bundle) -> RtlLayer:
    a = _attrs(layer)
    thr = bundle.array(layer["params"]["thresholds"]).astype(np.int64)
    in_bits, in_signed = parse_dtype(layer["in_dtype"])
    out_bits, out_signed = parse_dtype(layer["out_dtype"])
    t_bits, _ = parse_dtype(layer["param_dtypes"]["thresholds"])
    p = threshold_golden.ThresholdParams(
        thresholds=tuple(map(tuple, thr.tolist())), c=int(a["NumChannels"]), pe=int(a["PE"]),
        in_bits=in_bits, in_signed=in_signed, t_bits=t_bits, bias=int(a.get("ActVal", 0)),
        out_bits=out_bits, out_signed=out_signed)
    return RtlLayer(layer["name"], layer["op"], "thresholding_stream", threshold_golden.hdl_params(p),
                    [Port("in0_V", p.pe, in_bits)], [Port("out0_V", p.pe, out_bits)],
                    hwtools.SOURCES["thresholding_stream"], p.expected_cycles())


def _mvau(layer: dict, bundle: Bundle) -> RtlLayer:
    a = _attrs(layer)
    if int(a.get("binaryXnorMode", 0)) or not int(a.get("noActivation", 1)):
        raise NoRtlBackend(f"layer {layer['name']}: only MVAUs without activation and without "
                           "XNOR mode have an RTL backend (thresholds are a separate layer)")
    w = bundle.array(layer["params"]["weights"]).astype(np.int64)
    in_bits, in_signed = parse_dtype(layer["in_dtype"])
    out_bits, _ = parse_dtype(layer["out_dtype"])
    w_bits, _ = parse_dtype(layer["param_dtypes"]["weights"])
    # 4x4-bit products are cheaper in LUTs than in DSP48s; wider ones go to DSPs
    p = mvau_golden.MvauParams(mw=int(a["MW"]), mh=int(a["MH"]), pe=int(a["PE"]), simd=int(a["SIMD"]),
                               in_bits=in_bits, in_signed=in_signed, w_bits=w_bits, out_bits=out_bits,
                               lut_mac=int(in_bits * w_bits <= 16))
    mem = f"{layer['name']}.weights.mem"
    words = mvau_golden.weight_words(w, p.pe, p.simd, w_bits)
    params = mvau_golden.hdl_params(p, mem)
    # the weight ROM: block RAM when the bundle asks for it or when it is deep (Yosys maps a
    # deep ROM to LUT logic otherwise: the demo's scoring ROM would need more LUTs than an
    # xc7z020 has); shallow ROMs stay in LUTs
    style = str(a.get("ram_style", "auto"))
    params["RAM_STYLE"] = int(style == "block" or (style == "auto" and p.nf * p.sf >= BLOCK_ROM_DEPTH))
    return RtlLayer(layer["name"], layer["op"], "mvau_stream", params,
                    [Port("in0_V", p.simd, in_bits)], [Port("out0_V", p.pe, out_bits)],
                    hwtools.SOURCES["mvau_stream"], p.expected_cycles(),
                    mem_files={mem: lookup_golden.hex_lines(words, p.pe * p.simd * w_bits)})


def _labelselect(layer: dict, bundle: Bundle, producer: RtlLayer | None = None) -> RtlLayer:
    """topk_select takes its producer's lanes per beat where they divide the label count (no
    width converter; FINN's LabelSelect PE is its HLS folding, not a constraint of this RTL),
    and as many lanes per sorter as the producer's cycles per query allow."""
    a = _attrs(layer)
    n, k, pe = int(a["Labels"]), int(a["K"]), int(a["PE"])
    if producer is not None and n % producer.outputs[0].lanes == 0:
        pe = producer.outputs[0].lanes
    producer_cycles = producer.cycles if producer is not None else None
    in_bits, _ = parse_dtype(layer["in_dtype"])
    out_bits, _ = parse_dtype(a.get("outputDataType", layer["out_dtype"]))
    model = bundle.manifest["model"]
    # SeenMode 2: a seen-items bitmap (PE bits per score beat) excludes items on chip
    mode = int(a.get("SeenMode", 0))
    if mode not in (0, 2):
        raise NoRtlBackend(f"layer {layer['name']}: SeenMode {mode} has no RTL backend (0 or 2)")
    # one candidate per sorter per cycle: L lanes per sorter keeps up with a producer that
    # needs ``producer_cycles`` per query (L divides PE)
    beats = n // pe
    budget = max(1, (producer_cycles or beats) // beats)
    lanes = max(d for d in range(1, pe + 1) if pe % d == 0 and d <= budget)
    # the bundle's own LanesPerSorter (FINN's LabelSelect_rtl) wins when its PE is the one built
    fixed = int(a.get("LanesPerSorter", 0))
    if fixed and pe == int(a["PE"]) and pe % fixed == 0:
        lanes = fixed
    p = topk_golden.TopkParams(n=n, n_valid=int(model["n_items"]), pe=pe, in_bits=in_bits, k=k,
                               out_bits=out_bits, seen_mode=mode, k_ctx=int(model["k"]),
                               id_bits=max(1, int(model["n_items"]).bit_length()),
                               lanes_per_sorter=lanes)
    inputs = [Port("in0_V", pe, in_bits)] + ([Port("in1_V", pe, 1)] if mode == 2 else [])
    return RtlLayer(layer["name"], layer["op"], "topk_select", topk_golden.hdl_params(p), inputs,
                    [Port("out0_V", 1, out_bits)], hwtools.SOURCES["topk_select"],
                    topk_golden.cycles(p).per_query)


#: op -> builder(layer, bundle) -> RtlLayer
BACKENDS: dict[str, Callable[..., RtlLayer]] = {
    "DuplicateStreams": _dup,
    "Lookup": _lookup,
    "ModalityFusion": _fusion,
    "NeighborAggregate": _aggregate,
    "AttentionAggregate": _attention,
    "Thresholding": _thresholding,
    "MVAU": _mvau,
    "LabelSelect": _labelselect,
}


def rtl_layers(bundle: Bundle) -> list[RtlLayer]:
    """The RTL of every layer of ``bundle``, in stream order; raises :class:`NoRtlBackend`
    naming the first layer without one."""
    out: list[RtlLayer] = []
    for layer in bundle.manifest["layers"]:
        build = BACKENDS.get(layer["op"])
        if build is None:
            raise NoRtlBackend(f"layer {layer['name']} (op {layer['op']}) has no RTL backend; "
                               f"RTL exists for {', '.join(sorted(BACKENDS))}")
        if layer["op"] == "LabelSelect" and out:
            prev = {o: r for r, lay in zip(out, bundle.manifest["layers"], strict=False)
                    for o in lay["outputs"]}
            out.append(_labelselect(layer, bundle, prev.get(layer["inputs"][0])))
        else:
            out.append(build(layer, bundle))
    return out
