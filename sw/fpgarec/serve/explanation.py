"""The ``"explanation"`` object of a service answer (``"explain": true``, fpgarec.serve.app):
the context items an attention design weighed for one query, as the accelerator computed them."""

from __future__ import annotations

import json

from fpgarec.runtime.accelerator import Accelerator


def explanation_json(acc: Accelerator, ex: dict, source: str, b: int = 0) -> bytes:
    """Query ``b`` of :meth:`Accelerator.explain_queries_indices`'s answer as the
    ``"explanation"`` object (fpgarec.serve.app's docstring): real context slots, heaviest first."""
    names = acc.behaviour_names()
    scale = float(1 << ex["weight_bits"])
    slots = [j for j in range(ex["items"].shape[1]) if ex["items"][b, j] >= 0]
    slots.sort(key=lambda j: (-int(ex["weights"][b, j]), -j))
    context = [{"id": str(acc.ids.items[ex["items"][b, j]]), "title": acc.ids.title(int(ex["items"][b, j])),
                "type": names[int(ex["types"][b, j])], "recency_bucket": int(ex["buckets"][b, j]),
                "weight": round(int(ex["weights"][b, j]) / scale, 6)} for j in slots]
    return json.dumps({"source": source, "weight_bits": ex["weight_bits"], "context": context},
                      separators=(",", ":")).encode()
