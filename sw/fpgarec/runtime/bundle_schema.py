"""What a bundle's manifest must say, checked before anything is computed from it.

:func:`check_manifest` checks the manifest's keys and types, the model record and every layer
record (op, attributes, datatypes, shapes, stream connections, parameter roles);
:func:`expected_params` gives each parameter file's shape and dtype kind from its layer record;
:func:`check_npy_header` reads a ``.npy`` header and refuses a file whose shape, dtype or byte
size differs from that before a byte of its data is read (so a header declaring (10^11, 64)
allocates nothing). Every refusal is a :class:`~fpgarec.runtime.bundle.BundleError` of one line
naming the manifest or the parameter file.

Parameter shapes by layer (from the layer record):

    Lookup        table       (NumEmbeddings, EmbeddingDim); NumEmbeddings > the largest id
    Thresholding  thresholds  (NumChannels or 1, numSteps)
    MVAU          weights     (MW, MH); thresholds (MH or 1, numSteps) unless noActivation

Numpy and the standard library only (it runs on a PYNQ board's CPU too).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from kernels import registry

#: top-level keys every bundle has, with their JSON types
REQUIRED = {"format": str, "design": str, "board": str, "part": str, "model": dict, "io": dict, "dma": dict,
            "layers": list, "files": dict}
#: keys a bundle may leave out; when present they have this type
OPTIONAL = {"shell": str, "clock_mhz": (int, float), "created": str, "fpgarec_version": str, "metrics": dict,
            "tie_rule": str, "folding": dict, "estimates": dict, "bitstream": dict, "build_config": dict,
            "build": dict, "rtl": dict, "measured": dict}
#: parameter roles by op, and whether a layer must have them
PARAM_ROLES = {"Lookup": ("table",), "Thresholding": ("thresholds",), "MVAU": ("weights", "thresholds")}
#: ops the runtime executes itself (kernels with a golden model come from kernels/registry.py)
BUILTIN_OPS = ("DuplicateStreams", "Lookup", "Unsqueeze", "Squeeze", "Reshape", "GlobalAccPool", "Thresholding",
               "MVAU", "LabelSelect")
_DATATYPE = re.compile(r"(U?INT)([1-9][0-9]?)|BIPOLAR|BINARY")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SchemaError(Exception):
    """A manifest check failed; :func:`fpgarec.runtime.bundle.load_bundle` adds the file name."""


def _int(value, what: str, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (JSON integers only: no bools, floats or strings)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise SchemaError(f"{what} is {value!r}, expected an integer {bound}")
    return value


def _type(value, types, what: str):
    if not isinstance(value, types) or isinstance(value, bool):
        raise SchemaError(f"{what} is {type(value).__name__} {_short(value)}, expected {_type_name(types)}")
    return value


def _type_name(types) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return " or ".join(sorted({names[t] for t in (types if isinstance(types, tuple) else (types,))}))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _shape(value, what: str) -> list[int]:
    """A layer's normal shape: a list of positive ints, batch axis 1 first."""
    if not isinstance(value, list) or len(value) < 2 or value[0] != 1:
        raise SchemaError(f"{what} is {_short(value)}, expected [1, ...] (a shape)")
    return [_int(x, what) for x in value]


def datatype_bounds(name, what: str) -> tuple[int, int]:
    """(min, max) of a FINN integer datatype name; refuses anything else."""
    if not isinstance(name, str) or not _DATATYPE.fullmatch(name):
        raise SchemaError(f"{what} is {_short(name)}, expected an integer datatype (INTn, UINTn, BIPOLAR, BINARY)")
    if name in ("BIPOLAR", "BINARY"):
        return (-1, 1) if name == "BIPOLAR" else (0, 1)
    m = _DATATYPE.fullmatch(name)
    b = int(m.group(2))
    return (0, 2**b - 1) if m.group(1) == "UINT" else (-(2 ** (b - 1)), 2 ** (b - 1) - 1)


