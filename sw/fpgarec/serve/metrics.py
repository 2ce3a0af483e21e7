"""Service metrics with ``prometheus_client`` (pinned in requirements/serve.txt), exposed at
``GET /metrics`` in the Prometheus text format (version 0.0.4, ``generate_latest``).

- ``fpgarec_requests_total{path, status}``: requests answered, by route and HTTP status
- ``fpgarec_request_errors_total{kind}``: ``client`` (4xx) and ``server`` (5xx) answers
- ``fpgarec_client_disconnects_total{path}``: requests whose client went away before an answer
  could be sent (not an answer, so in neither of the two above)
- ``fpgarec_request_duration_seconds``: histogram of the time from a request's arrival to its
  response, by route (``path``)
- ``fpgarec_batch_size``: histogram of the accelerator batches' sizes (queries)
- ``fpgarec_batch_duration_seconds``: histogram of the time one batch spends in sampler + backend
- ``fpgarec_queue_depth``: queries waiting for the accelerator now
- ``fpgarec_info{design, backend}``: 1

Every :class:`Metrics` has its own ``CollectorRegistry`` (never the process-wide default one),
so several services in one process (the tests) keep their counts apart.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

#: request latency buckets (seconds)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
#: the media type of :meth:`Metrics.render`'s text
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def batch_buckets(max_batch: int) -> list[float]:
    """Powers of two below ``max_batch``, then ``max_batch``."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return [float(x) for x in (*sizes, max_batch)]


class Metrics:
    """The service's counters and histograms in their own registry; :meth:`render` gives the
    exposition text."""

    def __init__(self, max_batch: int, info: dict | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        info = {"design": "", "backend": "", **{k: str(v) for k, v in (info or {}).items()}}
        Gauge("fpgarec_info", "The design and backend this service runs.", list(info), registry=r) \
            .labels(**info).set(1)
        self.requests = Counter("fpgarec_requests", "Requests answered, by route and HTTP status.",
                                ["path", "status"], registry=r)
        errors = Counter("fpgarec_request_errors", "Error answers: client (4xx) and server (5xx).", ["kind"],
                         registry=r)
        self.errors = {kind: errors.labels(kind=kind) for kind in ("client", "server")}
        self.disconnects = Counter("fpgarec_client_disconnects",
                                   "Requests whose client went away before the answer (not answered).",
                                   ["path"], registry=r)
        self.latency = Histogram("fpgarec_request_duration_seconds", "Time from a request's arrival to its response.",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("fpgarec_batch_size", "Queries per accelerator batch.",
                                    buckets=batch_buckets(max_batch), registry=r)
        self.batch_seconds = Histogram("fpgarec_batch_duration_seconds", "Sampler + backend time of one batch.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("fpgarec_queue_depth", "Queries waiting for the accelerator.", registry=r)
        self._children: dict[tuple[str, int], tuple] = {}

    def track_queue(self, pending: Callable[[], int]) -> None:
        """Read the queue depth from ``pending()`` whenever the metrics are rendered."""
        self.queue_depth.set_function(pending)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        """One answered request (``status`` sent to the client)."""
        children = self._children.get((path, status))
        if children is None:
            children = self._children[(path, status)] = (
                self.requests.labels(path=path, status=str(status)), self.latency.labels(path=path),
                self.errors["server"] if status >= 500 else self.errors["client"] if status >= 400 else None)
        counter, hist, errors = children
        counter.inc()
        hist.observe(seconds)
        if errors is not None:
            errors.inc()

    def observe_disconnect(self, path: str) -> None:
        """A request whose client disconnected before it could be answered."""
        self.disconnects.labels(path=path).inc()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        """The exposition text (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)


def parse_text(text: str) -> dict[str, float]:
    """Samples of an exposition text as ``{'name{labels}': value}``, labels sorted by name
    (``'fpgarec_requests_total{path="/recommend",status="200"}'``; tests, the load test)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
    return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
