"""The recommendation service: Starlette on uvicorn, one accelerator behind a dynamic batcher.

Endpoints (JSON in and out). Users and items are named by the data set's own ids, strings (the
tokens of its interaction file: MovieLens ``"196"``, ``"242"``; a RecBole data set's
``"customer_17"``, ``"sku-0001"``), mapped by the history's id maps
(:mod:`fpgarec.runtime.ids`); internal indices never appear. A history without maps (a
``fpgarec-history/1`` file, or ``--history none``) serves the internal indices as decimal
strings, with a warning at start (``/healthz`` says ``"ids": "internal"``).

``POST /recommend``
    ``{"user": "196", "k": 10}`` (a known user: its context comes from the history; ``user_id``
    is accepted for ``user``) or ``{"items": ["242", "302"], "k": 5}`` (a new user's items,
    oldest first). ``k`` is optional (default: the design's ``top_k``) and must lie in
    [1, top_k]. Answer::

        {"items": [{"id": "242", "title": "Kolya (1996)"}, ...], "k": 5, "returned": 5, "short": false}

    the best item ids, best first, each with its title (null where the data set has none);
    ``short`` is true when fewer than ``k`` items are returned (``returned``).
    ``"exclude_seen": true`` drops the items the query has seen (the known user's history, or
    the given items) from the design's ``top_k`` list first, so the answer may be short; serve
    a design built with a larger ``top_k`` (``fpgarec build --top-k 64``) for that. The default
    is true for a design that drops seen items on chip (``fpgarec build --exclude-seen``, the
    demo's and the committed bundles; ``false`` is refused there with 422) and false otherwise.
    A design that drops seen items on chip may answer short too.
    ``"types": [1, 0]`` (attention designs) gives the behaviour type of each of a new user's
    items (0 view, 1 like, 2 comment for the demo data; default all 0); a known user's types
    come from the history. ``"explain": true`` (a design built with ``--emit-weights``) adds
    ``"explanation"``: the context items the design's attention layer weighed for this query,
    as the accelerator computed them, heaviest first::

        "explanation": {"source": "attention weights emitted by the design (backend emulation)",
                        "weight_bits": 10, "context": [{"id": "302", "title": ..., "type": "like",
                        "recency_bucket": 0, "weight": 0.4131}, ...]}

    (``weight`` = a_j / 2^W; the weights of a query's real context items sum to 1 within
    K / 2^W). Explained queries run one at a time, outside the batcher.
``GET /healthz``
    ``{"status": "ok", "design", "backend", "k", "top_k", "n_items", "known_users", "ids",
    "titles"}`` (``ids``: ``"dataset"`` or ``"internal"``; ``titles``: the items have titles).
``GET /metrics``
    Prometheus text (:mod:`fpgarec.serve.metrics`).

Errors are JSON ``{"error": message, "status": code}``: 400 malformed JSON (also nested deeper
than :data:`MAX_DEPTH`), unknown fields or wrong types (an integer where an id string is
expected); 404 unknown user (or path); 405 wrong method; 408 headers or a body not received
within ``read_timeout_s`` (the connection is closed; :mod:`fpgarec.serve.protocol`); 413 body larger than ``max_body_bytes``; 415 a
``Content-Type`` other than ``application/json``; 422 values out of range (empty or over-long
item list, an unknown item id, ``k`` out of range); each message names the field and the value;
503 more than ``max_queue`` queries waiting, or a request cut off by the shutdown; 500 a failed
accelerator batch. A bad request never affects other requests, and none logs a traceback. A
client that disconnects before its answer is counted in ``fpgarec_client_disconnects_total``,
not as an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fpgarec.runtime.accelerator import Accelerator, first_unseen
from fpgarec.runtime.ids import IdMap
from fpgarec.runtime.sampler import ItemList, QueryError, QueryTypeError, UnknownUserError
from fpgarec.serve.batching import DynamicBatcher, QueueFull
from fpgarec.serve.config import ServeConfig
from fpgarec.serve.explanation import explanation_json
from fpgarec.serve.history import load_history
from fpgarec.serve.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from fpgarec.serve.metrics import Metrics

log = logging.getLogger(__name__)

JSON = "application/json"
#: routes reported by name in the metrics (anything else is "other", bounding label values)
ROUTES = ("/recommend", "/healthz", "/metrics")
_FIELDS = {"user", "user_id", "items", "types", "k", "exclude_seen", "explain"}
#: deepest nesting of arrays and objects a body may have (a query needs 2: an object holding a
#: list); deeper bodies are refused before parsing (the JSON parser recurses)
MAX_DEPTH = 32
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = b"[{", b"]}", ord('"'), ord("\\")
#: ``asyncio.timeout`` (Python 3.11: a timer, no extra task per request); None on 3.10
_TIMEOUT = getattr(asyncio, "timeout", None)


class HTTPError(Exception):
    """An error answer: ``status`` and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class AnswerEncoder:
    """Bodies of successful /recommend answers (compact JSON, module docstring): each item's
    ``{"id","title"}`` object is encoded once, on first use."""

    def __init__(self, ids: IdMap):
        self.ids = ids
        self._items: list[bytes | None] = [None] * ids.n_items

    def item(self, index: int) -> bytes:
        frag = self._items[index]
        if frag is None:
            frag = self._items[index] = json.dumps(
                {"id": str(self.ids.items[index]), "title": self.ids.title(index)}, separators=(",", ":")).encode()
        return frag

    def body(self, row, k: int) -> bytes:
        """``row``: the answer's internal item indices, best first (at most ``k``; -1: an empty
        slot, dropped)."""
        frags = [self.item(i) for i in row.tolist() if i >= 0]
        n = len(frags)
        return b'{"items":[%s],"k":%d,"returned":%d,"short":%s}' % (
            b",".join(frags), k, n, b"true" if n < k else b"false")


