"""Load test of the service on loopback: a server in a child process, a client in this one.

``fpgarec loadtest BUNDLE`` (:func:`run_loadtest`):

1. loads the history source (default: the demo's MovieLens-100k) and writes it as a history
   ``.npz`` the server loads; generates ``requests`` seeded requests, a ``user_share`` of them
   for known users, the rest carrying item lists of 1..``max_list`` random items, each with a
   random ``k`` in [1, top_k]; with ``check_answers`` computes every expected answer with the
   CPU emulation in this process beforehand;
2. starts ``fpgarec serve`` in a child process on 127.0.0.1 (a free port) and waits for
   ``/healthz``;
3. sends the requests from ``concurrency`` keep-alive connections (a minimal HTTP/1.1 client on
   asyncio streams, so the client costs the shared CPU little), each connection one request
   at a time; no request starts after ``max_seconds``;
4. reads ``/metrics`` (batch sizes), stops the server and returns the summary.

Counts: ``requests`` answered + lost; ``lost``: no answer (connection closed or reset, or no
answer within ``request_timeout_s``); ``failed``: answered with a status other than 200;
``errors_5xx``: of those, 5xx; ``wrong``: 200 answers that differ from the emulation's;
``unsent``: requests not started before ``max_seconds``. Latency is measured by the client
from writing a request to reading its whole answer (``p50_ms``, ``p99_ms``, ``max_ms``);
``rps`` is answers per second of wall time between the first request and the last answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fpgarec.errors import FpgarecError
from fpgarec.runtime.accelerator import Accelerator
from fpgarec.serve.config import LoadTestConfig
from fpgarec.serve.history import load_history
from fpgarec.serve.metrics import parse_text

log = logging.getLogger(__name__)

#: the bars of the load test on 2 cores with the emulation backend
BARS = {"lost": 0, "errors_5xx": 0, "min_rps": 2000.0, "max_p99_ms": 20.0}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_requests(acc: Accelerator, cfg: LoadTestConfig) -> tuple[list[bytes], list[bytes] | None]:
    """The HTTP requests (whole, ready to write) and, with ``check_answers``, each one's
    expected answer body."""
    from fpgarec.serve.app import AnswerEncoder

    rng = np.random.default_rng(cfg.seed)
    n = cfg.requests
    users = np.flatnonzero(acc.sampler.history.lengths > 0) if acc.sampler.history is not None else np.zeros(0)
    is_user = rng.random(n) < cfg.user_share if len(users) else np.zeros(n, dtype=bool)
    ks = rng.integers(1, acc.top_k + 1, size=n)
    user_ids = users[rng.integers(0, len(users), size=n)] if len(users) else np.zeros(n, np.int64)
    lens = rng.integers(1, cfg.max_list + 1, size=n)
    flat = rng.integers(0, acc.n_items, size=int(lens.sum()))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    queries, bodies = [], []
    for i in range(n):
        if is_user[i]:
            q = int(user_ids[i])
            payload = {"user": str(acc.ids.users[q]), "k": int(ks[i])}
        else:
            q = flat[starts[i]:starts[i] + lens[i]].tolist()
            payload = {"items": acc.ids.items[q].tolist(), "k": int(ks[i])}
        queries.append(q)
        body = json.dumps(payload, separators=(",", ":")).encode()
        bodies.append(b"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    expected = None
    if cfg.check_answers:
        top = np.concatenate([acc.recommend_queries_indices(queries[a:a + 4096]) for a in range(0, n, 4096)])
        encoder = AnswerEncoder(acc.ids)
        expected = [encoder.body(top[i, :ks[i]], int(ks[i])) for i in range(n)]
    return bodies, expected


class _Client:
    """``concurrency`` keep-alive connections sending the requests one at a time each."""

    def __init__(self, host: str, port: int, requests: list[bytes], expected: list[bytes] | None,
                 cfg: LoadTestConfig):
        self.host, self.port = host, port
        self.requests, self.expected, self.cfg = requests, expected, cfg
        self.next = 0
        self.latency = np.zeros(len(requests))
        self.status = np.zeros(len(requests), dtype=np.int32)  # 0: not answered
        self.lost = 0
        self.wrong = 0
        self.sent = 0
        self.inflight: dict[int, tuple[float, asyncio.StreamWriter]] = {}

    async def _connect(self):
        return await asyncio.open_connection(self.host, self.port)

    async def worker(self, wid: int, deadline: float) -> None:
        reader = writer = None
        while self.next < len(self.requests) and time.perf_counter() < deadline:
            i = self.next
            self.next += 1
            if writer is None:
                try:
                    reader, writer = await self._connect()
                except OSError as exc:
                    log.warning("connection failed: %s", exc)
                    self.lost += 1
                    self.sent += 1
                    await asyncio.sleep(0.01)
                    continue
            t0 = time.perf_counter()
            self.inflight[wid] = (t0, writer)
            self.sent += 1
            try:
                writer.write(self.requests[i])
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                j = head.find(b"content-length:")
                if j < 0:
                    j = head.lower().find(b"content-length:")
                length = int(head[j + 15:head.index(b"\r\n", j)])
                body = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                self.lost += 1
                log.debug("request %d lost: %r", i, exc)
                writer.close()
                reader = writer = None
                continue
            finally:
                self.inflight.pop(wid, None)
            self.latency[i] = time.perf_counter() - t0
            self.status[i] = status
            if status == 200 and self.expected is not None and body != self.expected[i]:
                try:
                    same = json.loads(body) == json.loads(self.expected[i])
                except ValueError:
                    same = False
                self.wrong += not same
            if b"connection: close" in head.lower():
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def watchdog(self, stop: asyncio.Event) -> None:
        """Close a connection whose request waited longer than the timeout (counted lost)."""
        while not stop.is_set():
            now = time.perf_counter()
            for t0, writer in list(self.inflight.values()):
                if now - t0 > self.cfg.request_timeout_s:
                    writer.transport.abort()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)

    async def run(self) -> float:
        deadline = time.perf_counter() + self.cfg.max_seconds
        stop = asyncio.Event()
        dog = asyncio.ensure_future(self.watchdog(stop))
        t0 = time.perf_counter()
        await asyncio.gather(*(self.worker(w, deadline) for w in range(self.cfg.concurrency)))
        wall = time.perf_counter() - t0
        stop.set()
        await dog
        return wall


def _http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head[9:12]), body


def _start_server(cfg: LoadTestConfig, port: int, history_file: Path | None, log_file: Path) -> subprocess.Popen:
    s = cfg.serve
    cmd = [sys.executable, "-m", "fpgarec.cli", "serve", str(s.bundle), "--backend", s.backend,
           "--host", s.host, "--port", str(port), "--max-batch", str(s.max_batch),
           "--max-wait-ms", str(s.max_wait_ms), "--max-queue", str(s.max_queue),
           "--max-items", str(s.max_items), "--max-body-bytes", str(s.max_body_bytes),
           "--blas-threads", str(s.blas_threads or 0)]
    cmd += ["--history", str(history_file) if history_file is not None else "none"]
    if s.backend_thread:
        cmd.append("--backend-thread")
    log.info("starting the server: %s", " ".join(cmd))
    with open(log_file, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def _wait_healthy(proc: subprocess.Popen, host: str, port: int, timeout: float, log_file: Path) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            tail = log_file.read_text(errors="replace").strip().splitlines()[-5:]
            raise FpgarecError(f"the server exited with code {proc.returncode}: {' | '.join(tail)}")
        with contextlib.suppress(OSError):
            if _http_get(host, port, "/healthz", timeout=1.0)[0] == 200:
                return
        time.sleep(0.1)
    raise FpgarecError(f"the server did not answer /healthz within {timeout:.0f} s (log: {log_file})")


def _stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _server_stats(host: str, port: int) -> dict:
    status, body = _http_get(host, port, "/metrics")
    if status != 200:
        return {}
    m = parse_text(body.decode())
    count = m.get("fpgarec_batch_size_count", 0.0)
    return {
        "batches": int(count),
        "mean_batch": round(m.get("fpgarec_batch_size_sum", 0.0) / count, 2) if count else 0.0,
        "server_errors": int(m.get('fpgarec_request_errors_total{kind="server"}', 0)),
    }


def run_loadtest(cfg: LoadTestConfig) -> dict:
    """Run the load test (module docstring); returns the summary dict (the command prints it
    as its last line)."""
    s = cfg.serve
    history = load_history(s.history)
    acc = Accelerator(s.bundle, "emulation", history=history, max_items=s.max_items)
    t0 = time.perf_counter()
    requests, expected = make_requests(acc, cfg)
    log.info("%d requests generated in %.1f s (answers %s)", len(requests), time.perf_counter() - t0,
             "checked against the emulation" if expected is not None else "not checked")
    acc.close()
    host = "127.0.0.1" if s.host == "localhost" else s.host
    port = s.port or free_port(host)
    with tempfile.TemporaryDirectory(prefix="fpgarec-loadtest-") as tmp:
        tmp = Path(tmp)
        history_file = history.save(tmp / "history.npz") if history is not None else None
        log_file = tmp / "server.log"
        proc = _start_server(cfg, port, history_file, log_file)
        try:
            _wait_healthy(proc, host, port, cfg.startup_timeout_s, log_file)
            log.info("server %d up on %s:%d; %d requests at concurrency %d", proc.pid, host, port,
                     len(requests), cfg.concurrency)
            client = _Client(host, port, requests, expected, cfg)
            gc.collect()
            gc.freeze()  # the generated requests stay: no full GC passes over them mid-run
            try:
                wall = asyncio.run(client.run())
            finally:
                gc.unfreeze()
            stats = _server_stats(host, port)
        finally:
            _stop_server(proc)
        if proc.returncode not in (0, -signal.SIGINT):
            log.warning("server log:\n%s", log_file.read_text(errors="replace")[-2000:])
    answered = client.status > 0
    lat = client.latency[answered] * 1e3
    n_ans = int(answered.sum())
    failed = int((client.status[answered] != 200).sum())
    result = {
        "requests": n_ans + client.lost,
        "lost": client.lost,
        "failed": failed,
        "rps": round(n_ans / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if n_ans else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if n_ans else None,
        "max_ms": round(float(lat.max()), 3) if n_ans else None,
        "errors_5xx": int((client.status >= 500).sum()),
        "wrong": client.wrong if expected is not None else None,
        "unsent": len(requests) - client.sent,
        "seconds": round(wall, 3),
        "concurrency": cfg.concurrency,
        "backend": s.backend,
        "max_batch": s.max_batch,
        "max_wait_ms": s.max_wait_ms,
        "cpus": os.cpu_count(),
        **stats,
    }
    result["bars"] = {
        "lost": result["lost"] == BARS["lost"],
        "errors_5xx": result["errors_5xx"] == BARS["errors_5xx"],
        "rps": result["rps"] >= BARS["min_rps"],
        "p99_ms": result["p99_ms"] is not None and result["p99_ms"] <= BARS["max_p99_ms"],
    }
    result["passed"] = all(result["bars"].values())
    return result
