"""A small HTTP/1.1 server on asyncio, just enough for the MCP transports.

It reads requests (``Content-Length`` or chunked bodies, keep-alive, one request at a time per
connection), and writes plain responses or a chunked ``text/event-stream``. A response can be
written from any callback, at any later time: the connection waits for it before it reads the
next request. What it writes is never queued here beyond the socket's own buffer, so the code
that writes can see a client that stopped reading (:meth:`Connection.unsent`) and drop it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import unquote

#: The most bytes a request's line and headers may take.
MAX_HEAD = 64 * 1024

REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _BUSY = range(6)


class Request:
    """One parsed request: the method, the decoded path, the raw query, lower-case headers."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive", "route")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = b""
        self.keep_alive = keep_alive
        #: Set by the handler from the head, for its own use.
        self.route = ""


#: The request of a connection between requests: a connection always has one, so no use of it
#: waits on a check for None.
_NO_REQUEST = Request("", "", "", {}, False)


class Handler:
    """What a :class:`Server` calls; both methods run in the event loop and must not block."""

    def head(self, conn: Connection, request: Request) -> bool:
        """Called once the headers are in: answer now and return False, or True to read the body."""
        raise NotImplementedError

    def request(self, conn: Connection, request: Request) -> None:
        """Called with the whole body read; answer now or later through ``conn``."""
        raise NotImplementedError


