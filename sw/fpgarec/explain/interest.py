"""A user's interest over time: the genre mix of their interactions per time window.

The history (oldest first) is cut into ``windows`` consecutive parts of equal length (equal
counts rather than equal time spans: MovieLens users often rate in bursts, and equal spans
would leave most windows empty). Window w's mix over genres g is

    mix[w, g] = Σ_{i ∈ window w} [g ∈ genres(i)] / |genres(i)|,   normalised to sum to 1,

so a film with three genres counts one third to each. Genres are read from the item file's
genre column (MovieLens: ``class:token_seq``); a data set without one is described by
clusters of the model's own fused item features instead (k-means, seeded), labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: item-file columns that hold genres, in order of preference
GENRE_COLUMNS = ("class", "genre", "genres", "category", "categories")


@dataclass
class InterestShift:
    """Shapes: mix (W, G); labels: W window labels (time ranges); groups: G names."""

    mix: np.ndarray
    labels: list[str]
    groups: list[str]
    #: "genres" or "clusters of fused item features"
    kind: str


def item_genres(data) -> list[list[str]] | None:
    """Genres per item index from the data folder's item file; None if it has no genre column."""
    from fpgarec.data.atomic import read_atomic

    path = data.folder / f"{data.name}.item"
    if not path.exists():
        return None
    table = read_atomic(path)
    col = next((c for c in GENRE_COLUMNS if c in table.types), None)
    if col is None:
        return None
    vocab = {t: i for i, t in enumerate(data.item_tokens)}
    out: list[list[str]] = [[] for _ in range(len(data.item_tokens))]
    for tok, value in zip(table.columns["item_id"], table.columns[col], strict=True):
        if tok in vocab:
            out[vocab[tok]] = list(value) if isinstance(value, list) else [value]
    return out


def feature_clusters(features: np.ndarray, n_clusters: int = 8, seed: int = 0, iters: int = 25) -> list[list[str]]:
    """Items grouped by k-means on their feature vectors. Shapes: (I, D) -> I one-name lists."""
    x = np.asarray(features, dtype=np.float64)
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), size=min(n_clusters, len(x)), replace=False)]
    for _ in range(iters):
        assign = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for c in range(len(centres)):
            if np.any(assign == c):
                centres[c] = x[assign == c].mean(0)
    return [[f"cluster {a}"] for a in assign]


def interest_shift(items: np.ndarray, times: np.ndarray, genres: list[list[str]], windows: int = 4,
                   kind: str = "genres") -> InterestShift:
    """Genre mix per window of a time-ordered history: ``windows`` equal runs of positions in
    the sequence (not of dates), each labelled with its positions and dates. Shapes: items,
    times (n,)."""
    import datetime as dt

    items = np.asarray(items)
    names = sorted({g for i in items for g in genres[i]})
    col = {g: j for j, g in enumerate(names)}
    parts = [p for p in np.array_split(np.arange(len(items)), max(1, min(windows, len(items)))) if len(p)]
    mix = np.zeros((len(parts), len(names)))
    labels = []
    for w, idx in enumerate(parts):
        for i in items[idx]:
            for g in genres[i]:
                mix[w, col[g]] += 1.0 / len(genres[i])
        total = mix[w].sum()
        if total:
            mix[w] /= total
        a, b = (dt.datetime.fromtimestamp(float(times[idx[0]]), dt.UTC),
                dt.datetime.fromtimestamp(float(times[idx[-1]]), dt.UTC))
        # windows by position in the sequence (MovieLens users often rate everything on one day)
        days = f"{a:%Y-%m-%d}" if a.date() == b.date() else f"{a:%Y-%m-%d}..{b:%Y-%m-%d}"
        labels.append(f"items {idx[0] + 1}-{idx[-1] + 1} ({days})")
    return InterestShift(mix, labels, names, kind)
