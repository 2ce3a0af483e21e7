"""uvicorn's h11 protocol with a time limit on request headers and coalesced writes: one
``send`` system call per response.

uvicorn's h11 protocol has no limit on the time a request's line and headers take to arrive: a
client that sends part of them and then nothing holds its connection open forever (the body has
its limit in the application, ``fpgarec.serve.app.read_body``). :class:`TimedH11Protocol` gives
the headers ``header_timeout_s`` (``ServeConfig.read_timeout_s``), counted from the connection's
opening for its first request and from the first byte of each later one (the wait between
requests is uvicorn's keep-alive timeout): past it, a connection that received part of a request
is answered 408 and closed, one that received nothing is closed without an answer.

uvicorn writes a response's status line and headers, then its body, as separate
``transport.write`` calls; on an idle socket each is a ``send`` system call. Where system calls
are expensive (a sandboxed or virtualised kernel: about 50-80 us per loopback ``send`` on the
machine the load test was tuned on, a third of a request's CPU time) the service halves them by
buffering the writes of one event-loop iteration and flushing them together at its end.
Semantics are unchanged: data is written in order, before the transport closes, within the same
loop iteration; flow control and everything else go to the real transport.

Built on uvicorn's ``H11Protocol`` (pinned in requirements/serve.txt); the coalescing is switched
off with ``ServeConfig.coalesce_writes = False``.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class CoalescingTransport:
    """An asyncio transport whose writes of one loop iteration become one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._chunks:
            self._loop.call_soon(self.flush)
        self._chunks.append(data)

    def writelines(self, lines) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Hand the buffered bytes to the real transport (one write)."""
        if self._chunks:
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._chunks))

    def __getattr__(self, name):  # everything else: the real transport
        return getattr(self._transport, name)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a time limit on a request's line and headers (408 past it).

    Built by uvicorn with its own arguments; pass the limit with ``functools.partial(cls,
    header_timeout_s=...)`` (None: no limit, uvicorn's behaviour)."""

    def __init__(self, *args, header_timeout_s: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        if self.header_timeout_s is not None and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _waiting_for_headers(self) -> bool:
        """A request has begun (or the connection is new) and its headers are not complete."""
        return self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._arm_header_timer()  # the first byte of a request on a kept-alive connection
        super().data_received(data)
        if not self._waiting_for_headers():
            self._cancel_header_timer()  # the headers are in: the body's limit is the app's

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request may have been pipelined behind this one, its headers incomplete
        if not self.transport.is_closing() and self._waiting_for_headers() and self.conn.trailing_data[0]:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._waiting_for_headers():
            return
        if not self.conn.trailing_data[0]:  # nothing received: close without an answer
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()
            return
        message = f"the request headers did not arrive within {self.header_timeout_s:g} s"
        body = json.dumps({"error": message, "status": 408}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=408, headers=headers, reason=b"Request Timeout"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


class CoalescingH11Protocol(TimedH11Protocol):
    """:class:`TimedH11Protocol` over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
