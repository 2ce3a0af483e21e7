"""The build flow as a list of plain ``step_*(model, cfg) -> model`` functions.

FINN's own builder steps are used where they fit (they take FINN's ``DataflowBuildConfig``,
derived from our :class:`~fpgarec.compile.config.BuildConfig` by
:func:`fpgarec.compile.finn_builder.finn_config`); ours
cover what FINN's defaults do not map for this model (the neighbour mean, padding, folding
for DSP48E1). The runner (:func:`fpgarec.compile.flow.run_steps`) saves every step's model as
``intermediate_models/<step>.onnx`` and checks it against the previous step.

Query path and what each part becomes::

    ids (1,K) UINTn -> Gather x2 (E_id, E_txt) -> Lookup x2       (tables in BRAM, one id per cycle)
                    -> ModalityFusion          -> ModalityFusion  (kernels/modality_fusion)
                    -> NeighborAggregate       -> NeighborAggregate (kernels/neighbor_aggregate)
                       or AttentionAggregate   -> AttentionAggregate (kernels/attention_aggregate;
                       the input is then meta words, Mod -> Gather -> Lookup with IdBits)
                    -> Mul + Quant             -> Thresholding    (agg_quant, scale folded in;
                                                                   exact thresholds, step_exact_thresholds)
                    -> Gemm                    -> MVAU            (W q, integer)
                    -> Relu + Quant            -> Thresholding    (bias, ReLU, Q_u folded in; exact)
                    -> MatMul                  -> MVAU            (scores, N items, padded)
                    -> TopK (inserted)         -> LabelSelect     (top-k ids)

(Exports with cyclic padding use Unsqueeze -> GlobalAveragePool -> GlobalAccPool for the mean.)
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np

from fpgarec.compile import _finn
from fpgarec.compile.config import BuildConfig, FoldingStrategy
from fpgarec.compile.export import INPUT_NAME, OUTPUT_NAME, WEIGHTS_NAME
from fpgarec.compile.finn_builder import finn_config
from fpgarec.compile.fit import check_fit
from fpgarec.errors import FpgarecError
from kernels import finn_registry, registry

log = logging.getLogger(__name__)

#: graph output name once the top-k exists
TOPK_NAME = "topk"
#: the top-k layer's seen-items bitmap input (``exclude_seen``)
SEEN_NAME = "seen"
#: source ops this flow maps to HW layers (others make the build stop, naming the node)
SUPPORTED_OPS = {
    "Gather": "Lookup (constant table, integer ids)",
    "Mod": "(the id field of the attention's meta words: absorbed into the Lookups, IdBits)",
    **registry.source_ops(),  # the kernels' QONNX-level ops (kernels/registry.py)
    "Unsqueeze": "Unsqueeze",
    "Squeeze": "Squeeze",
    "Reshape": "Reshape",
    "Flatten": "(removed between HW layers)",
    "Transpose": "(absorbed around the pool)",
    "GlobalAveragePool": "GlobalAccPool (+ scale into the next thresholds)",
    "AveragePool": "Pool",
    "MultiThreshold": "Thresholding",
    "Quant": "Thresholding / integer weights",
    "MatMul": "MVAU",
    "Gemm": "MVAU (+ bias into thresholds)",
    "Relu": "Thresholding",
    "Mul": "(absorbed into thresholds / TopK)",
    "Add": "(absorbed into thresholds)",
    "TopK": "LabelSelect",
}


class UnsupportedOpError(FpgarecError):
    """The model has an op the flow cannot map to a hardware layer."""

    def __init__(self, node: str, op_type: str):
        self.node, self.op_type = node, op_type
        supported = ", ".join(sorted(SUPPORTED_OPS))
        super().__init__(f"node {node} (op {op_type}) cannot be mapped to a hardware layer; "
                         f"supported ops: {supported}")


# ------------------------------------------------------------------------------- helpers
def _transform(model, *transformations):
    for t in transformations:
        model = model.transform(t)
    return model


def restore_io_names(model):
    """Give the graph inputs and outputs their public names (cleanups rename them): the scores
    or top-k first, then the attention weights (``emit_weights``, :data:`WEIGHTS_NAME`)."""
    if model.graph.input and model.graph.input[0].name != INPUT_NAME:
        model.rename_tensor(model.graph.input[0].name, INPUT_NAME)
    if len(model.graph.input) > 1 and model.graph.input[1].name != SEEN_NAME:
        model.rename_tensor(model.graph.input[1].name, SEEN_NAME)
    if not model.graph.output:
        return model
    outs = list(model.graph.output)
    weights = [o for o in outs if _is_weights_output(model, o.name)]
    ordered = [o for o in outs if o not in weights] + weights
    if [o.name for o in ordered] != [o.name for o in outs]:
        del model.graph.output[:]
        model.graph.output.extend(ordered)
    want = TOPK_NAME if any(n.op_type.startswith(("TopK", "LabelSelect")) for n in model.graph.node) else OUTPUT_NAME
    if model.graph.output[0].name != want:
        model.rename_tensor(model.graph.output[0].name, want)
    if weights and weights[0].name != WEIGHTS_NAME:
        model.rename_tensor(weights[0].name, WEIGHTS_NAME)
    return model


def _is_weights_output(model, name: str) -> bool:
    """Whether graph tensor ``name`` is an attention layer's second output (its weights)."""
    node = model.find_producer(name)
    return node is not None and node.op_type.startswith("AttentionAggregate") and list(node.output).index(name) == 1


