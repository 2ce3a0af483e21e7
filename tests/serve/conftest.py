"""A running service on 127.0.0.1 (a free port, uvicorn in a thread) over the committed demo
bundle with the CPU emulation and a small synthetic history."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[2] / "bitstreams" / "student_w4_pynq-z2"


@pytest.fixture(scope="session")
def demo_bundle() -> Path:
    return DEMO


@pytest.fixture(scope="session")
def history_file(tmp_path_factory) -> Path:
    """100 users ``customer_0`` .. ``customer_99`` (``customer_7`` without history) over the
    demo's 1682 items, ids ``sku-0000`` .. ``sku-1681``, titles ``Title i`` for odd i only."""
    from fpgarec.runtime.ids import IdMap
    from fpgarec.runtime.sampler import History

    rng = np.random.default_rng(0)
    lists = [rng.integers(0, 1682, rng.integers(1, 60)) for _ in range(100)]
    lists[7] = np.zeros(0, np.int64)  # a user without history
    ids = IdMap([user(u) for u in range(100)], [item(i) for i in range(1682)],
                [f"Title {i}" if i % 2 else "" for i in range(1682)])
    return History.from_lists(lists, 1682, ids=ids).save(tmp_path_factory.mktemp("history") / "history.npz")



def user(u: int) -> str:
    return f"customer_{u}"


def item(i: int) -> str:
    return f"sku-{i:04d}"


class Running:
    """A started ``uvicorn.Server`` in a daemon thread; ``url`` and ``app``."""

    def __init__(self, cfg, acc=None):
        from fpgarec.serve.app import build_server

        self.server = build_server(cfg, acc)
        self.app = self.server.config.app
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - t0 > 30:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def service(demo_bundle, history_file):
    from fpgarec.serve.config import ServeConfig

    cfg = ServeConfig(bundle=demo_bundle, backend="emulation", history=str(history_file), port=0,
                      max_batch=16, max_wait_ms=2.0, max_items=100, max_body_bytes=4096)
    running = Running(cfg)
    yield running
    running.stop()


@pytest.fixture
def start_service():
    """Start extra services: ``start_service(cfg, acc=None) -> Running``; stopped after the test."""
    started = []

    def start(cfg, acc=None):
        started.append(Running(cfg, acc))
        return started[-1]

    yield start
    for running in started:
        running.stop()
