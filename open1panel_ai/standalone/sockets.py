"""Who may hold a place on the panel's Socket.IO server, and for how long.

Credentials are checked when a client joins a Socket.IO namespace (``/ai``), not when it opens
its Engine.IO session; yet a session takes memory at once, and two kinds of request hold one of
the worker's request threads for as long as they last: a WebSocket (its whole life) and a
long-poll (a polling ``GET`` that waits for packets, up to ``ping_interval + ping_timeout``).
Without bounds, anyone who can reach the port could take every thread and leave pages, the API
and ``/healthz`` waiting. So:

- :class:`SocketGate` lets at most ``limit`` WebSockets and long-polls be in flight (three
  quarters of the threads: a quarter always serves HTTP); at most half of those places, and at
  most that many sessions, go to clients that have not signed in, so signed-in clients always
  find room; and one session gets one long-poll and one WebSocket at a time.
- :class:`SignInDeadline` closes every session that has not joined a namespace in time, without
  waiting for a client that may never come back, and the connections of browser sessions that
  were signed out.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from simple_websocket import ConnectionClosed

if TYPE_CHECKING:  # pragma: no cover - typing only
    import engineio
    import socketio
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

#: Where Flask-SocketIO serves Engine.IO.
ENGINEIO_PREFIX = "/socket.io/"
#: The WSGI environ key under which the gate numbers the requests it holds. Flask-SocketIO
#: keeps a copy of the environ of the request that opened a session, with this key in it.
REQUEST_KEY = "open1panel_ai.socket_request"


def websocket_limit(threads: int) -> int:
    """How many WebSockets and long-polls a worker holds at once: three quarters of its
    threads, so a quarter always serves pages, API calls and ``/healthz``."""
    return max(1, threads - threads // 4)


def unsigned_limit(threads: int) -> int:
    """How many of those places, and how many Engine.IO sessions, may belong to clients that
    have not signed in: half of the places."""
    return max(1, websocket_limit(threads) // 2)


def close_session(engine: engineio.Server, sid: str) -> None:
    """Close one Engine.IO session without waiting for its client to collect the close packet.

    python-engineio's own ``disconnect`` waits until the client has read everything queued; a
    polling client that went away never reads again, and the wait never ends."""
    socket = engine.sockets.get(sid)
    if socket is not None:
        socket.close(wait=False, reason=engine.reason.SERVER_DISCONNECT)
    engine.sockets.pop(sid, None)


def quiet_closing_race(
    fallback: Callable[[threading.ExceptHookArgs], object],
) -> Callable[[threading.ExceptHookArgs], None]:
    """A :data:`threading.excepthook` that logs at debug level, instead of as a traceback, the
    one error python-engineio's WebSocket writer raises when a client closes its connection
    at the moment the server closes it too, and hands every other error to ``fallback``.

    A client that leaves (a page closed, a Socket.IO client's ``disconnect()``) sends
    Engine.IO's close packet and then closes its WebSocket. The packet ends the server's
    writer thread, whose last statement closes the WebSocket; the client's close, answered by
    simple-websocket's reader thread, may have closed the socket meanwhile. That last close
    then fails (``Bad file descriptor``, or ``ConnectionClosed`` when the reader was first),
    uncaught, when the connection is gone already and nothing is left to send.
    """

    def hook(args: threading.ExceptHookArgs) -> None:
        if _is_closing_race(args):
            log.debug("a WebSocket was closed by both sides at once: %s", args.exc_value)
            return
        fallback(args)

    return hook


def _is_closing_race(args: threading.ExceptHookArgs) -> bool:
    """Whether the error is the writer's final ``ws.close()`` failing (its other sends are
    caught by python-engineio itself)."""
    if not isinstance(args.exc_value, OSError | ConnectionClosed) or args.exc_traceback is None:
        return False
    frames = traceback.extract_tb(args.exc_traceback)
    return any(
        caller.name == "writer"
        and caller.filename.endswith(os.path.join("engineio", "socket.py"))
        and called.name == "close"
        for caller, called in zip(frames, frames[1:], strict=False)
    )


class SignedIn:
    """Looks up which Engine.IO sessions of a python-socketio server have joined a namespace."""

    def __init__(self, server: socketio.Server) -> None:
        self.server = server

    def session(self, eio_sid: str | None) -> bool:
        """Whether the session has joined a namespace, or is being let into one now."""
        if eio_sid is None:
            return False
        manager = self.server.manager
        return any(
            manager.sid_from_eio_sid(eio_sid, namespace) is not None for namespace in list(manager.get_namespaces())
        )

    def unsigned_sessions(self) -> int:
        """How many open Engine.IO sessions have joined no namespace."""
        return sum(1 for sid in list(self.server.eio.sockets) if not self.session(sid))

    def opened_by(self) -> dict[int, str]:
        """The gate's request number (:data:`REQUEST_KEY`) → the session that request opened:
        how a WebSocket sent without ``sid`` finds its session."""
        return {
            environ[REQUEST_KEY]: sid for sid, environ in list(self.server.environ.items()) if REQUEST_KEY in environ
        }


class SocketGate:
    """WSGI middleware in front of the host's app that bounds Engine.IO sessions, WebSockets
    and long-polls (see the module's docstring). A request past a bound gets an error envelope
    at once: 503 with ``Retry-After`` (Socket.IO clients try again later), or 400 for a second
    long-poll or WebSocket of one session. ``has_credentials(environ)`` tells whether a request
    carries the admin token or a live browser session: such a client is not held back by the
    bounds on those who have not signed in."""

    def __init__(
        self, app: WSGIApplication, threads: int, signed_in: SignedIn, has_credentials: Callable[[dict], bool]
    ) -> None:
        self.app = app
        self.limit = websocket_limit(threads)
        self.unsigned_limit = unsigned_limit(threads)
        self.signed_in = signed_in
        self.has_credentials = has_credentials
        self._held: dict[int, str | None] = {}  # request number → its sid (None: opens a session)
        self._numbers = itertools.count()
        self._busy: set[tuple[str, str]] = set()  # (sid, "websocket" | "poll") in flight
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        websocket = environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        engineio = environ.get("PATH_INFO", "").startswith(ENGINEIO_PREFIX)
        if not (websocket or engineio):
            return self.app(environ, start_response)
        sid = parse_qs(environ.get("QUERY_STRING", "")).get("sid", [None])[0] if engineio else None
        long_poll = engineio and not websocket and sid is not None and environ.get("REQUEST_METHOD") == "GET"
        kind = "websocket" if websocket else "poll" if long_poll else None
        number = environ[REQUEST_KEY] = next(self._numbers)
        refusal = self._enter(number, sid, kind, exempt=False)
        if refusal is not None and refusal[2] and self.has_credentials(environ):
            refusal = self._enter(number, sid, kind, exempt=True)
        if refusal is not None:
            return self._refuse(start_response, *refusal[:2])
        if kind is None:
            return self.app(environ, start_response)
        try:
            # In threading mode a WebSocket is served inside this call until it closes, and a
            # long-poll until it has packets to return.
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self._held.pop(number, None)
                if sid is not None:
                    self._busy.discard((sid, kind))

    def _enter(self, number: int, sid: str | None, kind: str | None, exempt: bool) -> tuple[int, str, bool] | None:
        """Take a place for the request, or say why not: (status, error code, whether signing
        in would have let it in)."""
        with self._lock:
            if kind is not None and sid is not None and (sid, kind) in self._busy:
                return 400, "overlapping_request", False
            if kind is not None and len(self._held) >= self.limit:
                return 503, "too_many_websockets", False
            if not exempt:
                if sid is None and self.signed_in.unsigned_sessions() >= self.unsigned_limit:
                    return 503, "too_many_sessions", True
                if (
                    kind is not None
                    and not self.signed_in.session(sid)
                    and self._unsigned_held() >= self.unsigned_limit
                ):
                    return 503, "too_many_sessions", True
            if kind is not None:
                self._held[number] = sid
                if sid is not None:
                    self._busy.add((sid, kind))
        return None

    def _unsigned_held(self) -> int:
        """How many WebSockets and long-polls in flight belong to no signed-in session."""
        opened_by = self.signed_in.opened_by() if None in self._held.values() else {}
        return sum(1 for number, sid in self._held.items() if not self.signed_in.session(sid or opened_by.get(number)))

    def _refuse(self, start_response: StartResponse, status: int, code: str) -> list[bytes]:
        messages = {
            "overlapping_request": "This Socket.IO session already has a request of this kind in flight.",
            "too_many_websockets": f"This panel already holds {self.limit} open WebSockets and long-polls; "
            "try again later, or raise OPEN1PANEL_AI_THREADS.",
            "too_many_sessions": f"This panel already holds {self.unsigned_limit} Socket.IO connections that "
            "have not signed in; try again later, or send the admin token in the "
            "Authorization header.",
        }
        body = json.dumps(
            {
                "error": {
                    "code": code,
                    "message": messages[code],
                    "details": {"limit": self.unsigned_limit if code == "too_many_sessions" else self.limit},
                }
            }
        ).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if status == 503:
            headers.append(("Retry-After", "5"))
        start_response(f"{status} {'Bad Request' if status == 400 else 'Service Unavailable'}", headers)
        return [body]


class SignInDeadline:
    """Closes Engine.IO sessions that have not joined a Socket.IO namespace in time.

    A background task looks at the sessions four times per deadline and closes those that are
    past it with no namespace, so such a session lives from ``seconds`` to about 1.25 ×
    ``seconds``. Clients that sign in (the pages, Socket.IO clients) join their namespace at
    once and are never touched; a refused or ended namespace connection leaves the session to
    be closed like one that never tried. Closing never waits for the client (see
    :func:`close_session`), so one client that went away cannot stop the sweeps.

    ``ended(connected)`` names the (namespace, sid) of connections whose browser session has
    ended (signed out in any process of the data dir); each sweep takes them out of their
    namespace, and the deadline then closes their session.
    """

    def __init__(
        self,
        server: socketio.Server,
        seconds: float,
        ended: Callable[[Callable[[str, str], bool]], list[tuple[str, str]]] | None = None,
    ) -> None:
        self.server = server
        self.seconds = seconds
        self.signed_in = SignedIn(server)
        self.ended = ended
        self._first_seen: dict[str, float] = {}

    def start(self) -> None:
        self.server.start_background_task(self._run)

    def _run(self) -> None:
        while True:
            self.server.sleep(self.seconds / 4)
            try:
                self.sweep(time.monotonic())
            except Exception:  # a sweep must never end the task that guards every later one
                log.exception("sign-in deadline sweep failed")

    def _connected(self, namespace: str, sid: str) -> bool:
        """Whether the connection is open, or being let in now."""
        return self.server.manager.eio_sid_from_sid(sid, namespace) is not None

    def sweep(self, now: float) -> None:
        """Close every session first seen ``seconds`` or more before ``now`` that has no namespace,
        after taking signed-out connections out of theirs."""
        if self.ended is not None:
            for namespace, sid in self.ended(self._connected):
                log.info("closing Socket.IO connection %s to %s: its browser session ended", sid, namespace)
                self.server.disconnect(sid, namespace=namespace, ignore_queue=True)  # it is this process's
        engine = self.server.eio
        self._first_seen = {sid: self._first_seen.get(sid, now) for sid in list(engine.sockets)}
        for sid, first_seen in self._first_seen.items():
            if now - first_seen >= self.seconds and not self.signed_in.session(sid):
                log.info("closing Socket.IO session %s: no sign-in within %s s", sid, self.seconds)
                close_session(engine, sid)
