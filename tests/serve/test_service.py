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


@pytest.fixture(scope="module")
def reference(demo_bundle, history_file):
    with Accelerator(demo_bundle, "emulation", history=history_file) as acc:
        yield acc


def test_answers_equal_the_accelerator(service, reference):
    with httpx.Client(base_url=service.url) as c:
        r = c.post("/recommend", json={"user_id": 3, "k": 4})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == {"items": reference.recommend(users=[3], k=4)[0].tolist()}
        r = c.post("/recommend", json={"items": [5, 17, 300]})
        assert r.json()["items"] == reference.recommend(items=[[5, 17, 300]])[0].tolist()
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["backend"] == "emulation"
        assert (health["k"], health["top_k"], health["n_items"], health["known_users"]) == (20, 10, 1682, 100)


def test_exclude_seen_drops_the_history_and_the_given_items(service, reference):
    """The answer is the design's top_k list without what the query has seen, in order."""
    hist = reference.sampler.history
    with httpx.Client(base_url=service.url) as c:
        for user in (3, 11, 42):
            full = reference.recommend(users=[user])[0]
            seen = set(hist.of(user).tolist())
            want = [i for i in full.tolist() if i not in seen][:6]
            r = c.post("/recommend", json={"user_id": user, "k": 6, "exclude_seen": True})
            assert r.status_code == 200 and r.json() == {"items": want}
            assert not seen & set(r.json()["items"])
        given = reference.recommend(items=[[5, 17, 300]])[0].tolist()
        seen_items = given[:3]  # give the design's own top 3 as the history: they must go
        r = c.post("/recommend", json={"items": seen_items, "exclude_seen": True})
        assert not set(seen_items) & set(r.json()["items"])
        assert c.post("/recommend", json={"user_id": 3, "exclude_seen": 1}).status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"user_id": 500}, 404, "unknown user 500"),
        ({"user_id": 7}, 404, "unknown user 7"),
        ({"user_id": "3"}, 400, "user_id must be an integer"),
        ({"user_id": True}, 400, "user_id must be an integer"),
        ({"user_id": 3.0}, 400, "user_id must be an integer"),
        ({"items": []}, 422, "empty"),
        ({"items": list(range(101))}, 422, "at most 100"),
        ({"items": [1682]}, 422, "out of range"),
        ({"items": [-1]}, 422, "out of range"),
        ({"items": "1,2"}, 400, "list of integers"),
        ({"items": [1, "2"]}, 400, "integers"),
        ({"items": [1], "k": 0}, 422, "k = 0 out of range"),
        ({"items": [1], "k": 11}, 422, "k = 11 out of range"),
        ({"items": [1], "k": "5"}, 400, "k must be an integer"),
        ({"items": [1], "user_id": 1}, 400, "exactly one"),
        ({}, 400, "exactly one"),
        ({"user": 1}, 400, "unknown field"),
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
        assert err["status"] == status and words in err["error"]
        assert c.post("/recommend", json={"user_id": 1}).status_code == 200  # still serving


def test_malformed_and_oversized_bodies(service):
    with httpx.Client(base_url=service.url) as c:
        r = c.post("/recommend", content=b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        r = c.post("/recommend", content=b'{"items": [' + b"1," * 3000 + b"1]}")
        assert r.status_code == 413 and "at most 4096" in r.json()["error"]

        def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(10):
                yield b" " * 1000

        r = c.post("/recommend", content=chunks())
        assert r.status_code == 413
        assert c.get("/recommend").status_code == 405
        r = c.get("/nowhere")
        assert r.status_code == 404 and r.json()["status"] == 404
        assert c.post("/recommend", json={"user_id": 2}).status_code == 200


def test_concurrent_requests_are_batched_and_correct(service, reference):
    rng = np.random.default_rng(1)
    users = [int(u) for u in rng.integers(0, 100, 150) if u != 7]
    lists = [rng.integers(0, 1682, rng.integers(1, 40)).tolist() for _ in range(50)]
    before = parse_text(httpx.get(service.url + "/metrics").text)

    async def run():
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=30) as c:
            calls = [c.post("/recommend", json={"user_id": u, "k": 10}) for u in users]
            calls += [c.post("/recommend", json={"items": x, "k": 10}) for x in lists]
            return await asyncio.gather(*calls)

    answers = asyncio.run(run())
    assert all(r.status_code == 200 for r in answers)
    got = np.array([r.json()["items"] for r in answers])
    want = np.concatenate([reference.recommend(users=users), reference.recommend(items=lists)])
    np.testing.assert_array_equal(got, want)
    after = parse_text(httpx.get(service.url + "/metrics").text)
    n = len(answers)
    batches = after["fpgarec_batch_size_count"] - before.get("fpgarec_batch_size_count", 0)
    queries = after["fpgarec_batch_size_sum"] - before.get("fpgarec_batch_size_sum", 0)
    assert queries == n and batches < n, (batches, n)  # some batches held several requests
    assert after["fpgarec_batch_size_bucket{le=\"16\"}"] == after["fpgarec_batch_size_count"]  # max_batch


def test_metrics_are_prometheus_text(service):
    with httpx.Client(base_url=service.url) as c:
        c.post("/recommend", json={"user_id": 1})
        c.post("/recommend", json={"user_id": 100000})
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
    assert m['fpgarec_request_duration_seconds_bucket{path="/recommend",le="+Inf"}'] == count >= 2
    assert m['fpgarec_info{design="student_w4_pynq-z2",backend="emulation"}'] == 1


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
        r = c.post("/recommend", json={"user_id": 1})
        assert r.status_code == 500 and r.json()["status"] == 500
        assert c.post("/recommend", json={"user_id": 1, "k": 3}).json() == {"items": [0, 1, 2]}
        m = parse_text(c.get("/metrics").text)
    assert m['fpgarec_request_errors_total{kind="server"}'] == 1
