"""Serving an attention design (tests/small_design.py's attention student, built with
``emit_weights``): behaviour types from the history and from new users' queries, the weights
the design emits as the service's and the explainer's explanation, and the refusals."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from small_design import build_attention_weights_design, make_attention_student

N_ITEMS = 200


@pytest.fixture(scope="module")
def weights_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attention_weights")
    return build_attention_weights_design(make_attention_student(tmp)[1], tmp, design="att_weights")


def _history(with_types: bool = True, top_type: int = 2):
    from fpgarec.runtime.ids import IdMap
    from fpgarec.runtime.sampler import History

    rng = np.random.default_rng(5)
    lists = [rng.integers(0, N_ITEMS, rng.integers(1, 12)) for _ in range(30)]
    types = [rng.integers(0, top_type + 1, len(x)) for x in lists]
    ids = IdMap([f"u{u}" for u in range(30)], [f"i{i}" for i in range(N_ITEMS)],
                [f"Item {i}" for i in range(N_ITEMS)])
    return History.from_lists(lists, N_ITEMS, ids=ids, types=types if with_types else None)


@pytest.fixture(scope="module")
def history_file(tmp_path_factory):
    return _history().save(tmp_path_factory.mktemp("att_history") / "history.npz")


def test_history_types_round_trip_and_reach_the_words(weights_bundle, history_file):
    """The history file keeps each interaction's type; the sampler packs them into the meta
    words (a user's words differ from the same items sent as type-0 items)."""
    from fpgarec.runtime.accelerator import Accelerator
    from fpgarec.runtime.sampler import History

    h = History.load(history_file)
    assert h.types is not None and np.array_equal(h.types, _history().types)
    with Accelerator(weights_bundle, "emulation", history=h) as acc:
        agg = acc.bundle.attention
        words = acc.sampler.users(np.arange(30))
        got_types = (words >> agg["id_bits"]) & ((1 << agg["type_bits"]) - 1)
        assert got_types.any()
        plain = acc.sampler.items([h.of(u).tolist() for u in range(30)])
        assert np.array_equal(plain & 255, words & 255) and not np.array_equal(plain, words)


def test_an_attention_design_refuses_a_history_without_types(weights_bundle, tmp_path):
    from fpgarec.errors import FpgarecError
    from fpgarec.runtime.accelerator import Accelerator

    old = _history(with_types=False).save(tmp_path / "old.npz")
    with pytest.raises(FpgarecError, match="no behaviour types.*attention design reads one per item"):
        Accelerator(weights_bundle, "emulation", history=old)
    with pytest.raises(FpgarecError, match="behaviour type 3 outside the design's 3 types"):
        Accelerator(weights_bundle, "emulation", history=_history(top_type=3))


def test_service_types_and_explanations(weights_bundle, history_file, start_service):
    """``types`` change a new user's answer as the accelerator's; ``explain: true`` returns the
    weights the design emitted (the accelerator's, heaviest first, summing to ~1) beside the same
    top-k; bad types get a 4xx naming the field."""
    from fpgarec.serve.config import ServeConfig

    cfg = ServeConfig(bundle=weights_bundle, backend="emulation", history=str(history_file), port=0)
    running = start_service(cfg)
    acc = running.app.state.accelerator
    assert acc.emits_weights
    items = ["i5", "i17", "i33", "i120"]
    with httpx.Client(base_url=running.url) as c:
        answers = {}
        for types in ([0, 0, 0, 0], [2, 1, 0, 2], [1, 1, 1, 1]):
            r = c.post("/recommend", json={"items": items, "types": types})
            assert r.status_code == 200, r.text
            want = acc.item_ids(acc.recommend_queries_indices([acc.items_query(items, types)]))[0]
            assert [x["id"] for x in r.json()["items"]] == want
            answers[tuple(types)] = want
        assert c.post("/recommend", json={"items": items}).json()["items"] == \
            c.post("/recommend", json={"items": items, "types": [0, 0, 0, 0]}).json()["items"]

        r = c.post("/recommend", json={"user": "u3", "explain": True})
        assert r.status_code == 200, r.text
        body = r.json()
        plain = c.post("/recommend", json={"user": "u3"}).json()
        assert body["items"] == plain["items"]
        ex = body["explanation"]
        ref = acc.explain_queries_indices([acc.user_query("u3")])
        real = ref["items"][0] >= 0
        assert len(ex["context"]) == int(real.sum()) and ex["weight_bits"] == ref["weight_bits"]
        w = [x["weight"] for x in ex["context"]]
        assert w == sorted(w, reverse=True) and abs(sum(w) - 1) < 0.02
        assert sorted(w) == sorted(np.round(ref["weights"][0][real] / 2 ** ref["weight_bits"], 6).tolist())
        assert {x["type"] for x in ex["context"]} <= {"view", "like", "comment"}
        assert "emitted by the design" in ex["source"]

        for body, status, words in (({"items": items, "types": [0, 1]}, 422, "types has 2 entries"),
                                    ({"items": items, "types": [0, 0, 0, 3]}, 422, "behaviour type 3 outside"),
                                    ({"items": items, "types": "like"}, 400, "types: types must be a list"),
                                    ({"items": items, "types": [0, 0, 0, True]}, 400, "types must be integers"),
                                    ({"user": "u3", "types": [0]}, 400, "types: only with items"),
                                    ({"user": "u3", "explain": "yes"}, 400, "explain must be true or false")):
            r = c.post("/recommend", json=body)
            assert r.status_code == status and words in r.json()["error"], (body, r.text)


def test_explain_is_refused_where_the_design_emits_no_weights(demo_bundle, start_service):
    from fpgarec.serve.config import ServeConfig

    running = start_service(ServeConfig(bundle=demo_bundle, backend="emulation", history=None, port=0))
    with httpx.Client(base_url=running.url) as c:
        r = c.post("/recommend", json={"items": ["5", "17"], "explain": True})
        assert r.status_code == 422 and "emits no attention weights" in r.json()["error"]


def test_explainer_reads_the_design_weights(weights_bundle):
    """The explainer of an attention design: each real slot's weight from the design's weight
    output, its type and bucket; neighbour effects are exact score differences."""
    from fpgarec.compile import checks
    from fpgarec.explain.attribution import Explainer
    from fpgarec.runtime.emulation import EmulationBackend

    emu = EmulationBackend(weights_bundle)
    agg = emu.bundle.attention
    words = checks.sample_inputs(emu.bundle.manifest["model"], N_ITEMS, 4, 40, seed=2)
    explainer = Explainer(emu)
    _, weights = emu.run_with_weights(words)
    for b, ex in enumerate(explainer.explain(words)):
        ids = words[b] & ((1 << agg["id_bits"]) - 1)
        real = np.flatnonzero(ids != emu.bundle.null_id)
        assert ex.neighbours == ids[real].tolist()
        assert ex.attention_weights == (weights[b, real] / 2 ** agg["weight_bits"]).round(6).tolist()
        assert ex.neighbour_types == ((words[b, real] >> agg["id_bits"]) & 3).tolist()
        if len(real):
            assert abs(sum(ex.attention_weights) - 1) < 0.02
            occluded = words[b].copy()
            occluded[real[0]] = emu.bundle.null_id
            s0, s1 = emu.scores(words[b:b + 1])[0], emu.scores(occluded[None])[0]
            assert [e[0] for e in ex.neighbour_effect] == (s0 - s1)[ex.recommendations].tolist()
