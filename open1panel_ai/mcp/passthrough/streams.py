"""How messages reach a client session over HTTP: Streamable HTTP and the legacy SSE transport.

**Streamable HTTP.** A POST that carries requests is an :class:`Exchange`. It answers with
plain JSON when the answer is all there is, and turns into an event stream as soon as
anything else comes first for those requests (progress, a log line, the server's own request),
so a simple call costs no more than JSON, and nothing is ever held back. Messages that belong
to no request in flight go to the session's GET stream. Every event has an id,
``<stream>-<n>``, and the session keeps its last events (a bounded number and size) so a client
whose stream broke can resume it from ``Last-Event-ID``; messages that came while no GET stream
was open wait there too, and are sent when one opens.

**Legacy SSE.** ``GET /sse`` is one stream for everything, announced with an ``endpoint``
event; messages are POSTed to ``/messages/?session_id=…``.

Whatever a transport writes goes straight to the socket; a client whose socket holds more
than the bridge's limit unsent has stopped reading, and its session is dropped (see
:meth:`open1panel_ai.mcp.passthrough.app.Bridge.check_slow`).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from open1panel_ai.mcp.passthrough.relay import (
    INTERNAL_ERROR,
    REQUEST_CANCELLED,
    ClientSession,
    Upstream,
    error_message,
    is_at_least,
)

if TYPE_CHECKING:
    from open1panel_ai.mcp.passthrough.app import Bridge
    from open1panel_ai.mcp.passthrough.httpd import Connection

log = logging.getLogger("open1panel_ai.mcp.passthrough")

_NOT_FINAL = object()


def sse_event(event_id: str | None, data: bytes) -> bytes:
    if event_id is None:
        return b"event: message\ndata: %b\n\n" % data
    return b"id: %b\nevent: message\ndata: %b\n\n" % (event_id.encode(), data)


class Exchange:
    """One POST with requests in it, waiting for their answers (see the module's docstring)."""

    __slots__ = ("session", "conn", "waiting", "batch", "can_stream", "mode", "collected", "key", "open")

    def __init__(
        self, session: StreamableSession, conn: Connection, ids: list[Any], batch: bool, can_stream: bool
    ) -> None:
        self.session = session
        self.conn: Connection | None = conn
        self.waiting = set(ids)
        self.batch = batch
        self.can_stream = can_stream
        self.mode: str | None = None
        self.collected: list[bytes] = []
        session.counter += 1
        self.key = f"p{session.counter}"
        self.open = True
        for request_id in ids:
            session.exchanges[request_id] = self
        session.streams[self.key] = self
        conn.on_close = self._lost

    def add(self, data: bytes, final_id: Any = _NOT_FINAL) -> None:
        """Send ``data``; ``final_id`` names the request it answers, if it is an answer."""
        if not self.open:
            return
        final = final_id is not _NOT_FINAL
        if final:
            self.waiting.discard(final_id)
        done = final and not self.waiting
        if self.mode is None:
            if final and (self.batch or not self.can_stream or done):
                self.collected.append(data)
                if done:
                    self._json()
                return
            self._start_stream()
        self._event(data)
        if done:
            self._finish()

    def _json(self) -> None:
        self.mode = "json"
        body = self.collected[0] if not self.batch else b"[" + b",".join(self.collected) + b"]"
        self.collected = []
        if self.conn is not None:
            self.conn.on_close = None
            self.conn.respond(200, body, "application/json", self.session.headers())
        self._close()

    def _start_stream(self) -> None:
        self.mode = "sse"
        session = self.session
        if self.conn is not None:
            self.conn.start_stream(session.headers())
            if is_at_least(session.protocol_version, "2025-11-25"):
                # The priming event gives the client an id to resume from before anything else.
                self.conn.send(b"id: %b-0\ndata: \n\n" % self.key.encode())
        collected, self.collected = self.collected, []
        for data in collected:
            self._event(data)

    def _event(self, data: bytes) -> None:
        session = self.session
        seq = session.next_seq(self.key)
        event = sse_event(f"{self.key}-{seq}", data)
        session.store(self.key, seq, event)
        if self.conn is not None:
            self.conn.send(event)
            session.bridge.check_slow(session, self.conn)

    def _finish(self) -> None:
        if self.conn is not None:
            self.conn.end_stream()
        self._close()

    def _close(self) -> None:
        self.open = False
        self.conn = None
        self.session.streams.pop(self.key, None)

    def _lost(self) -> None:
        """The client went away while waiting: later events are kept for it to resume."""
        self.conn = None

    def resume(self, conn: Connection) -> None:
        """Carry on this exchange's stream on ``conn`` (a GET with ``Last-Event-ID``)."""
        if self.conn is not None and self.conn is not conn:
            old, self.conn = self.conn, None
            old.on_close = None
            old.close()
        self.mode = "sse"
        self.conn = conn
        conn.on_close = self._lost

    def end(self, text: str) -> None:
        """Answer every request still waiting with an error (the session is ending)."""
        for request_id in list(self.waiting):
            self.session.exchanges.pop(request_id, None)
            self.add(error_message(request_id, INTERNAL_ERROR, text), request_id)


class StreamableSession(ClientSession):
    """A Streamable HTTP session (``Mcp-Session-Id``)."""

    transport = "streamable-http"
    #: Registered with its upstream right after it is made: every session the bridge can
    #: find by its id has one.
    upstream: Upstream

    def __init__(self, bridge: Bridge, session_id: str) -> None:
        super().__init__(session_id)
        self.bridge = bridge
        #: The client's request id → the exchange waiting for its answer.
        self.exchanges: dict[Any, Exchange] = {}
        #: Open POST streams by key.
        self.streams: dict[str, Exchange] = {}
        self.counter = 0
        self.get_conn: Connection | None = None
        self.events: deque[tuple[str, int, bytes]] = deque()
        self.event_bytes = 0
        self.seqs: dict[str, int] = {}
        #: The last GET-stream event written to a connection.
        self.get_sent = 0
        self.lost = 0
        self._headers = [("mcp-session-id", session_id)]

    def headers(self) -> list[tuple[str, str]]:
        return self._headers

    @property
    def busy(self) -> bool:
        return bool(self.streams) or self.get_conn is not None

    # -- ClientSession --------------------------------------------------------------------

    def respond(self, client_id: Any, data: bytes) -> None:
        exchange = self.exchanges.pop(client_id, None)
        if exchange is None:
            log.debug("session %s: no one waits for the answer to %r", self.id[:8], client_id)
            return
        exchange.add(data, client_id)

    def push(self, data: bytes, related: Any = None) -> None:
        exchange = self.exchanges.get(related) if related is not None else None
        if exchange is not None and exchange.can_stream and exchange.open:
            exchange.add(data)
        else:
            self.push_standalone(data)

    def cancelled(self, client_id: Any) -> None:
        exchange = self.exchanges.pop(client_id, None)
        if exchange is not None:
            exchange.add(error_message(client_id, REQUEST_CANCELLED, "Request cancelled"), client_id)

    # -- the GET stream and the event buffer ----------------------------------------------

    def next_seq(self, key: str) -> int:
        seq = self.seqs.get(key, 0) + 1
        self.seqs[key] = seq
        return seq

    def store(self, key: str, seq: int, event: bytes) -> None:
        """Keep an event for resumption, within the bridge's bounds (oldest out first)."""
        events = self.events
        events.append((key, seq, event))
        self.event_bytes += len(event)
        limit, size_limit = self.bridge.event_limit, self.bridge.event_bytes_limit
        while len(events) > limit or (self.event_bytes > size_limit and len(events) > 1):
            old_key, old_seq, old = events.popleft()
            self.event_bytes -= len(old)
            if old_key == "g" and old_seq > self.get_sent:
                self.lost += 1
                if self.lost == 1:
                    log.warning(
                        "session %s: messages for its GET stream are being dropped: none is open "
                        "and the %d kept events are full",
                        self.id[:8],
                        limit,
                    )

    def push_standalone(self, data: bytes) -> None:
        """Send on the GET stream, or keep until one opens."""
        seq = self.next_seq("g")
        event = sse_event(f"g-{seq}", data)
        self.store("g", seq, event)
        conn = self.get_conn
        if conn is not None:
            conn.send(event)
            self.get_sent = seq
            self.bridge.check_slow(self, conn)

    def open_get(self, conn: Connection) -> None:
        """A fresh GET stream: everything not yet sent on one comes first."""
        conn.start_stream(self.headers())
        if is_at_least(self.protocol_version, "2025-11-25"):
            conn.send(b"id: g-%d\ndata: \n\n" % self.get_sent)
        self._attach_get(conn)
        for key, seq, event in list(self.events):
            if key == "g" and seq > self.get_sent:
                conn.send(event)
                self.get_sent = seq
        self.lost = 0

    def _attach_get(self, conn: Connection) -> None:
        if self.get_conn is not None and self.get_conn is not conn:
            old, self.get_conn = self.get_conn, None
            old.on_close = None
            old.close()
        self.get_conn = conn

        def lost() -> None:
            if self.get_conn is conn:
                self.get_conn = None

        conn.on_close = lost

    def resume(self, conn: Connection, last_event_id: str) -> bool:
        """Replay what came after ``last_event_id`` on ``conn`` and carry on that stream there;
        False when those events are no longer kept."""
        key, _, number = last_event_id.rpartition("-")
        try:
            after = int(number)
        except ValueError:
            return False
        exchange = self.streams.get(key)
        kept = [(seq, event) for k, seq, event in self.events if k == key and seq > after]
        if key != "g" and exchange is None and not kept:
            return False
        conn.start_stream(self.headers())
        if key == "g":
            self._attach_get(conn)
        for seq, event in kept:
            conn.send(event)
            if key == "g":
                self.get_sent = max(self.get_sent, seq)
        if key == "g":
            for k, seq, event in list(self.events):  # and what never went out at all
                if k == "g" and seq > max(after, self.get_sent):
                    conn.send(event)
                    self.get_sent = seq
        elif exchange is not None:
            exchange.resume(conn)
        else:
            conn.end_stream()  # that stream had ended: all of it has been replayed
        return True

    def close_streams(self, text: str) -> None:
        for exchange in list(self.streams.values()):
            exchange.end(text)
        self.exchanges.clear()
        if self.get_conn is not None:
            conn, self.get_conn = self.get_conn, None
            conn.on_close = None
            conn.end_stream()
            conn.close()
        self.events.clear()
        self.event_bytes = 0

    def ping(self) -> None:
        """A comment on every open stream, so proxies keep them and dead peers show."""
        for conn in {self.get_conn, *(e.conn for e in self.streams.values() if e.mode == "sse")}:
            if conn is not None and conn.streaming:
                conn.send(b": ping\n\n")


class SseSession(ClientSession):
    """A legacy HTTP+SSE session: one stream (``GET /sse``) carries everything to the client."""

    transport = "sse"

    def __init__(self, bridge: Bridge, session_id: str, conn: Connection) -> None:
        super().__init__(session_id)
        self.bridge = bridge
        self.conn = conn

    @property
    def busy(self) -> bool:
        return not self.conn.closed

    def respond(self, client_id: Any, data: bytes) -> None:
        self._send(data)

    def push(self, data: bytes, related: Any = None) -> None:
        self._send(data)

    def _send(self, data: bytes) -> None:
        self.conn.send(sse_event(None, data))
        self.bridge.check_slow(self, self.conn)

    def close_streams(self, text: str) -> None:
        self.conn.on_close = None
        self.conn.end_stream()
        self.conn.close()

    def ping(self) -> None:
        if self.conn.streaming:
            self.conn.send(b": ping\n\n")