def _tidy(model):
    from qonnx.transformation.general import GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    return _transform(model, InferShapes(), InferDataTypes(), InferDataLayouts(), GiveUniqueNodeNames(),
                      RemoveUnusedTensors())


def _annotate_pool_layout(model):
    """Mark ``X -> Transpose(0,3,1,2) -> GlobalAveragePool`` as NHWC -> NCHW.

    Layout inference labels the unsqueezed lookup output (1,K,1,D) wrongly, so
    ``InferGlobalAccPoolLayer`` would pool the wrong axes; with the layouts set it inserts an
    NCHW->NHWC transpose that cancels the existing one.
    """
    from qonnx.core import data_layout
    from qonnx.util.basic import get_by_name

    for node in model.graph.node:
        if node.op_type != "GlobalAveragePool":
            continue
        prod = model.find_producer(node.input[0])
        if prod is not None and prod.op_type == "Transpose" and list(get_by_name(prod.attribute, "perm").ints) == [0, 3, 1, 2]:
            model.set_tensor_layout(prod.input[0], data_layout.NHWC)
            model.set_tensor_layout(prod.output[0], data_layout.NCHW)
    return model


# --------------------------------------------------------------------------------- steps
def step_qonnx_to_finn(model, cfg: BuildConfig):
    """QONNX -> FINN-ONNX: qonnx cleanup, ``ConvertQONNXtoFINN`` (Quant nodes on weights become
    integer initializers with a scale Mul; Quant on activations becomes MultiThreshold), then
    FINN's tidy-up (shapes, constant folding, readable names, datatypes). The id input must be
    annotated with an unsigned integer datatype, else FINN leaves the Gather unmapped. An op
    outside :data:`SUPPORTED_OPS` stops the build here, naming the node."""
    steps = _finn.builder_steps()
    iname = model.graph.input[0].name
    idt = model.get_tensor_datatype(iname)
    if not (idt.is_integer() and not idt.signed()):
        raise FpgarecError(f"graph input {iname} must be annotated with an unsigned integer datatype "
                           f"(e.g. UINT11), found {idt.name}")
    fcfg = finn_config(cfg)
    original = [(n.name, n.op_type) for n in model.graph.node]
    model = steps.step_qonnx_to_finn(model, fcfg)
    model = steps.step_tidy_up(model, fcfg)
    # refuse unmappable ops now: later passes may not terminate on graphs they do not expect.
    # Cleanup renames nodes: name the first node of that op type as the input file does.
    for node in model.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            same = [name for name, op in original if op == node.op_type and name]
            raise UnsupportedOpError(same[0] if same else node.name, node.op_type)
    return restore_io_names(model)


def step_insert_topk(model, cfg: BuildConfig):
    """Append TopK(k) to the scores (qonnx ``InsertTopK``): the accelerator returns item ids.

    Tie rule (higher score first, equal scores: lower index first) on every path: ONNX TopK
    (FINN's numpy execution of LabelSelect) orders equal values by lower index; finn-hlslib's
    ``LabelSelect_Batch`` streams items in index order and inserts a value only where it is
    strictly greater, so an earlier equal item stays ahead; the emulation orders by the unique
    key s·N + (N-1-i). The checks verify the rule on every integer-typed step."""
    from qonnx.transformation.insert_topk import InsertTopK

    if any(n.op_type == "TopK" for n in model.graph.node):
        return restore_io_names(model)
    n_out = model.get_tensor_shape(model.graph.output[0].name)[-1]
    if cfg.top_k > n_out:
        raise FpgarecError(f"top_k {cfg.top_k} exceeds the number of items {n_out}")
    model = model.transform(InsertTopK(k=cfg.top_k, largest=True, sorted=True))
    return restore_io_names(_tidy(model))