# ------------------------------------------------------------------------ the manifest
def check_manifest(m) -> None:
    """Keys, types, the model record, the io/dma records and every layer record."""
    if not isinstance(m, dict):
        raise SchemaError(f"the manifest is a JSON {type(m).__name__}, expected an object")
    for key, types in REQUIRED.items():
        if key not in m:
            raise SchemaError(f"key {key!r} is missing")
        _type(m[key], types, key)
    for key, types in OPTIONAL.items():
        if key in m:
            _type(m[key], types, key)
    if not _NAME.fullmatch(m["design"]):
        raise SchemaError(f"design {_short(m['design'])} is not a plain name (letters, digits, '.', '_', '-')")
    if "clock_mhz" in m and not (math.isfinite(m["clock_mhz"]) and m["clock_mhz"] > 0):
        raise SchemaError(f"clock_mhz is {m['clock_mhz']!r}, expected a positive number")
    for rel, info in m["files"].items():
        _type(info, dict, f"files[{rel!r}]")
        _int(info.get("bytes"), f"files[{rel!r}].bytes", low=0)
        digest = info.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise SchemaError(f"files[{rel!r}].sha256 is {_short(digest)}, expected 64 hex digits")
    max_id = check_model(m["model"])
    check_layers(m, max_id)


def check_model(model: dict) -> int:
    """The model record's sizes and padding; returns the largest id a query may carry."""
    n = _int(model.get("n_items"), "model.n_items")
    _int(model.get("k"), "model.k", high=1024)
    _int(model.get("top_k"), "model.top_k", high=n)
    if "n_labels" in model:
        _int(model["n_labels"], "model.n_labels", low=n)
    if model.get("n_recent") is not None:
        _int(model["n_recent"], "model.n_recent")
    padding = model.get("padding")
    if padding is None:
        return n - 1
    scheme = padding.get("scheme") if isinstance(padding, dict) else None
    if scheme == "cyclic":
        return n - 1
    if scheme != "null":
        raise SchemaError(f"model.padding is {_short(padding)}, expected {{'scheme': 'null' or 'cyclic'}}")
    return _int(padding.get("null_id"), "model.padding.null_id", low=n)


def _check_io(m: dict, seen: bool) -> None:
    io, dma = m["io"], m["dma"]
    for key in ("input", "output", *(("seen",) if seen else ())):
        entry = _type(io.get(key), dict, f"io.{key}")
        _type(entry.get("name"), str, f"io.{key}.name")
        datatype_bounds(entry.get("datatype"), f"io.{key}.datatype")
        for shape in ("shape_normal", "shape_folded", "shape_packed"):
            _shape(entry.get(shape), f"io.{key}.{shape}")
    if "seen" in io and not seen:
        raise SchemaError("io.seen is present but the LabelSelect layer has no seen input (SeenMode 2)")
    # one output DMA more for the attention weight stream (io.weights, checked with the layers)
    for key, count in (("input", 2 if seen else 1), ("output", 2 if "weights" in io else 1)):
        names = dma.get(key)
        if not isinstance(names, list) or len(names) != count or not all(isinstance(x, str) for x in names):
            raise SchemaError(f"dma.{key} is {_short(names)}, expected a list of {count} DMA name(s)")


