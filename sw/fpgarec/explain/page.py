"""``fpgarec explain --user ID``: one user's recommendations with what weighed in each, as a
PNG (three panels) and an HTML page.

Panels: (1) neighbour effects Δ_ij, recommendations × the user's context items (heatmap);
(2) modality effects Δ_im per recommendation (bars) with the fusion kernel's weights in the
title; (3) the user's genre mix per time window (stacked bars). Definitions in
:mod:`fpgarec.explain.attribution` and :mod:`fpgarec.explain.interest`.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.explain.attribution import Explainer, Explanation
from fpgarec.explain.interest import InterestShift, feature_clusters, interest_shift, item_genres

log = logging.getLogger(__name__)


@dataclass
class ExplainConfig:
    """Settings of ``fpgarec explain``."""

    #: the user's token in the data set (e.g. "196" for MovieLens)
    user: str
    #: the design whose emulation is explained
    bundle: Path = Path("bitstreams/student_w4_pynq-z2")
    #: RecBole atomic-file folder (None: MovieLens-100k from the recbole package)
    data: Path | None = None
    #: output folder of the PNG, HTML and JSON
    out: Path = Path("build/explain")
    #: time windows of the interest-shift panel
    windows: int = 4


def _short(title: str, n: int = 38) -> str:
    return title if len(title) <= n else title[: n - 1] + "…"


def item_titles(data) -> list[str]:
    """A readable title per item: the item text's title part, else the item token."""
    out = []
    for tok, text in zip(data.item_tokens, data.item_text, strict=True):
        title = next((p.split(": ", 1)[1] for p in text.split("; ") if p.startswith("movie title: ")), "")
        out.append(title or f"item {tok}")
    return out


