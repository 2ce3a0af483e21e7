"""The HTTP service: answers equal the accelerator's, concurrent requests are batched, bad
requests get a 4xx JSON error and the server keeps serving, /metrics is Prometheus text."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from fpgarec.runtime.accelerator import Accelerator
from fpgarec.serve.metrics import parse_text


def user(u: int) -> str:
    """The test history's id of user index ``u``."""
    return f"customer_{u}"


def item(i: int) -> str:
    """The test history's id of item index ``i``."""
    return f"sku-{i:04d}"


def answer(indices, k=None) -> dict:
    """The service's answer for internal item indices (best first) and ``k``."""
    got = [{"id": item(i), "title": f"Title {i}" if i % 2 else None} for i in indices]
    k = len(got) if k is None else k
    return {"items": got, "k": k, "returned": len(got), "short": len(got) < k}


@pytest.fixture(scope="module")
def reference(demo_bundle, history_file):
    with Accelerator(demo_bundle, "emulation", history=history_file) as acc:
        yield acc


def ids(r) -> list[str]:
    return [x["id"] for x in r.json()["items"]]


def test_answers_equal_the_accelerator(service, reference):
    with httpx.Client(base_url=service.url) as c:
        r = c.post("/recommend", json={"user": user(3), "k": 4})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == answer(reference.recommend_indices(users=[3], k=4)[0].tolist(), 4)
        assert ids(r) == reference.recommend(users=[user(3)], k=4)[0]
        assert c.post("/recommend", json={"user_id": user(3), "k": 4}).json() == r.json()  # user_id: the same
        r = c.post("/recommend", json={"items": [item(5), item(17), item(300)]})
        assert r.json() == answer(reference.recommend_indices(items=[[5, 17, 300]])[0].tolist(), 10)
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["backend"] == "emulation"
        assert (health["k"], health["top_k"], health["n_items"], health["known_users"]) == (20, 10, 1682, 100)
        assert (health["ids"], health["titles"]) == ("dataset", True)


def test_exclude_seen_drops_the_history_and_says_when_the_list_is_short(service, reference):
    """The answer is the design's top_k list without what the query has seen, in order; fewer
    than k left: ``short`` is true and ``returned`` counts them."""
    hist = reference.sampler.history
    with httpx.Client(base_url=service.url) as c:
        for u in (3, 11, 42):
            full = reference.recommend_indices(users=[u])[0]
            seen = set(hist.of(u).tolist())
            want = [i for i in full.tolist() if i not in seen][:6]
            r = c.post("/recommend", json={"user": user(u), "k": 6, "exclude_seen": True})
            assert r.status_code == 200 and r.json() == answer(want, 6)
            assert not {item(i) for i in seen} & set(ids(r))
        given = reference.recommend_indices(items=[[5, 17, 300]])[0].tolist()
        seen_items = given[:3]  # give the design's own top 3 as the history: they must go
        r = c.post("/recommend", json={"items": [item(i) for i in seen_items], "exclude_seen": True})
        body = r.json()
        assert not {item(i) for i in seen_items} & set(ids(r))
        assert body["returned"] == len(body["items"]) and body["short"] == (body["returned"] < 10)
        assert c.post("/recommend", json={"user": user(3), "exclude_seen": 1}).status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"user": "customer_500"}, 404, "user: unknown user 'customer_500'"),
        ({"user_id": "nobody"}, 404, "user_id: unknown user 'nobody'"),
        ({"user": user(7)}, 404, "user: user 'customer_7' has no history"),
        ({"user": 3}, 400, "user: user ids are the data set's ids, strings: got int 3"),  # never an index
        ({"user_id": True}, 400, "user_id: user ids are the data set's ids, strings"),
        ({"user": 3.0}, 400, "strings: got float"),
        ({"items": []}, 422, "items: items is empty"),
        ({"items": [item(1)] * 101}, 422, "items: items has 101 ids, at most 100"),
        ({"items": [item(1), "sku-1682"]}, 422, "items: unknown item 'sku-1682'"),
        ({"items": "sku-0001"}, 400, "items: items must be a list of item ids"),
        ({"items": [item(1), 2]}, 400, "items: item ids are the data set's ids, strings: got int 2"),
        ({"items": [item(1)], "k": 0}, 422, "k: k = 0 out of range"),
        ({"items": [item(1)], "k": 11}, 422, "k = 11 out of range"),
        ({"items": [item(1)], "k": "5"}, 400, "k: k must be an integer"),
        ({"items": [item(1)], "user": user(1)}, 400, "exactly one"),
        ({"user_id": user(1), "user": user(1)}, 400, "exactly one"),
        ({}, 400, "exactly one"),
        ({"person": 1}, 400, "unknown field"),
        ([1, 2], 400, "JSON object"),
        (None, 400, "JSON object"),
    ],
)
def test_bad_requests_get_a_4xx_json_error(service, body, status, words):
    with httpx.Client(base_url=service.url) as c:
        r = c.post("/recommend", content=json.dumps(body))
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/json"
        err = r.json()
        assert err["status"] == status and words in err["error"], err
        assert c.post("/recommend", json={"user": user(1)}).status_code == 200  # still serving


