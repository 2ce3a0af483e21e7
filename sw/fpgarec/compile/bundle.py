"""Write a bundle from the final HW-layer model (reading and checking is in
:mod:`fpgarec.runtime.bundle`, which this module re-exports as :func:`load_bundle`).

Every HW layer becomes one ``layers`` entry of the manifest: its generic op (``MVAU`` for
``MVAU_rtl``), implementation, attributes the emulation and the report need, normal input and
output shapes and datatypes, expected cycles, and its parameters as ``.npy`` files in the
smallest integer dtype that holds them (``weights/<layer>.<role>.npy``; roles ``table``,
``weights``, ``thresholds``). Each parameter's FINN datatype is recorded so loading can check
the values' range.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np

import fpgarec
from fpgarec.compile.boards import Board
from fpgarec.compile.folding import lut_floor
from fpgarec.compile.report import design_estimates, write_report
from fpgarec.runtime.bundle import (
    FORMAT,
    MANIFEST,
    Bundle,
    BundleError,
    load_bundle,
    sha256_file,
    stamp_manifest,
    write_text_safely,
)

__all__ = ["write_bundle", "load_bundle", "Bundle", "BundleError"]

log = logging.getLogger(__name__)

#: attributes copied into the manifest (when the layer has them)
LAYER_ATTRS = ("PE", "SIMD", "MW", "MH", "K", "Labels", "ActVal", "noActivation", "binaryXnorMode",
               "NumChannels", "numSteps", "NumEmbeddings", "EmbeddingDim", "numInputVectors",
               "mem_mode", "ram_style", "resType", "NumOutputStreams",
               # the kernels (kernels/*/finn_op.py)
               "Mode", "FracBits", "NullId", "Weights", "WeightBits", "inputDataType", "idDataType",
               "outputDataType", "SeenMode", "NumValidLabels", "LanesPerSorter",
               # attention_aggregate's learned constants and settings; Lookup's id field
               "Query", "TypeBias", "PosBias", "QueryBits", "BiasBits", "ExpMult", "ExpShift", "ExpFracBits",
               "ExpBits", "GuardBits", "OutBits", "EmitWeights", "IdBits")
#: parameter role of each extra input, by generic op
PARAM_ROLES = {"Lookup": {1: "table"}, "Thresholding": {1: "thresholds"}, "MVAU": {1: "weights", 2: "thresholds"}}
#: FINN's reports copied into the bundle
FINN_REPORTS = ("estimate_layer_cycles.json", "estimate_layer_resources.json", "estimate_network_performance.json",
                "op_and_param_counts.json", "folding.json", "folding_balance.json", "auto_folding_config.json")


def _generic(op_type: str) -> tuple[str, str]:
    if op_type.endswith(("_hls", "_rtl")):
        base, impl = op_type.rsplit("_", 1)
        return base, impl
    return op_type, ""


def _compact(arr: np.ndarray) -> np.ndarray:
    """Integer-valued arrays as the smallest signed/unsigned int dtype; others float64."""
    a = np.asarray(arr)
    if a.size and np.all(a == np.round(a)):
        lo, hi = int(a.min()), int(a.max())
        for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return a.astype(dt)
    return a.astype(np.float64)


def _jsonable(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _io(inst, side: str, ind: int = 0) -> dict:
    """The ``io`` record of stream ``ind`` of a layer's ``side`` ("input" / "output")."""
    if side == "input":
        normal, folded = inst.get_normal_input_shape(ind), inst.get_folded_input_shape(ind)
        width, dt = inst.get_instream_width_padded(ind), inst.get_input_datatype(ind)
    else:
        normal, folded = inst.get_normal_output_shape(ind), inst.get_folded_output_shape(ind)
        width, dt = inst.get_outstream_width_padded(ind), inst.get_output_datatype(ind)
    packed = [*list(folded)[:-1], math.ceil(width / 8)]
    return {"datatype": dt.name, "shape_normal": [int(x) for x in normal], "shape_folded": [int(x) for x in folded],
            "shape_packed": [int(x) for x in packed], "stream_width_bits": int(width)}