def error_body(status: int, message: str) -> bytes:
    """The body of an error answer: ``{"error": message, "status": status}``."""
    return json.dumps({"error": message, "status": status}).encode()


def error_response(status: int, message: str) -> Response:
    return Response(error_body(status, message), status_code=status, media_type=JSON)


class MetricsMiddleware:
    """Pure ASGI middleware: status and duration of every HTTP request into :class:`Metrics`."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = None  # None at the end: nothing was sent, the client went away

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        path = scope["path"] if scope["path"] in ROUTES else "other"
        try:
            await self.app(scope, receive, send_status)
        except asyncio.CancelledError:
            # uvicorn cancels what its graceful shutdown left running: answer 503 where nothing
            # was sent yet and end the request quietly (no traceback)
            log.info("%s: request cut off by the shutdown", path)
            if status is None:
                body = error_body(503, "the service is shutting down, retry later")
                await send_status({"type": "http.response.start", "status": 503, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                    (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
        except Exception:
            if status is None:  # the server error handler above answers it
                status = 500
            raise
        finally:
            if status is None:
                self.metrics.observe_disconnect(path)
            else:
                self.metrics.observe_request(path, status, time.perf_counter() - t0)


def check_headers(scope, limit: int) -> None:
    """Refuse a ``Content-Type`` other than ``application/json`` (415; none given is accepted)
    and a declared ``Content-Length`` over ``limit`` (413), before reading the body."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                size = int(value)
            except ValueError:
                raise HTTPError(400, "malformed Content-Length header") from None
            if size > limit:
                raise HTTPError(413, f"body of {size} bytes, at most {limit} are accepted")
        elif name == b"content-type" and value.split(b";", 1)[0].strip().lower() != b"application/json":
            raise HTTPError(415, f"Content-Type header {value.decode('latin-1')!r} is not supported: "
                                 "send application/json")


async def read_body(scope, receive, limit: int, timeout: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413), before reading it where the
    client declared its length (``Content-Length``), and a body that has not arrived ``timeout``
    seconds after the request started (408)."""
    check_headers(scope, limit)
    try:
        if _TIMEOUT is None:  # Python 3.10
            return await asyncio.wait_for(receive_body(receive, limit), timeout)
        async with _TIMEOUT(timeout):
            return await receive_body(receive, limit)
    except (TimeoutError, asyncio.TimeoutError):
        raise HTTPError(408, f"the request body did not arrive within {timeout:g} s") from None


async def receive_body(receive, limit: int) -> bytes:
    """The body's bytes from the ASGI ``receive`` (413 over ``limit``; 499 the client left)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(499, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """The JSON text nests arrays and objects deeper than ``limit`` (brackets inside strings do
    not count). Scans only a body holding more than ``limit`` opening brackets."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for c in body:
        if in_string:
            if escaped:
                escaped = False
            elif c == _BACKSLASH:
                escaped = True
            elif c == _QUOTE:
                in_string = False
        elif c == _QUOTE:
            in_string = True
        elif c in _OPEN:
            depth += 1
            if depth > limit:
                return True
        elif c in _CLOSE:
            depth -= 1
    return False