def test_malformed_and_oversized_bodies(service):
    with httpx.Client(base_url=service.url) as c:
        r = c.post("/recommend", content=b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        r = c.post("/recommend", content=b'{"items": [' + b'"1",' * 3000 + b'"1"]}')
        assert r.status_code == 413 and "at most 4096" in r.json()["error"]

        def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(10):
                yield b" " * 1000

        r = c.post("/recommend", content=chunks())
        assert r.status_code == 413
        assert c.get("/recommend").status_code == 405
        r = c.get("/nowhere")
        assert r.status_code == 404 and r.json()["status"] == 404
        assert c.post("/recommend", json={"user": user(2)}).status_code == 200


def test_concurrent_requests_are_batched_and_correct(service, reference):
    rng = np.random.default_rng(1)
    users = [int(u) for u in rng.integers(0, 100, 150) if u != 7]
    lists = [rng.integers(0, 1682, rng.integers(1, 40)).tolist() for _ in range(50)]
    before = parse_text(httpx.get(service.url + "/metrics").text)

    async def run():
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=30) as c:
            calls = [c.post("/recommend", json={"user": user(u), "k": 10}) for u in users]
            calls += [c.post("/recommend", json={"items": [item(i) for i in x], "k": 10}) for x in lists]
            return await asyncio.gather(*calls)

    answers = asyncio.run(run())
    assert all(r.status_code == 200 for r in answers)
    got = [ids(r) for r in answers]
    want = np.concatenate([reference.recommend_indices(users=users), reference.recommend_indices(items=lists)])
    assert got == [[item(i) for i in row] for row in want.tolist()]
    after = parse_text(httpx.get(service.url + "/metrics").text)
    n = len(answers)
    batches = after["fpgarec_batch_size_count"] - before.get("fpgarec_batch_size_count", 0)
    queries = after["fpgarec_batch_size_sum"] - before.get("fpgarec_batch_size_sum", 0)
    assert queries == n and batches < n, (batches, n)  # some batches held several requests
    assert after["fpgarec_batch_size_bucket{le=\"16.0\"}"] == after["fpgarec_batch_size_count"]  # max_batch


def test_metrics_are_prometheus_text(service):
    with httpx.Client(base_url=service.url) as c:
        c.post("/recommend", json={"user": user(1)})
        c.post("/recommend", json={"user": "customer_100000"})
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for name, kind in (("fpgarec_requests_total", "counter"), ("fpgarec_request_errors_total", "counter"),
                       ("fpgarec_request_duration_seconds", "histogram"), ("fpgarec_batch_size", "histogram"),
                       ("fpgarec_queue_depth", "gauge")):
        assert f"# TYPE {name} {kind}" in text
    m = parse_text(text)
    assert m['fpgarec_requests_total{path="/recommend",status="200"}'] >= 1
    assert m['fpgarec_requests_total{path="/recommend",status="404"}'] >= 1
    assert m['fpgarec_request_errors_total{kind="client"}'] >= 1
    assert m['fpgarec_request_errors_total{kind="server"}'] == 0
    count = m['fpgarec_request_duration_seconds_count{path="/recommend"}']
    assert m['fpgarec_request_duration_seconds_bucket{le="+Inf",path="/recommend"}'] == count >= 2
    assert m['fpgarec_info{backend="emulation",design="student_w4_pynq-z2"}'] == 1