def describe_layers(model, weights_dir: Path) -> list[dict]:
    """Manifest entries for the layers of ``model`` (saving their parameters under ``weights_dir``)."""
    from qonnx.custom_op.registry import getCustomOp

    layers = []
    weights_dir.mkdir(parents=True, exist_ok=True)
    for node in model.graph.node:
        inst = getCustomOp(node)
        op, impl = _generic(node.op_type)
        attrs = {}
        for a in LAYER_ATTRS:
            try:
                attrs[a] = _jsonable(inst.get_nodeattr(a))
            except (AttributeError, Exception):  # noqa: BLE001 - the op has no such attribute
                continue
        params, dtypes = {}, {}
        for idx, role in PARAM_ROLES.get(op, {}).items():
            if idx >= len(node.input):
                continue
            init = model.get_initializer(node.input[idx])
            if init is None:
                raise BundleError(f"layer {node.name}: input {idx} ({role}) is not a constant")
            rel = f"weights/{node.name}.{role}.npy"
            np.save(weights_dir.parent / rel, _compact(init), allow_pickle=False)
            params[role] = rel
            dtypes[role] = model.get_tensor_datatype(node.input[idx]).name
        layers.append({
            "name": node.name, "op": op, "impl": impl, "attrs": attrs, "params": params, "param_dtypes": dtypes,
            # stream connections (tensor names): the layers form a DAG (the ids fan out)
            "inputs": [i for i in node.input if model.get_initializer(i) is None], "outputs": list(node.output),
            "in_dtype": inst.get_input_datatype(0).name, "out_dtype": inst.get_output_datatype().name,
            "in_shape": [int(x) for x in inst.get_normal_input_shape()],
            "out_shape": [int(x) for x in inst.get_normal_output_shape()],
            "cycles": int(inst.get_exp_cycles()),
            "lut_floor": lut_floor(inst, node.op_type),
        })
    return layers


SEEN = "seen"


def _weights_io(model) -> dict | None:
    """The ``io.weights`` record of a design with the attention weight stream (``emit_weights``:
    the AttentionAggregate layer's second output, a graph output of K beats of W+1 bits per
    query), or None. It gets its own output DMA, ``odma1`` (the name FINN's ``MakeZYNQProject``
    gives the IODMA of the graph's second output)."""
    from qonnx.custom_op.registry import getCustomOp

    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        if node.op_type.startswith("AttentionAggregate") and len(node.output) > 1 and node.output[1] in outputs:
            return {"name": node.output[1], **_io(getCustomOp(node), "output", 1)}
    return None