# ---------------------------------------------------------------------------- layers
def check_layers(m: dict, max_id: int) -> None:
    """Every layer record, then the stream graph they form."""
    layers, model = m["layers"], m["model"]
    if not layers:
        raise SchemaError("layers is empty")
    names = set()
    for i, layer in enumerate(layers):
        _type(layer, dict, f"layers[{i}]")
        name = _type(layer.get("name"), str, f"layers[{i}].name")
        if name in names:
            raise SchemaError(f"layer name {name!r} appears twice")
        names.add(name)
        _check_layer(layer, f"layer {name}", model, max_id)
    last = layers[-1]
    if last["op"] != "LabelSelect":
        raise SchemaError(f"the last layer is {last['op']}, expected a LabelSelect")
    seen = last.get("attrs", {}).get("SeenMode", 0) == 2
    _check_io(m, seen)
    null_id = model["padding"]["null_id"] if max_id >= model["n_items"] else None
    for layer in layers:
        if "NullId" in layer.get("attrs", {}) and layer["attrs"]["NullId"] != null_id:
            raise SchemaError(f"layer {layer['name']}: NullId {_short(layer['attrs']['NullId'])} differs from "
                              f"the model's padding null id {null_id}")
    if model.get("n_labels", model["n_items"]) != last["attrs"]["Labels"]:  # absent: n_items (the PYNQ backend)
        raise SchemaError(f"model.n_labels {model.get('n_labels', '(absent)')} differs from layer {last['name']}'s "
                          f"Labels {last['attrs']['Labels']}")
    _check_graph(layers, m["io"], seen)
    first = layers[0]
    if first["in_shape"] != [1, model["k"]]:
        raise SchemaError(f"layer {first['name']}: in_shape {first['in_shape']}, expected [1, k={model['k']}]")
    lo, hi = datatype_bounds(first["in_dtype"], f"layer {first['name']}.in_dtype")
    if lo > 0 or hi < max_id:
        raise SchemaError(f"layer {first['name']}: in_dtype {first['in_dtype']} cannot hold the ids 0..{max_id}")
    check_attention(model, layers, max_id)
    check_weights_stream(model, layers, m["io"])


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def check_attention(model: dict, layers: list[dict], max_id: int) -> None:
    """An attention design (``model.aggregation.mode`` "attention", or an AttentionAggregate
    layer): the record says how the host builds the meta words (n_types, n_buckets and their
    rank edges, the field widths), and the layers agree with it: the design input is
    UINT(id_bits + type_bits + bucket_bits), every Lookup reads the id field (IdBits), the one
    AttentionAggregate layer has K slots, a D-long Query, n_types TypeBias, n_buckets PosBias and
    ids of id_bits."""
    agg = model.get("aggregation")
    att = [layer for layer in layers if layer["op"] == "AttentionAggregate"]
    is_att = isinstance(agg, dict) and agg.get("mode") == "attention"
    if not att and not is_att:
        return
    if not is_att or len(att) != 1:
        raise SchemaError(f"{len(att)} AttentionAggregate layer(s) with model.aggregation {_short(agg)}: an "
                          "attention design has one, and a model.aggregation record of mode 'attention'")
    where = "model.aggregation"
    t = _int(agg.get("n_types"), f"{where}.n_types", high=256)
    r = _int(agg.get("n_buckets"), f"{where}.n_buckets", high=256)
    ib = _int(agg.get("id_bits"), f"{where}.id_bits", low=(max_id).bit_length(), high=32)
    tb = _int(agg.get("type_bits"), f"{where}.type_bits", low=_bits(t), high=8)
    bb = _int(agg.get("bucket_bits"), f"{where}.bucket_bits", low=_bits(r), high=8)
    edges = agg.get("bucket_edges")
    if (not isinstance(edges, list) or len(edges) != r or any(isinstance(e, bool) or not isinstance(e, int)
                                                                for e in edges)
            or edges[0] != 0 or any(b < a for a, b in zip(edges, edges[1:], strict=False))):
        raise SchemaError(f"{where}.bucket_edges is {_short(edges)}, expected {r} non-decreasing ints from 0")
    names = agg.get("type_names")  # optional (bundles before them show "type t")
    if names is not None and (not isinstance(names, list) or len(names) != t
                              or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names)):
        raise SchemaError(f"{where}.type_names is {_short(names)}, expected {t} names (strings of 1-64 characters)")
    first = layers[0]
    if first["in_dtype"] != f"UINT{ib + tb + bb}":
        raise SchemaError(f"layer {first['name']}: in_dtype {first['in_dtype']}, the meta words are "
                          f"UINT{ib + tb + bb} (id {ib} + type {tb} + bucket {bb} bits)")
    for layer in layers:
        if layer["op"] == "Lookup" and layer.get("attrs", {}).get("IdBits") != ib:
            raise SchemaError(f"layer {layer['name']}: IdBits {_short(layer.get('attrs', {}).get('IdBits'))}, "
                              f"the meta words' id field is {ib} bits")
    layer = att[0]
    a, lw = layer.get("attrs", {}), f"layer {layer['name']}"
    want = {"K": model["k"], "idDataType": f"UINT{ib}"}
    lengths = {"Query": a.get("NumChannels"), "TypeBias": t, "PosBias": r}
    for key, value in want.items():
        if a.get(key) != value:
            raise SchemaError(f"{lw}: {key} {_short(a.get(key))}, expected {value}")
    for key, n in lengths.items():
        if not isinstance(a.get(key), list) or len(a[key]) != n:
            raise SchemaError(f"{lw}: {key} {_short(a.get(key))}, expected a list of {n} ints")