def step_streamline(model, cfg: BuildConfig):
    """Move the float scales and biases into thresholds: ``StreamlinePlus``; then the neighbour
    mean: GlobalAveragePool -> GlobalAccPool (the sum) + Mul(1/K), done early so a second
    ``StreamlinePlus`` absorbs the 1/K into the next thresholds; the remaining positive score
    scale is absorbed into the TopK, and the Transpose before the Flatten is dropped (H=W=1)."""
    import finn.transformation.streamline.absorb as absorb
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import (
        InferGlobalAccPoolLayer,
    )
    from finn.transformation.streamline.streamline_plus import StreamlinePlus
    from qonnx.transformation.infer_data_layouts import InferDataLayouts

    model = _transform(model, absorb.AbsorbScalarBiasIntoMultiThreshold(), StreamlinePlus(),
                       InferDataLayouts())
    model = _annotate_pool_layout(model)
    model = _transform(model, InferGlobalAccPoolLayer(), absorb.AbsorbConsecutiveTransposes(),
                       InferDataLayouts(), StreamlinePlus(), absorb.AbsorbScalarMulAddIntoTopK(),
                       InferDataLayouts(), absorb.AbsorbTransposeIntoFlatten(), InferDataLayouts())
    return restore_io_names(_tidy(model))


def step_exact_thresholds(model, cfg: BuildConfig):
    """Replace the two activation quantizers' thresholds (computed by FINN in float32, a tie
    rounded up) with exact ones that round half to even like the student
    (:mod:`fpgarec.compile.exact_rounding`, from the export's ``fpgarec.quantizers`` metadata).
    From here on every threshold is an exact integer on an integer input."""
    from fpgarec.compile import exact_rounding
    from fpgarec.compile.export import read_metadata

    model, _ = exact_rounding.apply(model, read_metadata(model).get("quantizers"))
    return model


step_exact_thresholds.exact_rounding = True


def step_pad_items(model, cfg: BuildConfig):
    """Pad the scoring MatMul's item count N up to a multiple of ``pad_items_multiple``.

    The padded columns hold w_min, the smallest weight of the layer. Its input u is unsigned
    (ReLU output), so a padded item scores w_min Σ u <= w · u for every real item; an equal
    score loses the tie to the real item's lower index. Padded items therefore never enter
    the top-k (k <= N), and w_min keeps the weights narrow-range (RTL MVAU on DSP48E1).
    """
    m = int(cfg.pad_items_multiple)
    topk = next((n for n in model.graph.node if n.op_type == "TopK"), None)
    if m <= 1 or topk is None:
        return model
    mm = model.find_producer(topk.input[0])
    if mm is None or mm.op_type != "MatMul" or model.get_initializer(mm.input[1]) is None:
        raise FpgarecError("cannot pad the items: the scores are not produced by a MatMul with constant weights")
    w = model.get_initializer(mm.input[1])
    n = w.shape[1]
    n_pad = int(math.ceil(n / m) * m)
    if n_pad == n:
        return model
    idt = model.get_tensor_datatype(mm.input[0])
    if idt.min() < 0:
        raise FpgarecError(f"cannot pad the items: the scoring input is signed ({idt.name}); "
                           "set pad_items_multiple=1")
    wdt = model.get_tensor_datatype(mm.input[1])
    pad = np.full((w.shape[0], n_pad - n), w.min(), dtype=w.dtype)
    model.set_initializer(mm.input[1], np.concatenate([w, pad], axis=1))
    model.set_tensor_datatype(mm.input[1], wdt)
    model.set_tensor_shape(mm.output[0], [1, n_pad])
    log.info("scoring layer padded from %d to %d items (pad weight %g)", n, n_pad, float(w.min()))
    return restore_io_names(_tidy(model))