def add_seen_input(manifest: dict) -> None:
    """Give the design's top-k layer a seen-items bitmap input (in place): ``SeenMode`` 2, a
    second graph input ``seen`` of N labels x 1 bit (PE bits per beat, one beat per score beat)
    and a second input DMA. The compile flow has given FINN's graph the same input
    (``steps.add_seen_input``: LabelSelect_rtl with SeenMode 2, kernels/topk_select); this
    records it in the manifest, which the emulation, the RTL simulation and the PYNQ backend
    read."""
    last = manifest["layers"][-1]
    if last["op"] != "LabelSelect":
        raise BundleError("a seen-items input needs the design to end in a LabelSelect layer")
    last["attrs"]["SeenMode"] = 2
    last["inputs"] = [last["inputs"][0], SEEN]
    n, pe = int(last["attrs"]["Labels"]), int(last["attrs"]["PE"])
    manifest["io"][SEEN] = {"name": SEEN, "datatype": "BINARY", "shape_normal": [1, n],
                            "shape_folded": [1, n // pe, pe], "shape_packed": [1, n // pe, math.ceil(pe / 8)],
                            "stream_width_bits": 8 * math.ceil(pe / 8)}
    manifest["dma"]["input"] = [*manifest["dma"]["input"], "idma1"]
    # an empty slot (fewer than top_k unseen items) holds N: the output must hold it
    bits = int(n).bit_length()
    if int(last["out_dtype"].removeprefix("UINT")) < bits:
        last["out_dtype"] = last["attrs"]["outputDataType"] = f"UINT{bits}"
        out = manifest["io"]["output"]
        out["datatype"] = f"UINT{bits}"
        out["stream_width_bits"] = 8 * math.ceil(bits / 8)
        out["shape_packed"] = [*out["shape_packed"][:-1], math.ceil(bits / 8)]
    manifest["model"]["exclude_seen"] = "on chip: a bitmap of the items each query has seen"


def write_bundle(bundle_dir: Path, model, *, design: str, board: Board, clock_mhz: float, model_info: dict,
                 finn_report_dir: Path, build_config: dict, metrics: dict | None = None,
                 bitstream: dict | None = None, bitstream_files: list[Path] = (),
                 build_info: dict | None = None) -> Path:
    """Write the bundle of the final dataflow ``model`` into ``bundle_dir`` (replaced) and return it.

    ``model_info``: n_items, n_labels, k, dim, top_k, bits, score_scale, fusion, ...;
    ``bitstream``: ``{"built": bool, "reason": str, ...}``; ``bitstream_files``: .bit/.hwh to copy;
    ``build_info``: how the build went (seconds per step, sample queries checked).
    """
    from qonnx.custom_op.registry import getCustomOp

    bundle_dir = Path(bundle_dir)
    if bundle_dir.exists():  # replace an earlier bundle, never an unrelated folder
        if any(bundle_dir.iterdir()) and not (bundle_dir / MANIFEST).is_file():
            raise BundleError(f"{bundle_dir}: exists and is not a bundle; choose another design name or output folder")
        shutil.rmtree(bundle_dir)
    (bundle_dir / "model").mkdir(parents=True)
    (bundle_dir / "reports").mkdir()
    layers = describe_layers(model, bundle_dir / "weights")
    model.save(str(bundle_dir / "model" / "dataflow.onnx"))
    finn_report_dir = Path(finn_report_dir)
    for name in FINN_REPORTS:
        if (finn_report_dir / name).is_file():
            shutil.copy2(finn_report_dir / name, bundle_dir / "reports" / name)
    bit_rel = []
    if bitstream_files:
        (bundle_dir / "bitfile").mkdir()
        for f in bitstream_files:
            shutil.copy2(f, bundle_dir / "bitfile" / Path(f).name)
            bit_rel.append(f"bitfile/{Path(f).name}")
    layer_res = json.loads((finn_report_dir / "estimate_layer_resources.json").read_text())
    perf_file = finn_report_dir / "estimate_network_performance.json"
    crit = json.loads(perf_file.read_text()).get("critical_path_cycles") if perf_file.is_file() else None
    estimates = design_estimates(layers, layer_res, clock_mhz, board.resources, crit)
    first, last = getCustomOp(model.graph.node[0]), getCustomOp(model.graph.node[-1])
    manifest = {
        "format": FORMAT,
        "design": design,
        "board": board.name,
        "part": board.part,
        "shell": board.shell.value,
        "clock_mhz": clock_mhz,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "fpgarec_version": fpgarec.__version__,
        "model": model_info,
        "metrics": metrics or {},
        "tie_rule": "higher score first; equal scores: lower item index first",
        "folding": {layer["name"]: {k: layer["attrs"][k] for k in ("PE", "SIMD") if k in layer["attrs"]} for layer in layers},
        "io": {
            "input": {"name": model.graph.input[0].name, **_io(first, "input")},
            "output": {"name": model.graph.output[0].name, **_io(last, "output")},
        },
        "dma": {"input": ["idma0"], "output": ["odma0"]},
        "layers": layers,
        "estimates": estimates,
        "bitstream": {**(bitstream or {"built": False, "reason": "not requested"}), "files": bit_rel},
        "build_config": build_config,
        "build": build_info or {},
    }
    if build_config.get("exclude_seen"):
        add_seen_input(manifest)
    weights = _weights_io(model)
    if weights is not None:
        manifest["io"]["weights"] = weights
        manifest["dma"]["output"] = [*manifest["dma"]["output"], "odma1"]
    write_report(manifest, bundle_dir / "reports")
    files = {}
    for path in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle_dir).as_posix()
        files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    manifest["files"] = files
    stamp_manifest(manifest)  # the manifest's digest of itself, checked by load_bundle
    write_text_safely(bundle_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")  # never through a symlink
    log.info("bundle written: %s (%d files, %.1f kB)", bundle_dir, len(files),
             sum(f["bytes"] for f in files.values()) / 1e3)
    return bundle_dir