def decode_json(body: bytes):
    """The decoded body; 400 naming the problem for malformed or too deeply nested JSON."""
    if too_deep(body):
        raise HTTPError(400, f"the body is not valid JSON for a query: nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body)
    except RecursionError:
        raise HTTPError(400, "the body is not valid JSON for a query: nested too deeply") from None
    except ValueError as exc:
        raise HTTPError(400, f"the body is not valid JSON ({exc})") from None


def _whitespace_hint(value) -> str:
    """A note for an id that matched nothing and has surrounding whitespace (ids match exactly)."""
    if isinstance(value, str) and value != value.strip():
        return f" ({value!r} has surrounding whitespace: ids are matched exactly)"
    if isinstance(value, list) and any(isinstance(v, str) and v != v.strip() for v in value):
        bad = next(v for v in value if isinstance(v, str) and v != v.strip())
        return f" ({bad!r} has surrounding whitespace: ids are matched exactly)"
    return ""


def parse_query(payload, acc: Accelerator) -> tuple[int | list, int, bool, bool]:
    """A request body (decoded JSON) -> (checked query in internal indices: a user index or an
    item index list, k, exclude_seen, explain). Error messages name the field and its value."""
    if not isinstance(payload, dict):
        raise HTTPError(400, f"the body must be a JSON object, got {type(payload).__name__}")
    unknown = payload.keys() - _FIELDS
    if unknown:
        raise HTTPError(400, f"unknown field(s) {sorted(unknown)}: expected user or items (with types), k, "
                             "exclude_seen and explain")
    users = [f for f in ("user", "user_id") if f in payload]
    has_items = "items" in payload
    if len(users) + has_items != 1:
        raise HTTPError(400, "give exactly one of user (or user_id) and items")
    field = users[0] if users else "items"
    exclude = payload.get("exclude_seen", acc.seen_on_chip)
    if not isinstance(exclude, bool):
        raise HTTPError(400, f"exclude_seen must be true or false, got {type(exclude).__name__}")
    if acc.seen_on_chip and not exclude:
        raise HTTPError(422, "exclude_seen: false is not possible: this design drops each query's seen items "
                             "on chip (built with --exclude-seen)")
    explain = payload.get("explain", False)
    if not isinstance(explain, bool):
        raise HTTPError(400, f"explain must be true or false, got {type(explain).__name__}")
    if explain and not acc.emits_weights:
        raise HTTPError(422, "explain: this design emits no attention weights (an attention student built "
                             "with `fpgarec build --emit-weights` does)")
    if "types" in payload and not has_items:
        raise HTTPError(400, "types: only with items (a known user's types come from the history)")
    try:
        k = acc.check_k(payload.get("k"))
    except QueryTypeError as exc:
        raise HTTPError(400, f"k: {exc}") from None
    except QueryError as exc:
        raise HTTPError(422, f"k: {exc}") from None
    try:
        if users:
            return acc.user_query(payload[field]), k, exclude, explain
        query = acc.items_query(payload["items"])
    except UnknownUserError as exc:
        raise HTTPError(404, f"{field}: {exc}{_whitespace_hint(payload[field])}") from None
    except QueryTypeError as exc:
        raise HTTPError(400, f"{field}: {exc}") from None
    except QueryError as exc:
        raise HTTPError(422, f"{field}: {exc}{_whitespace_hint(payload[field])}") from None
    if "types" not in payload:
        return query, k, exclude, explain
    try:
        return ItemList(query, acc.sampler.check_types(payload["types"], len(query))), k, exclude, explain
    except QueryTypeError as exc:
        raise HTTPError(400, f"types: {exc}") from None
    except QueryError as exc:
        raise HTTPError(422, f"types: {exc}") from None


class RecommendEndpoint:
    """``POST /recommend`` as a plain ASGI application (the service's hot path: no Request or
    Response objects): read and check the query, queue it on the batcher, answer its row."""

    def __init__(self, acc: Accelerator, batcher: DynamicBatcher, max_body_bytes: int, read_timeout_s: float = 10.0):
        self.acc = acc
        self.batcher = batcher
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s
        self.encoder = AnswerEncoder(acc.ids)
        self.backend_label = f"attention weights emitted by the design (backend {acc.backend_name})"

    async def answer(self, scope, receive) -> tuple[int, bytes]:
        try:
            body = await read_body(scope, receive, self.max_body_bytes, self.read_timeout_s)
            query, k, exclude, explain = parse_query(decode_json(body), self.acc)
            if explain:
                return await self.explained(query, k, exclude)
            try:
                fut = self.batcher.submit(query)
            except QueueFull as exc:
                raise HTTPError(503, f"overloaded: {exc}, retry later") from None
            try:
                row = await fut
            except Exception as exc:
                log.warning("request failed in its batch: %r", exc)
                raise HTTPError(500, "the accelerator failed on this batch") from None
        except HTTPError as err:
            return err.status, error_body(err.status, str(err))
        return 200, self.encoder.body(first_unseen(row, self.acc.seen(query), k) if exclude else row[:k], k)

    async def explained(self, query, k: int, exclude: bool) -> tuple[int, bytes]:
        """One query run with its attention weights (outside the batcher, in a worker thread)."""
        try:
            ex = await asyncio.get_running_loop().run_in_executor(None, self.acc.explain_queries_indices, [query])
        except Exception as exc:
            log.warning("explained request failed: %r", exc)
            raise HTTPError(500, "the accelerator failed on this query") from None
        row = ex["top"][0]
        body = self.encoder.body(first_unseen(row, self.acc.seen(query), k) if exclude else row[:k], k)
        return 200, body[:-1] + b',"explanation":' + explanation_json(self.acc, ex, self.backend_label) + b"}"

    async def __call__(self, scope, receive, send) -> None:
        status, body = await self.answer(scope, receive)
        if status == 499:  # nobody to answer
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 408:  # the rest of the body may still come: end the connection
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def create_app(acc: Accelerator, cfg: ServeConfig) -> Starlette:
    """The Starlette application serving ``acc`` (started and stopped with the app's lifespan;
    the accelerator is closed at shutdown)."""
    metrics = Metrics(cfg.max_batch, {"design": acc.bundle.manifest.get("design", ""), "backend": acc.backend_name})
    batcher = DynamicBatcher(acc.recommend_queries_indices, cfg.max_batch, cfg.max_wait_ms / 1000.0, cfg.max_queue,
                             in_thread=cfg.backend_thread, on_batch=metrics.observe_batch)
    health = json.dumps({
        "status": "ok", "design": acc.bundle.manifest.get("design"), "backend": acc.backend_name,
        "k": acc.k, "top_k": acc.top_k, "n_items": acc.n_items, "known_users": acc.sampler.n_users,
        "ids": acc.ids.kind, "titles": acc.ids.titles is not None,
    }).encode()
    if acc.ids.internal:
        log.warning("no id maps (%s): users and items are named by internal indices; write a history file "
                    "with the data set's ids: fpgarec serve BUNDLE --history DATA --save-history FILE", acc.ids.source)

    async def healthz(request: Request) -> Response:
        return Response(health, media_type=JSON)

    metrics.track_queue(lambda: batcher.pending)

    async def metrics_text(request: Request) -> Response:
        return Response(metrics.render(), headers={"content-type": METRICS_CONTENT_TYPE})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(500, "internal error")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        # everything built so far lives as long as the service: keep it out of the cyclic
        # garbage collector's full passes, which otherwise stall every request for ~10 ms
        gc.collect()
        gc.freeze()
        log.info("serving design %s on %s (max batch %d, wait %.2f ms)", acc.bundle.manifest.get("design"),
                 acc.backend_name, cfg.max_batch, cfg.max_wait_ms)
        try:
            yield
        finally:
            await batcher.stop()
            acc.close()

    app = Starlette(
        routes=[
            Route("/recommend", RecommendEndpoint(acc, batcher, cfg.max_body_bytes, cfg.read_timeout_s), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
        ],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.batcher = batcher
    app.state.accelerator = acc
    return app


def open_accelerator(cfg: ServeConfig) -> Accelerator:
    """The accelerator a configuration describes (bundle, backend, history source)."""
    backend = cfg.backend
    if backend == "finn":  # FINN's execution: the runtime is numpy-only, so it is handed in
        from fpgarec.compile.verify import FinnServingBackend

        backend = FinnServingBackend(cfg.bundle)
    return Accelerator(cfg.bundle, backend, history=load_history(cfg.history), max_items=cfg.max_items)


def limit_blas_threads(threads: int | None):
    """Limit the BLAS library's threads in this process (threadpoolctl, where installed).
    Returns the limiter (keep it alive) or None."""
    if threads is None:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.info("threadpoolctl is not installed: BLAS threads left as they are")
        return None
    return threadpool_limits(limits=int(threads), user_api="blas")


def build_server(cfg: ServeConfig, acc: Accelerator | None = None):
    """A ``uvicorn.Server`` for the service (not started). One worker, h11, no access log
    (requests are counted in /metrics); uvicorn logs through the standard logging module.
    Sets the process's BLAS threads to ``cfg.blas_threads``."""
    import uvicorn

    from fpgarec.serve.protocol import CoalescingH11Protocol, TimedH11Protocol

    limit_blas_threads(cfg.blas_threads)
    # the request line and headers get the body's time limit (408 past it)
    http = functools.partial(CoalescingH11Protocol if cfg.coalesce_writes else TimedH11Protocol,
                             header_timeout_s=cfg.read_timeout_s)
    app = create_app(acc if acc is not None else open_accelerator(cfg), cfg)
    config = uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, access_log=False,
                            log_config=None, lifespan="on", loop="asyncio", http=http, workers=1,
                            server_header=False, timeout_keep_alive=30, backlog=2048,
                            timeout_graceful_shutdown=cfg.shutdown_timeout_s)
    return uvicorn.Server(config)


def serve(cfg: ServeConfig) -> None:
    """Run the service until SIGINT/SIGTERM."""
    server = build_server(cfg)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding to %s: the service has no authentication, expose it behind a proxy", cfg.host)
    log.info("listening on http://%s:%d", cfg.host, cfg.port)
    server.run()
