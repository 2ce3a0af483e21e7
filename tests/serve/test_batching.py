"""Dynamic batching, write coalescing, metrics and history sources, without a server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from fpgarec.errors import FpgarecError
from fpgarec.serve.batching import DynamicBatcher, QueueFull
from fpgarec.serve.metrics import Metrics, parse_text


def _echo(queries):
    return np.array([[q, q + 1] for q in queries])


def test_pending_queries_form_batches_of_at_most_max_batch():
    sizes = []

    async def main():
        b = DynamicBatcher(_echo, max_batch=4, max_wait=0.01, on_batch=lambda n, s: sizes.append(n))
        b.start()
        futs = [b.submit(q) for q in range(10)]
        rows = await asyncio.gather(*futs)
        await b.stop()
        return rows

    rows = asyncio.run(main())
    assert [r.tolist() for r in rows] == [[q, q + 1] for q in range(10)]
    assert sizes == [4, 4, 2]


def test_a_lone_query_does_not_wait_for_max_wait():
    async def main():
        b = DynamicBatcher(_echo, max_batch=64, max_wait=5.0)
        b.start()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        row = await b.submit(7)
        dt = loop.time() - t0
        await b.stop()
        return row, dt

    row, dt = asyncio.run(main())
    assert row.tolist() == [7, 8] and dt < 1.0


def test_a_failing_batch_fails_its_queries_only():
    calls = []

    def run(queries):
        calls.append(list(queries))
        if len(calls) == 1:
            raise RuntimeError("board hiccup")
        if len(calls) == 2:
            return _echo(queries)[:-1]  # a row short
        return _echo(queries)

    async def main():
        b = DynamicBatcher(run, max_batch=2, max_wait=0.0)
        b.start()
        first = [b.submit(0), b.submit(1)]
        res1 = await asyncio.gather(*first, return_exceptions=True)
        second = [b.submit(2), b.submit(3)]
        res2 = await asyncio.gather(*second, return_exceptions=True)
        ok = await b.submit(4)
        await b.stop()
        return res1, res2, ok

    res1, res2, ok = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in res1 + res2)
    assert ok.tolist() == [4, 5]


def test_queue_limit_and_stop():
    async def main():
        b = DynamicBatcher(_echo, max_batch=2, max_wait=0.0, max_queue=3)
        with pytest.raises(RuntimeError, match="not running"):
            b.submit(0)
        b.start()
        futs = [b.submit(q) for q in range(3)]
        with pytest.raises(QueueFull):
            b.submit(3)
        await b.stop()
        return futs

    futs = asyncio.run(main())
    assert all(f.done() for f in futs)


def test_batches_in_a_worker_thread():
    async def main():
        b = DynamicBatcher(_echo, max_batch=8, max_wait=0.001, in_thread=True)
        b.start()
        rows = await asyncio.gather(*(b.submit(q) for q in range(20)))
        await b.stop()
        return rows

    assert [r[0] for r in asyncio.run(main())] == list(range(20))


def test_coalescing_transport_writes_once_per_loop_iteration():
    from fpgarec.serve.protocol import CoalescingTransport

    class Fake:
        def __init__(self):
            self.writes, self.closed = [], False

        def write(self, data):
            self.writes.append(data)

        def close(self):
            self.closed = True

        def is_closing(self):
            return self.closed

        def get_write_buffer_size(self):
            return 0

        def get_extra_info(self, name, default=None):
            return "extra"

    async def main():
        fake = Fake()
        t = CoalescingTransport(fake, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert fake.writes == [] and t.get_write_buffer_size() == 23
        await asyncio.sleep(0)
        assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"last")
        t.close()
        assert fake.writes[-1] == b"last" and fake.closed
        assert t.get_extra_info("socket") == "extra"

    asyncio.run(main())


def test_histogram_buckets_are_cumulative_and_le_inclusive():
    metrics = Metrics(max_batch=4, info={"design": 'a"b'})
    for x in (0.5, 1, 1.5, 4, 3):
        metrics.observe_batch(x, 0.001)
    text = metrics.render().decode()
    m = parse_text(text)
    assert [m[f'fpgarec_batch_size_bucket{{le="{b}"}}'] for b in ("1.0", "2.0", "4.0", "+Inf")] == [2, 3, 5, 5]
    assert m["fpgarec_batch_size_count"] == 5 and m["fpgarec_batch_size_sum"] == 10.0
    assert 'design="a\\"b"' in text


def test_every_service_has_its_own_metrics_registry():
    """Two services in one process count apart (a per-app registry, not the global one)."""
    a, b = Metrics(max_batch=8), Metrics(max_batch=8)
    a.observe_request("/recommend", 200, 0.001)
    a.observe_disconnect("/recommend")
    assert parse_text(a.render().decode())['fpgarec_requests_total{path="/recommend",status="200"}'] == 1
    mb = parse_text(b.render().decode())
    assert 'fpgarec_requests_total{path="/recommend",status="200"}' not in mb
    assert mb['fpgarec_request_errors_total{kind="server"}'] == 0
    assert parse_text(a.render().decode())['fpgarec_client_disconnects_total{path="/recommend"}'] == 1


def test_history_sources(tmp_path, history_file):
    from fpgarec.serve.history import load_history

    assert load_history(None) is None
    assert load_history(str(history_file)).n_users == 100
    with pytest.raises(FpgarecError, match="not found"):
        load_history(tmp_path / "nothing.npz")
    data = tmp_path / "tiny"
    data.mkdir()
    rows = [f"{u}\t{i}\t{t}" for u in ("a", "b") for t, i in enumerate(("x", "y", "z", "w", "v"))]
    (data / "tiny.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "\n".join(rows) + "\n")
    h = load_history(data)
    assert h.n_users == 2 and h.n_items == 5
    assert h.lengths.tolist() == [4, 4]  # of 5 interactions: 3 train + 1 valid; 1 test held out