class Server:
    """Accepts connections for a :class:`Handler`; ``max_body`` bounds every request body."""

    def __init__(self, handler: Handler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self.connections: set[Connection] = set()

    def protocol(self) -> Connection:
        return Connection(self)

    def sweep(self, idle: float) -> None:
        """Close connections that have waited ``idle`` seconds for a next request."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.state == _HEAD and not conn.buffer and now - conn.last_active > idle:
                conn.close()


class Connection(asyncio.Protocol):
    """One client connection: parses requests and writes responses."""

    #: Set by :meth:`connection_made`, which asyncio calls before any other method.
    transport: asyncio.Transport

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = bytearray()
        self.scanned = 0
        self.state = _HEAD
        #: The request being read or answered (:data:`_NO_REQUEST` between requests).
        self.request = _NO_REQUEST
        self.remaining = 0
        self.parts: list[bytes] = []
        self.size = 0
        self.keep_alive = True
        self.streaming = False
        self.closed = False
        self.last_active = time.monotonic()
        #: Called once when the connection goes away (set by whoever holds it open).
        self.on_close: Callable[[], None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's stubs give every protocol's connection_made a BaseTransport; a stream
        # protocol's (this one, served by loop.create_server) is always a Transport.
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_active = time.monotonic()
        if self.state == _BUSY:
            # A client may send its next request early; more than one is held back.
            if len(self.buffer) > MAX_HEAD + self.server.max_body:
                self.transport.pause_reading()
            return
        self._parse()

    def eof_received(self) -> bool:
        # A half-closed connection cannot carry the rest of a stream: end it.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()

    # -- requests -------------------------------------------------------------------------

    def _parse(self) -> None:
        while not self.closed:
            state = self.state
            if state == _HEAD:
                end = self.buffer.find(b"\r\n\r\n", max(0, self.scanned - 3))
                if end < 0:
                    self.scanned = len(self.buffer)
                    if self.scanned > MAX_HEAD:
                        self.fail(431, "Request header fields too large")
                    return
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                self.scanned = 0
                if not self._start(head):
                    return
            elif state == _BODY:
                if len(self.buffer) < self.remaining:
                    return
                self._body(bytes(self.buffer[: self.remaining]))
                del self.buffer[: self.remaining]
            elif state == _CHUNK_SIZE:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    if len(self.buffer) > 1024:
                        self.fail(400, "Bad chunk size")
                    return
                try:
                    size = int(bytes(self.buffer[:end]).split(b";")[0].strip(), 16)
                except ValueError:
                    self.fail(400, "Bad chunk size")
                    return
                del self.buffer[: end + 2]
                if size < 0 or self.size + size > self.server.max_body:
                    self.fail(413, "Request body too large")
                    return
                self.remaining = size
                self.state = _CHUNK_DATA if size else _TRAILER
            elif state == _CHUNK_DATA:
                if len(self.buffer) < self.remaining + 2:
                    return
                if self.buffer[self.remaining : self.remaining + 2] != b"\r\n":
                    self.fail(400, "Bad chunk")
                    return
                self.parts.append(bytes(self.buffer[: self.remaining]))
                self.size += self.remaining
                del self.buffer[: self.remaining + 2]
                self.state = _CHUNK_SIZE
            elif state == _TRAILER:
                if self.buffer[:2] == b"\r\n":
                    del self.buffer[:2]
                else:
                    end = self.buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(self.buffer) > MAX_HEAD:
                            self.fail(431, "Trailers too large")
                        return
                    del self.buffer[: end + 4]
                body, self.parts, self.size = b"".join(self.parts), [], 0
                self._body(body)
            else:
                return

    def _start(self, head: bytes) -> bool:
        """Parse a request head; False when it was answered already (or is to be ignored)."""
        if not head.strip():  # stray blank lines between requests are allowed
            return True
        try:
            text = head.decode("latin-1")
            line, *header_lines = text.split("\r\n")
            method, target, version = line.split(" ")
        except ValueError:
            self.fail(400, "Bad request line")
            return False
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            self.fail(505, "HTTP version not supported")
            return False
        headers: dict[str, str] = {}
        for header in header_lines:
            name, colon, value = header.partition(":")
            if not colon or not name or name != name.strip():
                self.fail(400, "Bad header line")
                return False
            name = name.lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        path, _, query = target.partition("?")
        request = Request(method, unquote(path), query, headers, keep_alive)
        self.keep_alive = keep_alive
        self.request = request
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if chunked and length is not None:
            self.fail(400, "Both Content-Length and chunked encoding")
            return False
        try:
            self.remaining = int(length) if length is not None else 0
        except ValueError:
            self.fail(400, "Bad Content-Length")
            return False
        if self.remaining < 0:
            self.fail(400, "Bad Content-Length")
            return False
        self.state = _BUSY
        if not self.server.handler.head(self, request):
            # Answered from the head alone: the body is not read, so the connection ends.
            self.keep_alive = False
            return False
        if self.remaining > self.server.max_body:
            self.fail(413, "Request body too large")
            return False
        if headers.get("expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it
        self.state = _CHUNK_SIZE if chunked else _BODY
        return True

    def _body(self, body: bytes) -> None:
        request = self.request
        request.body = body
        self.state = _BUSY
        self.server.handler.request(self, request)

    def fail(self, status: int, text: str) -> None:
        """Answer a request that cannot be read, and end the connection."""
        self.keep_alive = False
        self.state = _BUSY
        self.respond(status, text.encode(), "text/plain; charset=utf-8")

    # -- responses ------------------------------------------------------------------------

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if not self.keep_alive:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def respond(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Write a whole response; the connection then reads the next request."""
        if self.closed:
            return
        fields = list(headers or ())
        if content_type:
            fields.append(("content-type", content_type))
        fields.append(("content-length", str(len(body))))
        self.transport.write(self._head(status, fields) + body)
        self._done()

    def start_stream(self, headers: list[tuple[str, str]] | None = None) -> None:
        """Start a ``200`` event stream; :meth:`send` writes to it, :meth:`end_stream` ends it."""
        if self.closed:
            return
        fields = [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache, no-transform"),
            ("x-accel-buffering", "no"),
            ("transfer-encoding", "chunked"),
            *(headers or ()),
        ]
        self.streaming = True
        self.transport.write(self._head(200, fields))

    def send(self, data: bytes) -> None:
        """Write ``data`` as one chunk of the stream."""
        if not self.closed:
            self.transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    def end_stream(self) -> None:
        if self.closed or not self.streaming:
            return
        self.streaming = False
        self.on_close = None
        self.transport.write(b"0\r\n\r\n")
        self._done()

    def unsent(self) -> int:
        """Bytes written that the client has not taken yet."""
        return 0 if self.closed else self.transport.get_write_buffer_size()

    def close(self) -> None:
        """Close once everything written has been sent."""
        if not self.closed:
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping whatever is unsent."""
        if not self.closed:
            self.closed = True
            self.on_close = None
            self.transport.abort()

    def _done(self) -> None:
        self.request = _NO_REQUEST
        self.last_active = time.monotonic()
        if not self.keep_alive:
            self.transport.close()
            return
        self.state = _HEAD
        self.transport.resume_reading()
        if self.buffer:
            asyncio.get_running_loop().call_soon(self._parse)
