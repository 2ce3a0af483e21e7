"""uvicorn's h11 protocol with coalesced writes: one ``send`` system call per response.

uvicorn writes a response's status line and headers, then its body, as separate
``transport.write`` calls; on an idle socket each is a ``send`` system call. Where system calls
are expensive (a sandboxed or virtualised kernel: about 50-80 us per loopback ``send`` on the
machine the load test was tuned on, a third of a request's CPU time) the service halves them by
buffering the writes of one event-loop iteration and flushing them together at its end.
Semantics are unchanged: data is written in order, before the transport closes, within the same
loop iteration; flow control and everything else go to the real transport.

Built on uvicorn's ``H11Protocol`` (pinned in requirements/serve.txt); switched off with
``ServeConfig.coalesce_writes = False``.
"""

from __future__ import annotations

import asyncio

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


class CoalescingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
