"""Service metrics in the Prometheus text exposition format (version 0.0.4), no dependency.

Exposed at ``GET /metrics``:

- ``fpgarec_requests_total{path, status}``: requests answered, by route and HTTP status
- ``fpgarec_request_errors_total{kind}``: ``client`` (4xx) and ``server`` (5xx) answers
- ``fpgarec_request_duration_seconds``: histogram of the time from a request's arrival to its
  response, by route (``path``)
- ``fpgarec_batch_size``: histogram of the accelerator batches' sizes (queries)
- ``fpgarec_batch_duration_seconds``: histogram of the time one batch spends in sampler + backend
- ``fpgarec_queue_depth``: queries waiting for the accelerator now
- ``fpgarec_info{design, backend}``: 1

Everything runs on the event loop's thread except batch observations, which the batcher makes
from the same thread, so no locks are needed.
"""

from __future__ import annotations

from bisect import bisect_left

#: request latency buckets (seconds)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: dict) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}" if pairs else ""


def _fmt(x: float) -> str:
    return repr(float(x)) if x != int(x) or abs(x) >= 1e15 else str(int(x))


class Histogram:
    """Cumulative-bucket histogram. ``observe(x)`` is O(log buckets)."""

    def __init__(self, buckets):
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # last: above every bound (+Inf only)
        self.sum = 0.0
        self.count = 0

    def observe(self, x: float) -> None:
        self.counts[bisect_left(self.bounds, x)] += 1
        self.sum += x
        self.count += 1

    def lines(self, name: str, labels: dict) -> list[str]:
        out, acc = [], 0
        for bound, c in zip(self.bounds, self.counts[:-1], strict=True):
            acc += c
            out.append(f"{name}_bucket{_labels({**labels, 'le': _fmt(bound)})} {acc}")
        out.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {self.sum!r}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


class Metrics:
    """The service's counters and histograms; :meth:`render` gives the exposition text."""

    def __init__(self, max_batch: int, info: dict | None = None):
        self.info = dict(info or {})
        self.requests: dict[tuple[str, int], int] = {}
        self.errors = {"client": 0, "server": 0}
        self.latency: dict[str, Histogram] = {}
        sizes, b = [], 1
        while b < max_batch:
            sizes.append(b)
            b *= 2
        self.batch_size = Histogram([*sizes, max_batch])
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.queue_depth = 0

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        key = (path, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if status >= 500:
            self.errors["server"] += 1
        elif status >= 400:
            self.errors["client"] += 1
        hist = self.latency.get(path)
        if hist is None:
            hist = self.latency[path] = Histogram(LATENCY_BUCKETS)
        hist.observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        out = [
            "# HELP fpgarec_info The design and backend this service runs.",
            "# TYPE fpgarec_info gauge",
            f"fpgarec_info{_labels(self.info)} 1",
            "# HELP fpgarec_requests_total Requests answered, by route and HTTP status.",
            "# TYPE fpgarec_requests_total counter",
        ]
        for (path, status), n in sorted(self.requests.items()):
            out.append(f"fpgarec_requests_total{_labels({'path': path, 'status': status})} {n}")
        out += ["# HELP fpgarec_request_errors_total Error answers: client (4xx) and server (5xx).",
                "# TYPE fpgarec_request_errors_total counter"]
        out += [f"fpgarec_request_errors_total{_labels({'kind': k})} {n}" for k, n in self.errors.items()]
        out += ["# HELP fpgarec_request_duration_seconds Time from a request's arrival to its response.",
                "# TYPE fpgarec_request_duration_seconds histogram"]
        for path, hist in sorted(self.latency.items()):
            out += hist.lines("fpgarec_request_duration_seconds", {"path": path})
        out += ["# HELP fpgarec_batch_size Queries per accelerator batch.",
                "# TYPE fpgarec_batch_size histogram"]
        out += self.batch_size.lines("fpgarec_batch_size", {})
        out += ["# HELP fpgarec_batch_duration_seconds Sampler + backend time of one batch.",
                "# TYPE fpgarec_batch_duration_seconds histogram"]
        out += self.batch_seconds.lines("fpgarec_batch_duration_seconds", {})
        out += ["# HELP fpgarec_queue_depth Queries waiting for the accelerator.",
                "# TYPE fpgarec_queue_depth gauge",
                f"fpgarec_queue_depth {self.queue_depth}"]
        return "\n".join(out) + "\n"


def parse_text(text: str) -> dict[str, float]:
    """Samples of an exposition text as ``{'name{labels}': value}`` (tests, the load test)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
