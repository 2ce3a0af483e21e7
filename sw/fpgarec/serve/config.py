"""Settings of the service and of its load test: one dataclass per flow, nothing read from the
environment."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from fpgarec.errors import FpgarecError


@dataclass
class ServeConfig:
    """Everything ``fpgarec serve`` needs to know."""

    #: the compiled design (bundle folder with manifest.json).
    bundle: Path
    #: accelerator backend: auto (PYNQ where a board is present, else emulation), pynq,
    #: emulation or finn.
    backend: str = "auto"
    #: known users' histories: a history .npz file, a RecBole atomic-file data folder (train +
    #: valid of the temporal split), "ml-100k" (the demo's data) or None (item lists only).
    history: str | None = None
    #: address to bind; loopback by default (put a reverse proxy in front to expose it).
    host: str = "127.0.0.1"
    #: TCP port (0: any free port).
    port: int = 8000
    #: largest accelerator batch the service forms from concurrent requests.
    max_batch: int = 64
    #: how long the first request of a batch waits for others (milliseconds; 0: run at once).
    max_wait_ms: float = 1.0
    #: queries waiting for the accelerator beyond which requests get 503 (back-pressure).
    max_queue: int = 4096
    #: largest request body in bytes (413 above).
    max_body_bytes: int = 64 * 1024
    #: longest item list a request may carry (new users).
    max_items: int = 1024
    #: seconds a request's body may take to arrive, from the start of the request, and its line
    #: and headers, from its first byte (from the connection's opening for its first request)
    #: (408 and the connection closed after that, a quiet close where nothing arrived: a client
    #: that never finishes its headers or body holds nothing).
    read_timeout_s: float = 10.0
    #: seconds requests in flight get to finish at shutdown (SIGINT/SIGTERM); those still
    #: running then are answered 503 and closed.
    shutdown_timeout_s: float = 5.0
    #: run accelerator batches in a worker thread (the event loop keeps parsing requests
    #: meanwhile) instead of inline on the event loop.
    backend_thread: bool = False
    #: write each HTTP response with one system call instead of two (fpgarec.serve.protocol).
    coalesce_writes: bool = True
    #: threads of the BLAS library in the server process (None: leave as is). The service's
    #: batches are small; a multi-threaded BLAS on a shared CPU spins against the event loop and
    #: other processes. Applied with threadpoolctl where it is installed.
    blas_threads: int | None = 1
    #: uvicorn's log level (the service logs through the standard logging module).
    log_level: str = "warning"

    def __post_init__(self):
        self.bundle = Path(self.bundle)
        checks = [
            (self.max_batch >= 1, "max_batch must be >= 1"),
            (self.max_wait_ms >= 0, "max_wait_ms must be >= 0"),
            (self.max_queue >= self.max_batch, "max_queue must be >= max_batch"),
            (self.max_body_bytes >= 64, "max_body_bytes must be >= 64"),
            (self.max_items >= 1, "max_items must be >= 1"),
            (self.read_timeout_s > 0, "read_timeout_s must be > 0"),
            (self.shutdown_timeout_s >= 0, "shutdown_timeout_s must be >= 0"),
            (0 <= self.port < 65536, "port must be in 0..65535"),
        ]
        for ok, message in checks:
            if not ok:
                raise FpgarecError(f"serve: {message}")

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class LoadTestConfig:
    """Everything ``fpgarec loadtest`` needs to know. The server runs in a child process on
    127.0.0.1 (``serve``: its settings, ``port`` 0 = pick a free one); the client in this one."""

    #: the service under test (backend emulation and the demo's users by default).
    serve: ServeConfig
    #: requests sent in total (the test's bound in count).
    requests: int = 50_000
    #: requests in flight at any time (one keep-alive connection each).
    concurrency: int = 64
    #: share of requests naming a known user (the rest carry an item list of 1..max_list items).
    user_share: float = 0.5
    #: longest item list the generated new-user requests carry.
    max_list: int = 50
    #: seed of the generated requests.
    seed: int = 0
    #: the test's bound in time: no request is sent after this many seconds.
    max_seconds: float = 300.0
    #: a request without a response after this many seconds counts as lost.
    request_timeout_s: float = 10.0
    #: seconds the server may take to start answering /healthz.
    startup_timeout_s: float = 60.0
    #: check every response against the CPU emulation run in this process beforehand.
    check_answers: bool = True

    def __post_init__(self):
        checks = [
            (self.requests >= 1, "requests must be >= 1"),
            (1 <= self.concurrency <= 1024, "concurrency must be in 1..1024"),
            (0.0 <= self.user_share <= 1.0, "user_share must be in [0, 1]"),
            (self.max_list >= 1, "max_list must be >= 1"),
            (self.max_seconds > 0 and self.request_timeout_s > 0, "time limits must be > 0"),
            (self.serve.host in ("127.0.0.1", "localhost", "::1"), "the load test runs on loopback only"),
        ]
        for ok, message in checks:
            if not ok:
                raise FpgarecError(f"loadtest: {message}")
