"""Explanations: the weights shown are the ones the design uses (changing them changes the
scores by exactly the effects shown, and the ranking), plus the interest-shift panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpgarec.errors import FpgarecError
from fpgarec.explain.attribution import Explainer
from fpgarec.explain.interest import interest_shift
from fpgarec.runtime.emulation import EmulationBackend

BUNDLE = Path(__file__).resolve().parents[2] / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture(scope="module")
def explainer():
    return Explainer(EmulationBackend(BUNDLE))


@pytest.fixture(scope="module")
def contexts(explainer):
    rng = np.random.default_rng(0)
    n, k = explainer.backend.n_items, explainer.backend.k_neighbours
    ctx = rng.integers(0, n, size=(24, k))
    for b, length in enumerate(rng.integers(1, k + 1, size=len(ctx))):
        ctx[b, length:] = explainer.null_id  # cold-start users with fewer than K items
    return ctx


def test_modality_weights_shown_are_the_kernels(explainer, contexts):
    ex = explainer.explain(contexts[:1])[0]
    attrs = explainer.backend.layer_attrs("ModalityFusion")
    assert ex.modality_weights == [int(w) for w in attrs["Weights"]]
    assert ex.modality_names == ["id", "text"]


def test_modality_effects_are_exact_and_the_weights_drive_the_ranking(explainer, contexts):
    exs = explainer.explain(contexts)
    w = explainer.weights
    for m in range(len(w)):
        changed = explainer.backend.with_layer_attrs("ModalityFusion", Weights=[0 if j == m else v for j, v in enumerate(w)])
        top, scores = changed.run_with_scores(contexts)
        for b, ex in enumerate(exs):
            np.testing.assert_array_equal(np.array(ex.scores) - scores[b, ex.recommendations],
                                          np.array(ex.modality_effect)[:, m])
        assert any(list(top[b]) != ex.recommendations for b, ex in enumerate(exs)), f"W_{m} = 0 changed no ranking"
    # a different (non-zero) weight also changes rankings: the design reads the weights shown
    swapped = explainer.backend.with_layer_attrs("ModalityFusion", Weights=list(reversed(w)))
    assert any(list(t) != ex.recommendations for t, ex in zip(swapped.run(contexts), exs, strict=True))


def test_neighbour_effects_are_exact(explainer, contexts):
    for ctx, ex in zip(contexts[:8], explainer.explain(contexts[:8]), strict=True):
        real = np.flatnonzero(ctx != explainer.null_id)
        assert ex.neighbours == ctx[real].tolist()
        assert ex.neighbour_weight == pytest.approx(1.0 / len(real), rel=0.02)
        for r in range(len(ex.recommendations)):
            j = int(np.argmax(ex.neighbour_effect[r]))
            without = ctx.copy()
            without[real[j]] = explainer.null_id
            s = explainer.backend.scores(without[None])[0, ex.recommendations[r]]
            assert ex.scores[r] - s == ex.neighbour_effect[r][j]
            assert ex.top_neighbour(r) == ctx[real[j]]


def test_an_empty_context_has_no_neighbour_effects(explainer):
    ctx = np.full((1, explainer.backend.k_neighbours), explainer.null_id)
    ex = explainer.explain(ctx)[0]
    assert ex.neighbours == [] and ex.top_neighbour(0) is None and len(ex.recommendations) == 10


def test_interest_shift_by_hand():
    genres = [["a"], ["b"], ["a", "b"], ["c"]]
    shift = interest_shift(np.array([0, 0, 2, 3]), np.array([0, 86400, 2 * 86400, 3 * 86400]), genres, windows=2)
    assert shift.groups == ["a", "b", "c"]
    np.testing.assert_allclose(shift.mix, [[1, 0, 0], [0.25, 0.25, 0.5]])
    assert shift.labels == ["items 1-2 (1970-01-01..1970-01-02)", "items 3-4 (1970-01-03..1970-01-04)"]


def test_the_page_shows_the_attention_weights_heaviest_first():
    """An attention design's explanation page lists each past item with its behaviour type,
    recency bucket and the weight the design computed, heaviest first."""
    from fpgarec.explain.attribution import Explanation
    from fpgarec.explain.page import render_page

    ex = Explanation(context=[3, 1, 9], recommendations=[5], scores=[7], neighbours=[3, 1], neighbour_weight=0.5,
                     neighbour_effect=[[2, 1]], modality_weights=[8, 8], modality_frac_bits=4,
                     modality_names=["id", "text"], modality_effect=[[1, 1]], attention_weights=[0.25, 0.75],
                     neighbour_types=[2, 0], neighbour_buckets=[1, 0], weights_source="the design's weight output")
    shift = interest_shift(np.array([3, 1]), np.array([0, 0]), [["g"]] * 10, windows=1)
    page = render_page(ex, shift, [f"T{i}" for i in range(10)], "p.png", "u", "b", ["view", "like", "comment"])
    table = page[page.index("What the accelerator weighed"):]
    assert table.index("T1") < table.index("T3") and "0.750" in table and "comment" in table
    assert "What the accelerator weighed" not in render_page(
        Explanation(**{**ex.as_dict(), "attention_weights": None}), shift, [f"T{i}" for i in range(10)], "p", "u", "b")


@pytest.mark.slow
def test_explain_command_writes_png_html_json(tmp_path):
    from fpgarec.explain.page import ExplainConfig, explain_user

    result = explain_user(ExplainConfig(user="196", bundle=BUNDLE, out=tmp_path))
    assert len(result["titles"]) == 10
    ex = result["explanation"]  # the data set's item ids (MovieLens tokens), not internal indices
    assert all(isinstance(i, str) and i.isdigit() for i in ex["recommendations"] + ex["neighbours"])
    assert (tmp_path / "user_196.png").stat().st_size > 10_000
    page = (tmp_path / "user_196.html").read_text()
    assert result["titles"][0].split(",")[0] in page and "Interest over time" in page
    history = result["history"]  # the user's own items, oldest first, by the data set's ids, on the page too
    assert len(history) > 10 and all(isinstance(i, str) and i.isdigit() for i in history)
    assert set(ex["neighbours"]) <= set(history) and f"Your history ({len(history)} items)" in page
    cells = [r[1] for r in _page_rows(page, "<h2>Your history")[1:]]
    assert cells == history
    with pytest.raises(FpgarecError, match="unknown user"):
        explain_user(ExplainConfig(user="no-such-user", bundle=BUNDLE, out=tmp_path))


def test_all_users_output_names_users_and_items_by_the_data_sets_ids(explainer, contexts, tmp_path):
    """all_users.json: users and items are the data set's ids, with titles, one user a line."""
    import json

    from fpgarec.explain.page import explain_all, write_all_users

    n = explainer.backend.n_items
    ids = [f"sku-{i:04d}" for i in range(n)]
    titles = [f"Title {i}" for i in range(n)]
    compact = explain_all(explainer, contexts[:3], ["customer_a", "customer_b", "customer_c"], item_ids=ids,
                          titles=titles)
    path = write_all_users(compact, tmp_path / "all_users.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(compact))
    assert len(path.read_text().splitlines()) == 3 + 2  # braces + one line per user
    rows = compact["customer_b"]
    assert all(r["item"].startswith("sku-") and r["title"] == f"Title {int(r['item'][4:])}" for r in rows)
    assert all(r["top_neighbour"] in ids for r in rows)


def _page_rows(page: str, heading: str) -> list[list[str]]:
    """The cells (text) of each row of the first table after ``heading`` on a page."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.in_cell = [], False

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.in_cell = True
                self.rows[-1].append("")

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.in_cell = False
            elif tag == "table":
                self.in_cell = None

        def handle_data(self, data):
            if self.in_cell and self.rows:
                self.rows[-1][-1] += data

    rest = page[page.index(heading):]
    parser = Cells()
    parser.feed(rest[: rest.index("</table>") + len("</table>")])
    return parser.rows


def _page_example(effects):
    from fpgarec.explain.attribution import Explanation

    ex = Explanation(context=[3, 1, 9, 4], recommendations=[5], scores=[7], neighbours=[3, 1, 4],
                     neighbour_weight=1 / 3, neighbour_effect=[effects], modality_weights=[8, 8],
                     modality_frac_bits=4, modality_names=["id", "text"], modality_effect=[[-2, -1]])
    shift = interest_shift(np.array([3, 1, 4]), np.array([0, 0, 0]), [["g"]] * 10, windows=1)
    return ex, shift, [f"T{i}" for i in range(10)]


def test_the_page_never_shows_a_negative_effect_as_weighing_most():
    """A neighbour that lowered a recommendation's score is listed as pushing it down, never
    under "weighed most" or "pushed up" (nor is a modality with a negative effect "top")."""
    from fpgarec.explain.page import render_page

    ex, shift, titles = _page_example([-5, 4, -1])
    page = render_page(ex, shift, titles, "p.png", "u", "b")
    assert "weighed most" not in page
    header, row = _page_rows(page, "<h2>Each recommendation")
    cell = dict(zip(header, row, strict=True))
    up = next(v for k, v in cell.items() if "pushed it up (effect)" in k)
    down = next(v for k, v in cell.items() if "pushed it down" in k)
    assert up == "T1 (+4)"
    assert down == "T3 (-5), T4 (-1)"  # the strongest push down first
    assert cell["modality that pushed it up most"] == "–"  # both modality effects are negative
    all_negative = dict(zip(*_page_rows(render_page(_page_example([-5, -4, -1])[0], shift, titles, "p", "u", "b"),
                                        "<h2>Each recommendation"), strict=True))
    assert next(v for k, v in all_negative.items() if "pushed it up (effect)" in k) == "–"


def test_the_page_lists_the_users_history_in_order_by_the_data_sets_ids():
    """The page lists the user's own items, oldest first, by the data set's ids, with their
    titles where the data has one (item_titles' "item <id>" stand-in is no title)."""
    from fpgarec.explain.page import render_page

    ex, shift, titles = _page_example([1, 2, 3])
    titles[9] = "item sku-9"
    ids = [f"sku-{i}" for i in range(10)]
    page = render_page(ex, shift, titles, "p.png", "u", "b", history=[9, 3, 1, 4], item_ids=ids)
    rows = _page_rows(page, "<h2>Your history")
    assert rows[0][:3] == ["#", "item id", "title"]
    assert [r[:3] for r in rows[1:]] == [["1", "sku-9", ""], ["2", "sku-3", "T3"], ["3", "sku-1", "T1"],
                                         ["4", "sku-4", "T4"]]
    assert [r[3] for r in rows[1:]] == ["", "yes", "yes", "yes"]  # 9 is not among the design's neighbours
