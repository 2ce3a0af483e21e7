"""Why the accelerator recommended an item: neighbour and modality attributions read from the
aggregation and fusion kernels, computed by the bit-exact emulation of the design.

For one query (a user's K context slots c, L of them real) the design computes integer scores
s(c; W) with W = (W_id, W_text, ...) the fusion kernel's modality weights and a mean over the L
real slots in the aggregation kernel (weight Rcp[L] / 2^(SH+P) ≈ 1/L per real slot). For each
recommended item i:

* **neighbour j**: the kernel weight of slot j, and its exact effect on the score,

      Δ_ij = s_i(c; W) - s_i(c with slot j set to the null id; W)

  (the kernel then averages over the other L - 1 items; everything after the aggregation,
  including the quantized transform, is taken into account);
* **modality m**: the kernel weight W_m as built into the design, and its exact effect,

      Δ_im = s_i(c; W) - s_i(c; W with W_m = 0).

In an **attention design** (kernels/attention_aggregate) the slots are meta words (id | type |
recency bucket), a slot is removed by sending the null word, and each real slot's weight is
a_j / 2^W, the softmax weight the design's attention layer computed for this query (read from
the design's weight output when it was built with ``--emit-weights``, else from the kernel's
golden model on the emulation's fused vectors: the same integers).

Both are differences of the design's own integer scores, so changing the weights shown
changes the scores by exactly the amounts shown (tests/unit/test_explain.py checks it). The
real accelerator returns only the top-k ids, not scores, so explanations always come from the
emulation, which is bit-exact with it (docs/compile.md).

numpy only. Shapes: a context is (K,) item ids; scores are int64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from kernels.neighbor_aggregate import golden as aggregate_golden

from fpgarec.runtime.emulation import EmulationBackend


@dataclass
class Explanation:
    """One query's recommendations and what weighed in each.

    Shapes: context (K,), recommendations/scores (T,), neighbours (L,) (the real slots),
    neighbour_effect (T, L), modality_effect (T, M).
    """

    context: list[int]
    recommendations: list[int]
    scores: list[int]
    #: the real (non-null) context items, in slot order
    neighbours: list[int]
    #: the aggregation kernel's weight of each real slot: Rcp[L] / 2^(SH+P) (≈ 1/L); for an
    #: attention design the mean of ``attention_weights``
    neighbour_weight: float
    #: Δ_ij: score drop of recommendation i without neighbour j
    neighbour_effect: list[list[int]]
    #: the fusion kernel's integer modality weights W_m and fraction bits F
    modality_weights: list[int]
    modality_frac_bits: int
    modality_names: list[str]
    #: Δ_im: score drop of recommendation i with W_m = 0
    modality_effect: list[list[int]]
    #: attention designs: a_j / 2^W of each real slot (L,), as the design computed it, and each
    #: slot's behaviour type id and recency bucket (0: the most recent items)
    attention_weights: list[float] | None = None
    neighbour_types: list[int] | None = None
    neighbour_buckets: list[int] | None = None
    #: where ``attention_weights`` come from
    weights_source: str | None = None

    def top_neighbour(self, r: int) -> int | None:
        """The neighbour item that raised recommendation r's score most (None: no neighbours)."""
        if not self.neighbours:
            return None
        return self.neighbours[int(np.argmax(self.neighbour_effect[r]))]

    def top_modality(self, r: int) -> str:
        return self.modality_names[int(np.argmax(self.modality_effect[r]))]

    def as_dict(self) -> dict:
        return asdict(self)


def modality_names(m: int) -> list[str]:
    """Names of the fusion kernel's inputs in the student's order (id, text, then others)."""
    base = ["id", "text", "image", "audio"]
    return base[:m] + [f"modality {i}" for i in range(len(base), m)]