def check_weights_stream(model: dict, layers: list[dict], io: dict) -> None:
    """The attention weight stream (``emit_weights``): ``model.aggregation.emit_weights`` true
    exactly when the AttentionAggregate layer has a second output (``EmitWeights`` 1) that no
    layer reads, described by ``io.weights`` (that tensor, UINT(W+1), shape [1, K]) with
    ``weight_bits`` = the layer's ``WeightBits`` W. Designs without it have neither."""
    agg = model.get("aggregation") if isinstance(model.get("aggregation"), dict) else {}
    emit = agg.get("emit_weights", False)
    if not isinstance(emit, bool):
        raise SchemaError(f"model.aggregation.emit_weights is {_short(emit)}, expected true or false")
    att = [layer for layer in layers if layer["op"] == "AttentionAggregate"]
    second = [layer["outputs"][1] for layer in att if len(layer.get("outputs", [])) > 1]
    if not emit:
        if second or "weights" in io:
            raise SchemaError(f"{'io.weights' if 'weights' in io else 'a second AttentionAggregate output'} "
                              "is present but model.aggregation.emit_weights is not true")
        return
    if len(att) != 1 or not second:
        raise SchemaError("model.aggregation.emit_weights is true but no AttentionAggregate layer has a "
                          "second output (the weights)")
    layer, name = att[0], second[0]
    a, lw = layer.get("attrs", {}), f"layer {layer['name']}"
    if a.get("EmitWeights") != 1:
        raise SchemaError(f"{lw}: EmitWeights {_short(a.get('EmitWeights'))} with two outputs, expected 1")
    w = _int(agg.get("weight_bits"), "model.aggregation.weight_bits", high=30)
    if a.get("WeightBits") != w:
        raise SchemaError(f"{lw}: WeightBits {_short(a.get('WeightBits'))} differs from "
                          f"model.aggregation.weight_bits {w}")
    readers = [x["name"] for x in layers if name in x.get("inputs", [])]
    if readers:
        raise SchemaError(f"{lw}: its weights output {name!r} is read by layer {readers[0]}; it is a design output")
    entry = _type(io.get("weights"), dict, "io.weights")
    want = {"name": name, "datatype": f"UINT{w + 1}", "shape_normal": [1, model["k"]]}
    for key, value in want.items():
        if entry.get(key) != value:
            raise SchemaError(f"io.weights.{key} is {_short(entry.get(key))}, expected {value!r}")
    for shape in ("shape_folded", "shape_packed"):
        _shape(entry.get(shape), f"io.weights.{shape}")


def _check_layer(layer: dict, where: str, model: dict, max_id: int) -> None:
    op = _type(layer.get("op"), str, f"{where}.op")
    kernel = registry.by_op(op)
    if op not in BUILTIN_OPS and (kernel is None or kernel.emulate is None):
        raise SchemaError(f"{where}: op {op!r} is not supported by the runtime")
    attrs = _type(layer.get("attrs", {}), dict, f"{where}.attrs")
    params = _type(layer.get("params", {}), dict, f"{where}.params")
    dtypes = _type(layer.get("param_dtypes", {}), dict, f"{where}.param_dtypes")
    for key in ("in_dtype", "out_dtype"):
        datatype_bounds(layer.get(key), f"{where}.{key}")
    in_shape = _shape(layer.get("in_shape"), f"{where}.in_shape")
    out_shape = _shape(layer.get("out_shape"), f"{where}.out_shape")
    for key in ("inputs", "outputs"):
        if key in layer:
            value = layer[key]
            if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
                raise SchemaError(f"{where}.{key} is {_short(value)}, expected a list of tensor names")
    roles = PARAM_ROLES.get(op, ())
    for role, rel in params.items():
        if role not in roles:
            raise SchemaError(f"{where}: unexpected parameter {role!r} (a {op} has {list(roles) or 'none'})")
        _type(rel, str, f"{where}.params.{role}")
        if role in dtypes:
            _type(dtypes[role], str, f"{where}.param_dtypes.{role}")
    need = {"Lookup": ["table"], "Thresholding": ["thresholds"], "MVAU": ["weights"]}.get(op, [])
    if op == "MVAU" and _int(attrs.get("noActivation", 1), f"{where}.noActivation", low=0, high=1) == 0:
        need.append("thresholds")
    for role in need:
        if role not in params:
            raise SchemaError(f"{where}: parameter {role!r} is missing")
    if kernel is not None and kernel.emulate is not None:
        try:
            registry.emulator(op, attrs)  # the golden model refuses attributes it cannot build
        except ImportError:  # the golden model is not importable here: the emulation will say so
            pass
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SchemaError(f"{where}: attributes the {op} kernel cannot run ({type(exc).__name__}: {exc})") from exc
        channels = attrs.get("NumChannels")
        if not isinstance(channels, int) or in_shape[-1] % channels or out_shape[-1] != channels:
            raise SchemaError(f"{where}: NumChannels {_short(channels)} does not match in_shape {in_shape} "
                              f"-> out_shape {out_shape}")
    _check_op_shapes(op, attrs, in_shape, out_shape, where, model, max_id)


