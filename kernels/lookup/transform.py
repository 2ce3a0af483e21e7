"""``Mod(words, 2^b) -> Gather(table, ·)`` -> ``Lookup(words, table)`` with ``IdBits`` = b.

The attention design's input words pack id | type | bucket (kernels/attention_aggregate golden
``pack_meta``); the export gives its Gathers the id field as ``Mod(words, 2^ID_BITS)``. The
Lookup reads the words and indexes its table with their low ``IdBits`` bits (the RTL wrapper
wires only those bits to the ROM), so the words fan out unchanged to the lookups and the
attention kernel.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes


def _id_field_bits(model, node) -> int:
    """b when ``node`` is Mod(x, 2^b) on an unsigned integer x, else 0."""
    if node is None or node.op_type != "Mod":
        return 0
    modulus = model.get_initializer(node.input[1])
    dt = model.get_tensor_datatype(node.input[0])
    if modulus is None or modulus.size != 1 or not dt.is_integer() or dt.signed():
        return 0
    m = int(np.asarray(modulus).reshape(()))
    return m.bit_length() - 1 if m > 1 and m & (m - 1) == 0 else 0


class InferIdFieldLookupLayer(Transformation):
    """Gathers of a constant table indexed by ``Mod(words, 2^b)`` -> FINN ``Lookup`` nodes on the
    words with ``IdBits`` = b; the Mod goes once nothing else reads it."""

    def apply(self, model):
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "Gather" or model.get_initializer(node.input[0]) is None:
                continue
            mod = model.find_producer(node.input[1])
            bits = _id_field_bits(model, mod)
            if not bits:
                continue
            words, table = mod.input[0], node.input[0]
            n, d = model.get_initializer(table).shape
            lookup = helper.make_node(
                "Lookup", [words, table], [node.output[0]], domain="finn.custom_op.fpgadataflow",
                backend="fpgadataflow", name="Lookup_" + node.name, NumEmbeddings=int(n), EmbeddingDim=int(d),
                EmbeddingType=model.get_tensor_datatype(table).name,
                InputType=model.get_tensor_datatype(words).name,
                InputShape=list(model.get_tensor_shape(words)), IdBits=bits)
            model.graph.node.insert(list(model.graph.node).index(node), lookup)
            model.graph.node.remove(node)
            if not model.find_consumers(mod.output[0]):
                model.graph.node.remove(mod)
            changed = True
        if changed:
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False