def step_convert_to_hw(model, cfg: BuildConfig):
    """Convert to FINN HW layers, thresholds standalone (the RTL MVAU has none inside): the
    kernels' QONNX-level ops -> their HW ops (kernels/*/transform.py),
    MultiThreshold -> Thresholding, MatMul -> MVAU, TopK -> LabelSelect, Gather -> Lookup,
    GlobalAccPool, Unsqueeze/Squeeze/Reshape; Flatten between HW layers is removed. Any node
    left unconverted stops the build, naming it, its op type and the supported set. The top-k
    layer learns the real item count (``NumValidLabels``: padded items are never selected)
    and, with ``exclude_seen``, gets its seen-items bitmap input (:func:`add_seen_input`)."""
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import (
        InferDuplicateStreamsLayer,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.global_acc_pool import (
        InferGlobalAccPoolLayer,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.lookup import InferLookupLayer
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.reshape import InferReshape
    from finn.transformation.fpgadataflow.convert_to_hw.squeeze import InferSqueeze
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.fpgadataflow.convert_to_hw.unsqueeze import InferUnsqueeze
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
    from kernels.lookup.transform import InferIdFieldLookupLayer
    from qonnx.custom_op.registry import getCustomOp

    from fpgarec.compile.export import read_metadata

    model = _transform(model, *registry.transforms(), InferIdFieldLookupLayer(), InferThresholdingLayer(),
                       InferQuantizedMatrixVectorActivation(), InferLabelSelectLayer(), InferGlobalAccPoolLayer(),
                       InferLookupLayer(), InferUnsqueeze(), InferSqueeze(), InferDuplicateStreamsLayer(),
                       AbsorbConsecutiveTransposes(), RemoveCNVtoFCFlatten())
    model = _tidy(model)
    model = model.transform(InferReshape())
    model = _tidy(model)
    for node in model.graph.node:
        if not node.domain.startswith("finn.custom_op.fpgadataflow"):
            raise UnsupportedOpError(node.name, node.op_type)
    n_items = read_metadata(model).get("n_items")
    for node in model.get_nodes_by_op_type("LabelSelect"):
        inst = getCustomOp(node)
        if n_items and int(n_items) < inst.get_nodeattr("Labels"):
            inst.set_nodeattr("NumValidLabels", int(n_items))
    if cfg.exclude_seen:
        model = _tidy(add_seen_input(model))
    return restore_io_names(model)


def add_seen_input(model):
    """Give the graph's LabelSelect a seen-items bitmap (``SeenMode`` 2): a second graph input
    ``seen`` of (1, Labels) BINARY, bit i set = label i is not selected (kernels/topk_select;
    FINN streams it as PE bits per score beat). The checks feed it zeros (nothing seen), so the
    graph computes what it computed before."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    nodes = model.get_nodes_by_op_type("LabelSelect")
    if len(nodes) != 1 or len(nodes[0].input) != 1:
        raise FpgarecError("a seen-items input needs the design to end in one LabelSelect layer")
    node = nodes[0]
    inst = getCustomOp(node)
    inst.set_nodeattr("SeenMode", 2)
    shape = [*inst.get_nodeattr("numInputVectors"), inst.get_nodeattr("Labels")]
    model.graph.input.append(helper.make_tensor_value_info(SEEN_NAME, TensorProto.FLOAT, shape))
    model.set_tensor_datatype(SEEN_NAME, DataType["BINARY"])
    node.input.append(SEEN_NAME)
    getCustomOp(node)  # the output datatype now holds Labels (a query may have < K eligible labels)
    return model


def step_minimize_bit_width_initial(model, cfg: BuildConfig):
    """FINN's first bit-width minimisation: weight and accumulator datatypes from the actual
    values (so specialisation sees e.g. an 11-bit instead of a 32-bit accumulator), then
    thresholds rounded and clipped to the integer input range (exact for integer inputs)."""
    return _finn.builder_steps().step_minimize_bit_width_initial(model, finn_config(cfg))


def step_create_dataflow_partition(model, cfg: BuildConfig):
    """FINN's dataflow partition; the whole query path must be one partition (no host-side
    leftovers), and the returned model is that partition."""
    model = _finn.builder_steps().step_create_dataflow_partition(model, finn_config(cfg))
    return restore_io_names(model)


def step_specialize_layers(model, cfg: BuildConfig):
    """FINN's ``SpecializeLayers`` for the board's part: every HW layer becomes its HLS or RTL
    variant (``mvau_impl`` sets the MVAU preference; RTL MVAU needs narrow weights on DSP48E1).
    The layers a kernel of ``kernels/registry.py`` implements (Lookup, DuplicateStreams,
    LabelSelect, the fusion and aggregation kernels) are first marked
    ``preferred_impl_style="rtl"`` (``finn_registry.prefer_rtl``; "hls" where the kernel's RTL
    cannot build the node), so they become the kernels' ``_rtl`` layers."""
    model = finn_registry.prefer_rtl(model)
    return _finn.builder_steps().step_specialize_layers(model, finn_config(cfg))


def step_set_folding(model, cfg: BuildConfig):
    """Parallelism of every layer: FINN's ``SetFolding`` at T = f_clk / target_qps (and the same
    rule for the kernels' ``_rtl`` layers, :func:`fpgarec.compile.folding.fold_kernels`), then
    (strategy ``balanced``) :func:`fpgarec.compile.folding.balance` towards the latency goal within
    ``max_utilization`` of the board, then the folding file if one is given (it wins).
    The folding used is written to ``<work>/finn/report/folding.json``."""
    from finn.util.config import extract_model_config_to_json

    from fpgarec.compile.folding import fold_kernels

    steps = _finn.builder_steps()
    fcfg = finn_config(cfg)
    model = steps.step_target_fps_parallelization(model, fcfg)
    fold_kernels(model, cfg.target_cycles())
    report_dir = Path(fcfg.output_dir) / "report"
    if cfg.folding is FoldingStrategy.BALANCED:
        from fpgarec.compile.folding import balance

        board = cfg.resolve_board()
        summary = balance(model, board.part, board.resources, cfg.target_cycles(),
                          cfg.latency_budget_cycles(), cfg.max_utilization)
        (report_dir / "folding_balance.json").write_text(json.dumps(summary, indent=2))
        log.info("folding: latency %d cycles, slowest layer %d cycles", summary["latency_cycles"], summary["max_cycles"])
    model = steps.step_apply_folding_config(model, fcfg)
    attrs = ["PE", "SIMD", "ram_style", "resType", "mem_mode", "runtime_writeable_weights"]
    extract_model_config_to_json(model, str(report_dir / "folding.json"), attrs)
    return model


def step_minimize_bit_width(model, cfg: BuildConfig):
    """FINN's second bit-width minimisation, after specialisation and folding."""
    return _finn.builder_steps().step_minimize_bit_width(model, finn_config(cfg))


def step_generate_estimate_reports(model, cfg: BuildConfig):
    """FINN's cycle and resource estimates (``report/estimate_*.json``), then the fit check: a
    design whose estimate exceeds ``max_utilization`` of any board resource is refused here,
    before code generation, naming the resource and suggesting a folding change
    (:func:`fpgarec.compile.fit.check_fit`)."""
    fcfg = finn_config(cfg)
    model = _finn.builder_steps().step_generate_estimate_reports(model, fcfg)
    if cfg.check_fit:
        check_fit(Path(fcfg.output_dir) / "report", cfg, model)
    else:
        log.warning("FINN's resource estimate is not checked against the board (check_fit off): "
                    "measure the design with `fpgarec sim BUNDLE --synth`")
    return model


def step_hw_codegen(model, cfg: BuildConfig):
    """FINN's ``PrepareIP``: HLS C++ and tcl for HLS layers, filled RTL templates for RTL
    layers, in the FINN work folder. Runs without Vivado."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finn.builder_steps().step_hw_codegen(model, finn_config(cfg))


def _vivado_step(name: str):
    def step(model, cfg: BuildConfig):
        return getattr(_finn.builder_steps(), name)(model, finn_config(cfg))

    step.__name__ = name
    step.__doc__ = f"FINN's ``{name}`` (needs Vivado / Vitis HLS)."
    return step


#: the flow up to generated sources (runs without Vivado)
STEPS = [
    step_qonnx_to_finn,
    step_insert_topk,
    step_streamline,
    step_exact_thresholds,
    step_pad_items,
    step_convert_to_hw,
    step_minimize_bit_width_initial,
    step_create_dataflow_partition,
    step_specialize_layers,
    step_set_folding,
    step_minimize_bit_width,
    step_generate_estimate_reports,
    step_hw_codegen,
]

#: FINN's Vivado stages: HLS synthesis, FIFO sizing, stitching, bitfile, driver
VIVADO_STEPS = [_vivado_step(n) for n in (
    "step_hw_ipgen", "step_set_fifo_depths", "step_create_stitched_ip", "step_prepare_synthesis",
    "step_synthesize_bitfile", "step_make_driver",
)]