def plot_explanation(ex: Explanation, shift: InterestShift, titles: list[str], path: Path, user: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [_short(titles[i], 30) for i in ex.recommendations]
    fig, axes = plt.subplots(1, 3, figsize=(19, 6.5), gridspec_kw={"width_ratios": [2.2, 1.1, 1.4]})
    ax = axes[0]
    eff = np.asarray(ex.neighbour_effect, dtype=float)
    if eff.size:
        lim = max(1.0, float(np.abs(eff).max()))
        im = ax.imshow(eff, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        att = ex.attention_weights  # an attention design's own weights, one per neighbour
        ax.set_xticks(range(len(ex.neighbours)), [_short(titles[i], 22) + (f" ({att[j]:.2f})" if att else "")
                                                  for j, i in enumerate(ex.neighbours)], rotation=70,
                      fontsize=7, ha="right")
        fig.colorbar(im, ax=ax, fraction=0.03, label="score drop without the neighbour (integer)")
    else:
        ax.text(0.5, 0.5, "no interactions: popularity-free cold query", ha="center", transform=ax.transAxes)
    ax.set_yticks(range(len(recs)), recs, fontsize=8)
    ax.set_title("neighbour items (in brackets: the attention weight the design computed)" if ex.attention_weights
                 else f"neighbour items (aggregation kernel weight {ex.neighbour_weight:.3f} each)")
    ax = axes[1]
    m_eff = np.asarray(ex.modality_effect, dtype=float)
    y = np.arange(len(recs))
    h = 0.8 / max(1, m_eff.shape[1])
    for m, name in enumerate(ex.modality_names):
        ax.barh(y + m * h, m_eff[:, m], height=h, label=name)
    ax.set_yticks(y + 0.4 - h / 2, recs, fontsize=8)
    ax.invert_yaxis()
    w = ", ".join(f"{n} {v}" for n, v in zip(ex.modality_names, ex.modality_weights, strict=True))
    ax.set_title(f"modalities (fusion kernel W = {w}; /2^{ex.modality_frac_bits})", fontsize=9)
    ax.set_xlabel("score drop with the modality's weight set to 0")
    ax.legend(fontsize=8)
    ax = axes[2]
    left = np.zeros(len(shift.labels))
    cmap = plt.get_cmap("tab20")
    for g, name in enumerate(shift.groups):
        ax.barh(range(len(shift.labels)), shift.mix[:, g], left=left, color=cmap(g % 20), label=name)
        left += shift.mix[:, g]
    ax.set_yticks(range(len(shift.labels)), shift.labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_title(f"interest over time ({shift.kind} mix per window)")
    ax.legend(fontsize=6, ncol=2, loc="lower right", bbox_to_anchor=(1.0, -0.45))
    fig.suptitle(f"Why these recommendations for user {user} (from the design's bit-exact emulation)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _attention_table(ex: Explanation, titles: list[str], type_names: list[str]) -> str:
    """The "what the accelerator weighed" section of an attention design (empty otherwise)."""
    if ex.attention_weights is None:
        return ""
    esc = html.escape
    order = sorted(range(len(ex.neighbours)), key=lambda j: -ex.attention_weights[j])
    rows = "".join(
        f"<tr><td>{esc(titles[ex.neighbours[j]])}</td><td>{esc(_type_name(ex.neighbour_types[j], type_names))}</td>"
        f"<td>{ex.neighbour_buckets[j]}</td><td>{ex.attention_weights[j]:.3f}</td>"
        f"<td><div style=\"background:#4a7;height:10px;width:{300 * ex.attention_weights[j]:.0f}px\"></div></td></tr>"
        for j in order)
    return f"""<h2>What the accelerator weighed</h2>
<p class="note">The attention layer's weight of each past item for this query ({esc(ex.weights_source or '')}):
a softmax over the real context slots of a learned query, the item's behaviour type and its recency bucket
(0 = the most recent items); the user vector is the weighted sum. Heaviest first.</p>
<table><tr><th>past item</th><th>behaviour</th><th>recency bucket</th><th>weight</th><th></th></tr>{rows}</table>"""


def _type_name(t: int, names: list[str]) -> str:
    return names[t] if 0 <= t < len(names) else f"type {t}"


def _effects(ex: Explanation, r: int, titles: list[str], sign: int, n: int = 3) -> str:
    """Recommendation r's neighbours whose effect has ``sign`` (+1: they raised its score, -1:
    they lowered it), largest first, at most n ("–": none)."""
    eff = ex.neighbour_effect[r]
    picked = sorted((j for j in range(len(ex.neighbours)) if eff[j] * sign > 0), key=lambda j: -eff[j] * sign)[:n]
    return ", ".join(f"{html.escape(titles[ex.neighbours[j]])} ({eff[j]:+d})" for j in picked) or "–"


def _history_table(ex: Explanation, history: list[int], titles: list[str], item_ids: list[str] | None) -> str:
    """The "your history" section: the user's own items, oldest first, by the data set's ids,
    with their titles where the data has them (empty when no history was given)."""
    esc = html.escape
    in_context = set(ex.neighbours)
    rows = []
    for n, i in enumerate(history):
        tok = item_ids[i] if item_ids is not None else str(i)
        title = titles[i] if titles[i] != f"item {tok}" else ""  # item_titles' stand-in is no title
        rows.append(f"<tr><td>{n + 1}</td><td>{esc(tok)}</td><td>{esc(title)}</td>"
                    f"<td>{'yes' if i in in_context else ''}</td></tr>")
    return f"""<h2>Your history ({len(history)} items)</h2>
<p class="note">The items the design was given for this user, oldest first, by the data set's item ids; the
design's context holds at most {len(ex.context)} of them (the neighbours above).</p>
<table><tr><th>#</th><th>item id</th><th>title</th><th>in the design's context</th></tr>{''.join(rows)}</table>"""


def render_page(ex: Explanation, shift: InterestShift, titles: list[str], png: str, user: str, bundle: str,
                type_names: list[str] | None = None, history: list[int] | None = None,
                item_ids: list[str] | None = None) -> str:
    """The HTML page. ``history``: the user's items (indices, oldest first), listed by
    ``item_ids`` (the data set's ids; None: the indices); None: no history section."""
    esc = html.escape
    rows = []
    for r, item in enumerate(ex.recommendations):
        up, down = (_effects(ex, r, titles, 1), _effects(ex, r, titles, -1)) if ex.neighbours else ("–", "–")
        mods = ", ".join(f"{n} {v:+d}" for n, v in zip(ex.modality_names, ex.modality_effect[r], strict=True))
        top_mod = ex.top_modality(r) if max(ex.modality_effect[r], default=0) > 0 else "–"
        rows.append(f"<tr><td>{r + 1}</td><td>{esc(titles[item])}</td><td>{ex.scores[r]}</td><td>{up}</td>"
                    f"<td>{down}</td><td>{esc(mods)}</td><td>{esc(top_mod)}</td></tr>")
    attention = _attention_table(ex, titles, type_names or [])
    past = _history_table(ex, history, titles, item_ids) if history is not None else ""
    mix_rows = "".join(
        f"<tr><td>{esc(lbl)}</td><td>{esc(', '.join(f'{g} {v:.0%}' for g, v in sorted(zip(shift.groups, m, strict=True), key=lambda t: -t[1])[:4]))}</td></tr>"
        for lbl, m in zip(shift.labels, shift.mix, strict=True)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fpgarec: why user {esc(user)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}
table{{border-collapse:collapse}} .note{{color:#555}}</style></head><body>
<h1>Recommendations for user {esc(user)}</h1>
<p class="note">Design: {esc(bundle)}. Scores and effects are the design's integer scores from its bit-exact
emulation (the real accelerator returns only the top-k). Neighbour effect = score drop when that item is
removed from the user's context (the aggregation kernel then averages over the others; each real neighbour has
kernel weight {ex.neighbour_weight:.4f}): positive, the item pushed the recommendation up; negative, it pushed
it down. Modality effect = score drop when the fusion kernel's weight of that
modality is set to 0 (weights W = {esc(str(ex.modality_weights))}, / 2^{ex.modality_frac_bits}).</p>
<img src="{esc(png)}" alt="explanation plot" style="max-width:100%">
<h2>Each recommendation</h2>
<table><tr><th>#</th><th>item</th><th>score</th><th>neighbours that pushed it up (effect)</th>
<th>neighbours that pushed it down (effect)</th><th>modality effects</th><th>modality that pushed it up most</th></tr>
{''.join(rows)}</table>
{attention}
{past}
<h2>Interest over time ({esc(shift.kind)})</h2>
<table><tr><th>window</th><th>largest shares</th></tr>{mix_rows}</table>
</body></html>
"""


def explain_user(cfg: ExplainConfig, data=None, history=None, explainer: Explainer | None = None) -> dict:
    """Write ``user_<ID>.png``, ``.html`` and ``.json`` into ``cfg.out``; returns the JSON dict.

    ``history``: the model's input per user (:class:`~fpgarec.data.split.UserSequences`,
    default: train + valid of the temporal split, what the service reads).
    """
    from fpgarec.data.dataset import load_interactions
    from fpgarec.data.split import temporal_split
    from fpgarec.runtime.emulation import EmulationBackend
    from fpgarec.runtime.sampler import HostSampler, ItemList

    data = data if data is not None else load_interactions(cfg.data)
    if cfg.user not in set(data.user_tokens):
        raise FpgarecError(f"unknown user {cfg.user!r} (not in {data.folder})")
    u = data.user_tokens.index(cfg.user)
    history = history if history is not None else temporal_split(data).known_before_test()
    explainer = explainer or Explainer(EmulationBackend(cfg.bundle))
    manifest = explainer.backend.bundle.manifest
    if int(manifest["model"]["n_items"]) != data.n_items:
        raise FpgarecError(f"{cfg.bundle}: built for {manifest['model']['n_items']} items, the data has {data.n_items}")
    sampler = HostSampler.from_manifest(manifest)
    items = history.of(u)
    query = items.tolist()
    type_names = None
    if explainer.attention is not None:  # an attention design reads each item's behaviour type
        from fpgarec.data.behaviour import BEHAVIOURS, BehaviourLog

        types, _ = BehaviourLog.from_data(data).aligned(history)
        query = ItemList(query, types[history.indptr[u]:history.indptr[u + 1]].tolist())
        type_names = list(explainer.attention.get("type_names") or BEHAVIOURS)
    ctx = sampler.items([query])
    ex = explainer.explain(ctx)[0]
    user_rows = np.flatnonzero(data.user == u)[: len(items)]  # (user, time)-sorted: known part first
    genres = item_genres(data)
    kind = "genres"
    if genres is None:
        genres = feature_clusters(explainer.backend.bundle.array(
            explainer.backend.layers[1]["params"]["table"]).astype(float)[: data.n_items])
        kind = "clusters of the design's item features"
    shift = interest_shift(items, data.timestamp[user_rows], genres, cfg.windows, kind)
    titles = item_titles(data)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"user_{cfg.user}"
    plot_explanation(ex, shift, titles, out / f"{stem}.png", cfg.user)
    (out / f"{stem}.html").write_text(render_page(ex, shift, titles, f"{stem}.png", cfg.user, str(cfg.bundle),
                                                  type_names, history=items.tolist(), item_ids=data.item_tokens))
    explanation = ex.as_dict()  # items as the data set's ids (internal indices stay inside)
    explanation["recommendations"] = [data.item_tokens[i] for i in ex.recommendations]
    explanation["neighbours"] = [data.item_tokens[i] for i in ex.neighbours]
    explanation["context"] = [data.item_tokens[i] if i < data.n_items else None for i in ex.context]
    result = {"user": cfg.user, "explanation": explanation, "titles": [titles[i] for i in ex.recommendations],
              "history": [data.item_tokens[i] for i in items.tolist()],
              "interest": {"labels": shift.labels, "groups": shift.groups, "mix": shift.mix.round(4).tolist(),
                           "kind": shift.kind}}
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    log.info("explanation of user %s written to %s", cfg.user, out / f"{stem}.html")
    return result


def explain_all(explainer: Explainer, contexts: np.ndarray, users: list[str], batch: int = 256,
                item_ids: list[str] | None = None, titles: list[str] | None = None) -> dict:
    """A compact explanation of every recommendation of every user (the demo's check that
    each has one): per user (the data set's id), per recommendation, the item, the top
    neighbour and the top modality. ``item_ids``: the data set's item ids by index (None: the
    internal indices are written); ``titles``: a title per item index, written beside it."""
    def name(i):
        if i is None:
            return None
        return item_ids[i] if item_ids is not None else i

    out = {}
    for start in range(0, len(users), batch):
        for user, ex in zip(users[start : start + batch], explainer.explain(contexts[start : start + batch]),
                            strict=True):
            rows = []
            for r, item in enumerate(ex.recommendations):
                row = {"item": name(item)}
                if titles is not None:
                    row["title"] = titles[item]
                row.update({"score": ex.scores[r], "top_neighbour": name(ex.top_neighbour(r)),
                            "neighbour_effect": max(ex.neighbour_effect[r]) if ex.neighbours else None,
                            "top_modality": ex.top_modality(r),
                            "modality_effect": dict(zip(ex.modality_names, ex.modality_effect[r], strict=True))})
                rows.append(row)
            out[user] = rows
    return out


def write_all_users(compact: dict, path: Path) -> Path:
    """:func:`explain_all`'s result as JSON, one user per line (a valid JSON object)."""
    lines = [f"{json.dumps(str(u))}: {json.dumps(v)}" for u, v in compact.items()]
    Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return Path(path)