class Explainer:
    """Explanations for batches of contexts from one bundle's emulation."""

    def __init__(self, backend: EmulationBackend):
        self.backend = backend
        self.null_id = backend.bundle.null_id
        if self.null_id is None:
            raise ValueError(f"{backend.bundle.root}: explanations need a null-padded bundle (no null id)")
        #: an attention design's ``aggregation`` record (its contexts are meta words), else None
        self.attention = backend.bundle.attention
        self.agg = None
        if self.attention is None:
            agg = backend.layer_attrs("NeighborAggregate")
            self.agg = aggregate_golden.params_from_attrs(lambda a: agg[a])
        fusion = backend.layer_attrs("ModalityFusion")
        self.weights = [int(w) for w in fusion["Weights"]]
        self.frac_bits = int(fusion["FracBits"])
        self.names = modality_names(len(self.weights))
        #: one backend per modality with that modality's weight set to 0
        self._without = [
            backend.with_layer_attrs("ModalityFusion", Weights=[0 if j == m else w for j, w in enumerate(self.weights)])
            for m in range(len(self.weights))
        ]

    def slot_weight(self, n_real: int) -> float:
        """The aggregation kernel's weight of one real slot when ``n_real`` slots are real."""
        rcp = aggregate_golden.reciprocals(self.agg)
        return float(rcp[n_real]) / float(1 << (self.agg.shift + self.agg.frac_bits)) if n_real else 0.0

    def item_ids(self, contexts: np.ndarray) -> np.ndarray:
        """The item id of every slot (the meta words' id field in an attention design). (B, K)."""
        return self.backend.bundle.item_ids(contexts)

    def attention_weights(self, contexts: np.ndarray) -> tuple[np.ndarray | None, str | None]:
        """(B, K) weights a_j / 2^W of an attention design and where they come from (None, None
        for a mean design): the design's weight output where the bundle has one."""
        if self.attention is None:
            return None, None
        w_bits = int(self.attention.get("weight_bits", 0))
        run = getattr(self.backend, "run_with_weights", None)
        if not (self.attention.get("emit_weights") and callable(run)):
            return None, None
        _, w = run(contexts)
        return np.asarray(w, np.float64) / float(1 << w_bits), "the design's attention weight output (emulation)"

    def explain(self, contexts: np.ndarray) -> list[Explanation]:
        """Explanations of the top-k of every context. Shapes: (B, K) -> B explanations."""
        contexts = np.asarray(contexts, dtype=np.int64)
        if contexts.ndim == 1:
            contexts = contexts[None, :]
        top, scores = self.backend.run_with_scores(contexts)
        without_m = [b.scores(contexts) for b in self._without]  # M × (B, N)
        ids = self.item_ids(contexts)
        weights, source = self.attention_weights(contexts)
        out = []
        for b, ctx in enumerate(contexts):
            rec = top[b]
            real = np.flatnonzero(ids[b] != self.null_id)
            if len(real):
                occluded = np.repeat(ctx[None, :], len(real), axis=0)
                occluded[np.arange(len(real)), real] = self.null_id
                s_wo = self.backend.scores(occluded)[:, rec]  # (L, T)
                n_eff = (scores[b, rec][None, :] - s_wo).T  # (T, L)
            else:
                n_eff = np.zeros((len(rec), 0), dtype=np.int64)
            m_eff = np.stack([scores[b, rec] - wm[b, rec] for wm in without_m], axis=1)  # (T, M)
            ex_att = {}
            if self.attention is not None:
                ib, tb = int(self.attention["id_bits"]), int(self.attention["type_bits"])
                ex_att = {"neighbour_types": ((ctx[real] >> ib) & ((1 << tb) - 1)).tolist(),
                          "neighbour_buckets": (ctx[real] >> (ib + tb)).tolist()}
                if weights is not None:
                    ex_att.update(attention_weights=weights[b, real].round(6).tolist(), weights_source=source)
            w_mean = float(np.mean(weights[b, real])) if weights is not None and len(real) else None
            out.append(Explanation(
                context=ids[b].tolist(), recommendations=rec.tolist(), scores=scores[b, rec].tolist(),
                neighbours=ids[b, real].tolist(),
                neighbour_weight=w_mean if w_mean is not None else (self.slot_weight(len(real)) if self.agg else 0.0),
                neighbour_effect=n_eff.astype(np.int64).tolist(), modality_weights=list(self.weights),
                modality_frac_bits=self.frac_bits, modality_names=list(self.names),
                modality_effect=m_eff.astype(np.int64).tolist(), **ex_att,
            ))
        return out