def test_a_failing_backend_gives_500_and_the_service_goes_on(demo_bundle, history_file, start_service):
    from fpgarec.serve.config import ServeConfig

    class Flaky:
        name = "flaky"

        def __init__(self):
            self.calls = 0

        def run(self, ids, seen=None):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("DMA timeout")
            return np.tile(np.arange(10), (len(ids), 1))

    cfg = ServeConfig(bundle=demo_bundle, port=0, max_wait_ms=0.0)
    running = start_service(cfg, Accelerator(demo_bundle, Flaky(), history=history_file))
    with httpx.Client(base_url=running.url) as c:
        r = c.post("/recommend", json={"user": user(1)})
        assert r.status_code == 500 and r.json()["status"] == 500
        assert c.post("/recommend", json={"user": user(1), "k": 3}).json() == answer([0, 1, 2])
        m = parse_text(c.get("/metrics").text)
    assert m['fpgarec_request_errors_total{kind="server"}'] == 1


def test_a_short_list_says_so(demo_bundle, history_file, start_service):
    """exclude_seen leaves fewer than k items: ``short`` true, ``returned`` the count."""
    from fpgarec.serve.config import ServeConfig

    class Fixed:
        name = "fixed"

        def run(self, ids, seen=None):
            return np.tile(np.arange(10), (len(ids), 1))

    cfg = ServeConfig(bundle=demo_bundle, port=0, max_wait_ms=0.0)
    running = start_service(cfg, Accelerator(demo_bundle, Fixed(), history=history_file))
    with httpx.Client(base_url=running.url) as c:
        r = c.post("/recommend", json={"items": [item(i) for i in range(6)], "k": 5, "exclude_seen": True})
        assert r.json() == answer([6, 7, 8, 9], 5) and r.json()["short"] and r.json()["returned"] == 4
        r = c.post("/recommend", json={"items": [item(i) for i in range(6)], "k": 4, "exclude_seen": True})
        assert r.json() == answer([6, 7, 8, 9], 4) and not r.json()["short"]


def test_the_demo_data_set_answers_with_its_own_ids_and_titles(demo_bundle, start_service):
    """MovieLens-100k through ``--history ml-100k``: user "196" in, item ids and titles out; an
    internal index is refused as a user id."""
    from fpgarec.serve.config import ServeConfig

    cfg = ServeConfig(bundle=demo_bundle, backend="emulation", history="ml-100k", port=0)
    running = start_service(cfg)
    acc = running.app.state.accelerator
    with httpx.Client(base_url=running.url) as c:
        r = c.post("/recommend", json={"user_id": "196", "k": 5})
        assert r.status_code == 200, r.text
        got = r.json()["items"]
        assert [x["id"] for x in got] == acc.recommend(users=["196"], k=5)[0]
        assert all(x["title"] and x["title"].endswith(")") for x in got)  # "Title (year)"
        r = c.post("/recommend", json={"items": ["242", "302"], "k": 3})
        assert r.status_code == 200 and r.json()["returned"] == 3
        assert c.post("/recommend", json={"user_id": 195}).status_code == 400  # an index, not an id
        r = c.post("/recommend", json={"items": ["242", "99999"]})
        assert r.status_code == 422 and r.json()["error"] == "items: unknown item '99999'"
        assert acc.ids.title(acc.ids.item_index("242")) == "Kolya (1996)"


def test_a_design_that_drops_seen_items_on_chip_defaults_to_exclude_seen(demo_bundle, start_service):
    """The committed design drops seen items on chip: ``exclude_seen`` defaults to true there
    (the answer holds none of user 196's items) and ``false`` is refused with 422 naming it."""
    from fpgarec.serve.config import ServeConfig

    cfg = ServeConfig(bundle=demo_bundle, backend="emulation", history="ml-100k", port=0)
    running = start_service(cfg)
    acc = running.app.state.accelerator
    assert acc.seen_on_chip
    seen = set(acc.ids.item_ids(acc.seen(acc.user_query("196"))))
    with httpx.Client(base_url=running.url) as c:
        r = c.post("/recommend", json={"user": "196", "k": 10})
        assert r.status_code == 200 and not {x["id"] for x in r.json()["items"]} & seen
        r = c.post("/recommend", json={"user": "196", "exclude_seen": False})
        assert r.status_code == 422 and r.json()["error"].startswith("exclude_seen: false is not possible")