def _check_op_shapes(op: str, attrs: dict, ins: list[int], outs: list[int], where: str, model: dict,
                     max_id: int) -> None:
    size_in, size_out = math.prod(ins[1:]), math.prod(outs[1:])
    if op == "Lookup":
        n = _int(attrs.get("NumEmbeddings"), f"{where}.NumEmbeddings", low=max_id + 1)
        d = _int(attrs.get("EmbeddingDim"), f"{where}.EmbeddingDim")
        ok = outs == [*ins, d] and n > 0
    elif op in ("Unsqueeze", "Squeeze", "Reshape", "DuplicateStreams"):
        ok = size_in == size_out
    elif op == "GlobalAccPool":
        ok = ins[-1] == outs[-1]
    elif op == "Thresholding":
        ok = ins == outs and _int(attrs.get("NumChannels"), f"{where}.NumChannels") == ins[-1]
        _int(attrs.get("numSteps"), f"{where}.numSteps")
    elif op == "MVAU":
        _int(attrs.get("binaryXnorMode", 0), f"{where}.binaryXnorMode", low=0, high=0)
        if "numSteps" in attrs:
            _int(attrs["numSteps"], f"{where}.numSteps")
        ok = (_int(attrs.get("MW"), f"{where}.MW") == size_in and _int(attrs.get("MH"), f"{where}.MH") == size_out)
    elif op == "LabelSelect":
        labels = _int(attrs.get("Labels"), f"{where}.Labels", low=model["n_items"])
        k = _int(attrs.get("K"), f"{where}.K", high=labels)
        if k != model["top_k"]:
            raise SchemaError(f"{where}: K={k} differs from model.top_k={model['top_k']}")
        if attrs.get("SeenMode", 0) not in (0, 2):
            raise SchemaError(f"{where}: SeenMode {_short(attrs.get('SeenMode'))}, expected 0 or 2")
        ok = size_in == labels and outs == [1, k]
    else:  # a kernel: its golden model checked its attributes
        ok = True
    if not ok:
        raise SchemaError(f"{where}: in_shape {ins} -> out_shape {outs} does not fit its attributes")


