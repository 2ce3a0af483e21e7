"""The service under a hostile-but-fair client (issue 16): deeply nested JSON, foreign content
types, clients that disconnect or never finish their headers or body, a shutdown with requests
in flight, ids with surrounding whitespace. Each gets a one-line JSON answer (or a quiet close),
is counted for what it is in /metrics, and logs no traceback."""

from __future__ import annotations

import json
import logging
import re
import socket
import time

import httpx
import pytest

from fpgarec.serve.config import ServeConfig
from fpgarec.serve.metrics import parse_text


def user(u: int) -> str:
    return f"customer_{u}"


def item(i: int) -> str:
    return f"sku-{i:04d}"


def tracebacks(caplog) -> list[str]:
    """Log records that carry a traceback (or a CancelledError)."""
    return [r.getMessage() for r in caplog.records if r.exc_info or "CancelledError" in r.getMessage()]


def partial_request(url: str, declared: int = 100, sent: bytes = b'{"user": ') -> socket.socket:
    """A connection that sent a POST's headers and the start of its body, and then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (declared, sent))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def metrics(url: str) -> dict[str, float]:
    return parse_text(httpx.get(url + "/metrics").text)


@pytest.mark.parametrize("body", [
    b'{"items": ' + b"[" * 1100 + b"]" * 1100 + b"}",   # 2.2 KB, 1,100 deep
    b"[" * 1100 + b"]" * 1100,
    b'{"user": ' + b'{"a": ' * 500 + b"1" + b"}" * 501,
])
def test_deeply_nested_json_gets_400_and_logs_no_traceback(service, caplog, body):
    caplog.set_level(logging.INFO)
    with httpx.Client(base_url=service.url) as c:
        r = c.post("/recommend", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        err = r.json()
        assert err["status"] == 400 and "nested" in err["error"] and "\n" not in err["error"]
        assert len(r.content) < 200
        # nested but within the limit: an ordinary 4xx about the value, not a 500
        r = c.post("/recommend", content=b'{"items": ' + b"[" * 30 + b"]" * 30 + b"}")
        assert 400 <= r.status_code < 500, r.text
        assert c.post("/recommend", json={"user": user(1)}).status_code == 200
    assert tracebacks(caplog) == []


def test_a_content_type_other_than_json_gets_415_naming_the_header(service):
    body = json.dumps({"user": user(2), "k": 3}).encode()
    with httpx.Client(base_url=service.url) as c:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
            r = c.post("/recommend", content=body, headers={"content-type": ctype})
            assert r.status_code == 415, (ctype, r.text)
            assert r.json()["status"] == 415 and "Content-Type" in r.json()["error"] and ctype in r.json()["error"]
        for ctype in ("application/json", "Application/JSON; charset=utf-8"):
            assert c.post("/recommend", content=body, headers={"content-type": ctype}).status_code == 200
        r = c.post("/recommend", content=body)  # no Content-Type at all: accepted
        assert "content-type" not in r.request.headers and r.status_code == 200


def test_client_disconnects_are_counted_apart_and_never_as_500(service):
    before = metrics(service.url)
    for _ in range(5):
        partial_request(service.url).close()
    key = 'fpgarec_client_disconnects_total{path="/recommend"}'
    deadline = time.monotonic() + 10
    while (after := metrics(service.url)).get(key, 0) - before.get(key, 0) < 5:
        assert time.monotonic() < deadline, after.get(key)
        time.sleep(0.05)
    assert after[key] - before.get(key, 0) == 5
    status_500 = 'fpgarec_requests_total{path="/recommend",status="500"}'
    assert after.get(status_500, 0) == before.get(status_500, 0)
    assert after['fpgarec_request_errors_total{kind="server"}'] == before['fpgarec_request_errors_total{kind="server"}']


def test_an_unfinished_body_gets_408_and_the_connection_is_closed(demo_bundle, history_file, start_service, caplog):
    caplog.set_level(logging.INFO)
    cfg = ServeConfig(bundle=demo_bundle, backend="emulation", history=str(history_file), port=0,
                      read_timeout_s=0.5)
    running = start_service(cfg)
    t0 = time.monotonic()
    with partial_request(running.url) as sock:
        answer = read_all(sock)  # returns once the server closes the connection
    assert time.monotonic() - t0 < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    err = json.loads(body)
    assert err["status"] == 408 and "did not arrive within 0.5 s" in err["error"]
    m = metrics(running.url)
    assert m['fpgarec_requests_total{path="/recommend",status="408"}'] == 1
    assert httpx.post(running.url + "/recommend", json={"user": user(1)}).status_code == 200
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("coalesce_writes", [True, False])
def test_unfinished_headers_get_408_and_a_silent_connection_is_closed(demo_bundle, history_file, start_service,
                                                                      caplog, coalesce_writes):
    """Headers that never finish (on a new connection, on a kept-alive one, or pipelined behind
    a complete request) get 408 and the connection closed within ``read_timeout_s``; a
    connection on which nothing at all arrives is closed without an answer."""
    caplog.set_level(logging.INFO)
    cfg = ServeConfig(bundle=demo_bundle, backend="emulation", history=str(history_file), port=0,
                      read_timeout_s=0.5, coalesce_writes=coalesce_writes)
    running = start_service(cfg)
    host, port = running.url.removeprefix("http://").split(":")
    head = b"POST /recommend HTTP/1.1\r\nHost: x\r\n"  # no blank line: the headers never end
    complete = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for first, pause, rest, answers in [
        (head, 0, b"", [b"408"]),                  # a new connection
        (complete, 0.2, head, [b"200", b"408"]),   # a kept-alive connection
        (complete + head, 0, b"", [b"200", b"408"]),  # pipelined
        (b"", 0, b"", []),                          # nothing at all: closed quietly
    ]:
        t0 = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(first)
            time.sleep(pause)
            sock.sendall(rest)
            answer = read_all(sock)  # returns once the server closes the connection
        assert time.monotonic() - t0 < 3, answer
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
        assert statuses == answers, answer
        if answers:
            headers, _, body = answer.rpartition(b"\r\n\r\n")
            assert b"connection: close" in headers.lower()
            assert json.loads(body) == {"error": "the request headers did not arrive within 0.5 s", "status": 408}
    assert httpx.post(running.url + "/recommend", json={"user": user(1)}).status_code == 200
    assert tracebacks(caplog) == []


def test_shutdown_with_requests_in_flight_logs_no_cancelled_error(demo_bundle, history_file, start_service,
                                                                   caplog):
    """Requests still reading their body when the graceful shutdown runs out are answered 503
    and closed; no CancelledError traceback is logged."""
    caplog.set_level(logging.INFO)
    cfg = ServeConfig(bundle=demo_bundle, backend="emulation", history=str(history_file), port=0,
                      read_timeout_s=60, shutdown_timeout_s=0.3)
    running = start_service(cfg)
    socks = [partial_request(running.url) for _ in range(3)]
    time.sleep(0.3)  # the server has started all three requests
    running.stop()
    assert not running.thread.is_alive()
    for sock in socks:
        with sock:
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 503"), answer
    assert tracebacks(caplog) == []


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"user": user(3) + " "}, 404, "user: "),
    ({"user_id": " " + user(3)}, 404, "user_id: "),
    ({"items": [item(1), item(2) + "\t"]}, 422, "items: "),
])
def test_an_id_with_surrounding_whitespace_gets_a_4xx_naming_the_field(service, body, status, field):
    r = httpx.post(service.url + "/recommend", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err.startswith(field) and "surrounding whitespace" in err, err
