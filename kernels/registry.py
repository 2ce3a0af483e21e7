"""The one list of the project's kernels, and what the rest of the toolkit does with it.

Each :class:`Kernel` names, as dotted strings (``"package.module:Name"``), the parts its room
``kernels/<name>/`` ships; importing this module imports none of them (nothing heavier than the
standard library), so the numpy-only runtime may read it too. The users iterate the table:

- :func:`kernels.finn_registry.register_finn` - FINN's op registry (the compile flow and the
  tests call it; in its own module because it imports finn);
- :func:`transforms` - the inference transformations QONNX-level op -> HW op (compile steps);
- :func:`qonnx_custom_ops` - the ``custom_op`` dict of the QONNX domain :data:`QONNX_DOMAIN`
  (``kernels/qonnx_ops.py``);
- :func:`emulator` - the bit-exact numpy function of a bundle layer (``fpgarec.runtime``);
- :func:`kernels.finn_registry.prefer_rtl` - the ``_rtl`` preference for FINN's ``SpecializeLayers``;
- :func:`source_ops`, :func:`folding_attr`, :func:`by_op` - names for the compile flow.

Adding a kernel: a room ``kernels/<name>/`` (golden model, FINN op, RTL, README, test) and one
line in :data:`KERNELS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

#: ONNX domain of the kernels' QONNX-level ops (the module qonnx imports to find them)
QONNX_DOMAIN = "kernels.qonnx_ops"
#: FINN's domains of abstract HW ops and of their RTL backends
FINN_DOMAIN = "finn.custom_op.fpgadataflow"
FINN_RTL_DOMAIN = FINN_DOMAIN + ".rtl"


@dataclass(frozen=True)
class Kernel:
    """One kernel room and the op it implements.

    name: the room, ``kernels/<name>/``; op_type: the FINN HW op (abstract, without
    ``_rtl``); finn_op: our abstract HW op (None: FINN's own, e.g. ``DuplicateStreams``; ours
    replaces FINN's of the same name in FINN's domain); rtl_op: the ``_rtl`` backend;
    qonnx_op / transform: the QONNX-level op the export writes and the transformation that
    turns it into the HW op (None: FINN's own conversion makes the HW op); golden: the numpy
    model; emulate: ``(layer attrs) -> function of the batched integer inputs`` for the
    runtime's emulation (None: the emulation has its own code for this FINN op); fold: the
    attribute PE must divide ("" = not folded by PE).
    """

    name: str
    op_type: str
    rtl_op: str
    finn_op: str | None = None
    qonnx_op: str | None = None
    transform: str | None = None
    golden: str | None = None
    emulate: str | None = None
    fold: str = ""


#: the kernels, one entry each (keyword fields as in :class:`Kernel`)
KERNELS: tuple[Kernel, ...] = (
    Kernel("modality_fusion", "ModalityFusion", fold="NumChannels",
           rtl_op="kernels.modality_fusion.finn_op:ModalityFusion_rtl",
           finn_op="kernels.modality_fusion.finn_op:ModalityFusion",
           qonnx_op="kernels.modality_fusion.qonnx_op:ModalityFusion",
           transform="kernels.modality_fusion.transform:InferModalityFusionLayer",
           golden="kernels.modality_fusion.golden", emulate="kernels.modality_fusion.golden:layer_function"),
    Kernel("neighbor_aggregate", "NeighborAggregate", fold="NumChannels",
           rtl_op="kernels.neighbor_aggregate.finn_op:NeighborAggregate_rtl",
           finn_op="kernels.neighbor_aggregate.finn_op:NeighborAggregate",
           qonnx_op="kernels.neighbor_aggregate.qonnx_op:NeighborAggregate",
           transform="kernels.neighbor_aggregate.transform:InferNeighborAggregateLayer",
           golden="kernels.neighbor_aggregate.golden", emulate="kernels.neighbor_aggregate.golden:layer_function"),
    Kernel("attention_aggregate", "AttentionAggregate", fold="NumChannels", rtl_op="kernels.attention_aggregate.finn_op:AttentionAggregate_rtl", finn_op="kernels.attention_aggregate.finn_op:AttentionAggregate", qonnx_op="kernels.attention_aggregate.qonnx_op:AttentionAggregate", transform="kernels.attention_aggregate.transform:InferAttentionAggregateLayer", golden="kernels.attention_aggregate.golden", emulate="kernels.attention_aggregate.golden:layer_function"),  # noqa: E501
    Kernel("lookup", "Lookup", rtl_op="kernels.lookup.finn_op:Lookup_rtl",
           finn_op="kernels.lookup.finn_op:Lookup", golden="kernels.lookup.golden"),
    Kernel("stream", "DuplicateStreams", rtl_op="kernels.stream.finn_op:DuplicateStreams_rtl", fold="NumChannels"),
    Kernel("topk_select", "LabelSelect", rtl_op="kernels.topk_select.finn_op:LabelSelect_rtl",
           finn_op="kernels.topk_select.finn_op:LabelSelect", golden="kernels.topk_select.golden", fold="Labels"),
)


def load(path: str):
    """The object a dotted ``"package.module:Name"`` string names (a module without ``:``)."""
    module, _, attr = path.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def by_op(op_type: str) -> Kernel | None:
    """The kernel of a HW op type (``"LabelSelect"``, ``"LabelSelect_rtl"``), else None."""
    base = op_type.removesuffix("_rtl")
    return next((k for k in KERNELS if k.op_type == base), None)


def rtl_op_types() -> tuple[str, ...]:
    """The ``_rtl`` op types of the kernels (``"Lookup_rtl"``, ...)."""
    return tuple(f"{k.op_type}_rtl" for k in KERNELS)


def folding_attr(op_type: str) -> str:
    """The attribute PE must divide for a kernel's ``_rtl`` op ("" if not PE-folded or not ours)."""
    k = by_op(op_type) if op_type.endswith("_rtl") else None
    return k.fold if k is not None else ""


def source_ops() -> dict[str, str]:
    """QONNX-level op -> what the compile flow makes of it, for the kernels with an exported op."""
    return {k.op_type: f"{k.op_type} (kernels/{k.name})" for k in KERNELS if k.qonnx_op}


def emulator(op: str, attrs: dict):
    """The emulation's function of a bundle layer of generic op ``op`` (its batched integer
    inputs -> its output), or None when no kernel provides one."""
    k = by_op(op)
    if k is None or k.emulate is None:
        return None
    return load(k.emulate)(attrs)


# ------------------------------------------------------------------ with qonnx / FINN
def qonnx_custom_ops() -> dict[str, type]:
    """op type -> class of the kernels' QONNX-level ops (imports them; needs qonnx)."""
    return {k.op_type: load(k.qonnx_op) for k in KERNELS if k.qonnx_op}


def transforms() -> list:
    """The kernels' inference transformations (QONNX-level op -> FINN HW op), instantiated."""
    return [load(k.transform)() for k in KERNELS if k.transform]