def _check_graph(layers: list[dict], io: dict, seen: bool) -> None:
    """Connections: every input produced by an earlier layer or a graph input; layer chains
    without connection names (older bundles) hold single-input layers only."""
    has = ["inputs" in layer and "outputs" in layer for layer in layers]
    if not all(has):
        if any(has) or seen or any(registry.by_op(layer["op"]) and registry.by_op(layer["op"]).emulate
                                   for layer in layers):
            missing = layers[has.index(False)]["name"]
            raise SchemaError(f"layer {missing}: no inputs/outputs (only a chain of single-input layers may omit them)")
        return
    available = {io["input"]["name"], *((io["seen"]["name"],) if seen else ())}
    if layers[0]["inputs"] != [io["input"]["name"]]:
        raise SchemaError(f"layer {layers[0]['name']}: inputs {layers[0]['inputs']}, expected [{io['input']['name']!r}]")
    shapes = {io["input"]["name"]: layers[0]["in_shape"]}
    arity = {"DuplicateStreams": 1, "LabelSelect": 2 if seen else 1}
    for layer in layers:
        where = f"layer {layer['name']}"
        want = arity.get(layer["op"], 1 if layer["op"] in BUILTIN_OPS else None)
        if want is not None and len(layer["inputs"]) != want:
            raise SchemaError(f"{where}: {len(layer['inputs'])} inputs, a {layer['op']} takes {want}")
        if layer["op"] == "DuplicateStreams":
            if layer.get("attrs", {}).get("NumOutputStreams", len(layer["outputs"])) != len(layer["outputs"]):
                raise SchemaError(f"{where}: NumOutputStreams differs from its {len(layer['outputs'])} outputs")
        elif layer["op"] in BUILTIN_OPS and len(layer["outputs"]) != 1:
            raise SchemaError(f"{where}: {len(layer['outputs'])} outputs, a {layer['op']} has 1")
        for name in layer["inputs"]:
            if name not in available:
                raise SchemaError(f"{where}: input {name!r} is produced by no earlier layer")
        if shapes.get(layer["inputs"][0], layer["in_shape"]) != layer["in_shape"]:
            raise SchemaError(f"{where}: in_shape {layer['in_shape']} differs from its input's shape "
                              f"{shapes[layer['inputs'][0]]}")
        for i, name in enumerate(layer["outputs"]):
            if name in available:
                raise SchemaError(f"{where}: output {name!r} is written twice")
            available.add(name)
            if layer["op"] == "DuplicateStreams":
                shapes[name] = layer["in_shape"]
            elif i == 0:  # out_shape is the first output's (a kernel's further outputs are not recorded)
                shapes[name] = layer["out_shape"]


# ------------------------------------------------------------------------ parameters
def expected_params(layer: dict) -> dict[str, tuple[tuple[int, ...], ...]]:
    """role -> the shapes its array may have (a threshold table may hold one shared row)."""
    a, op = layer.get("attrs", {}), layer["op"]
    if op == "Lookup":
        return {"table": ((a["NumEmbeddings"], a["EmbeddingDim"]),)}
    if op == "Thresholding":
        return {"thresholds": ((a["NumChannels"], a["numSteps"]), (1, a["numSteps"]))}
    if op == "MVAU":
        out = {"weights": ((a["MW"], a["MH"]),)}
        if "thresholds" in layer.get("params", {}):
            steps = a.get("numSteps")
            out["thresholds"] = ((a["MH"], steps), (1, steps))  # steps None: any count >= 1
        return out
    return {}


def check_npy_header(path: Path, shapes: tuple[tuple, ...], integer: bool) -> np.dtype:
    """Refuse ``path`` unless its header declares one of ``shapes`` (None in a shape: any
    positive size), a plain integer dtype (``integer``) or a float one, and the file holds
    exactly that many bytes. Reads the header only; returns the dtype."""
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(f)
            else:
                raise SchemaError(f".npy format version {version} is not supported (1.0 or 2.0)")
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise SchemaError(f"not a plain .npy array ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
    kinds = "iu" if integer else "f"
    if dtype.kind not in kinds or dtype.fields is not None or dtype.shape != ():
        want = "an integer" if integer else "a float"
        raise SchemaError(f"dtype {dtype.str}, expected {want} array (the layer's datatype)")
    if not any(len(shape) == len(s) and all(w is None and n >= 1 or n == w for n, w in zip(shape, s, strict=True))
               for s in shapes):
        raise SchemaError(f"shape {tuple(shape)}, the layer record says {' or '.join(map(str, _shown(shapes)))}")
    size = offset + math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size
    if actual != size:
        raise SchemaError(f"{actual} bytes, its header declares {tuple(shape)} {dtype.str} ({size} bytes)")
    return dtype


def _shown(shapes) -> list[tuple]:
    return list(dict.fromkeys(tuple("n" if x is None else x for x in s) for s in shapes))


def is_integer_datatype(name) -> bool:
    """True for the FINN integer datatype names (INTn, UINTn, BIPOLAR, BINARY)."""
    return isinstance(name, str) and bool(_DATATYPE.fullmatch(name))


def check_values(arr: np.ndarray, datatype, integer: bool) -> None:
    """Refuse values outside an integer ``datatype``, and NaN or infinite floats."""
    if not arr.size:
        return
    if integer:
        lo, hi = datatype_bounds(datatype, "datatype")
        if arr.min() < lo or arr.max() > hi:
            raise SchemaError(f"values outside {datatype} (tampered)")
    elif not np.all(np.isfinite(arr)):
        raise SchemaError("NaN or infinite values")
