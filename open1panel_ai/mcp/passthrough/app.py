"""The bridge v2 process: the HTTP routes, who may use them, the sessions, and the process's life.

Routes, token, Host and Origin checks are those of :mod:`open1panel_ai.mcp.bridge`:

- ``/healthz`` answers ``{"ok":true}`` to anyone;
- everything else needs ``Authorization: Bearer <token>`` (else 401 with the same JSON body);
- ``/mcp`` (and ``/mcp/``) is Streamable HTTP, ``/sse`` with ``/messages/`` the legacy
  transport, each only when listed in ``transports``; any other path is a 404;
- a POST must be ``application/json`` (else 400), the ``Host`` must be loopback, the bind
  address (every interface's address for a wildcard bind) or an allowed host, with any port
  (else 421), and an ``Origin``, when sent, one of those over http or https (else 403).
  SIGHUP reloads ``allowed_hosts`` from the config file.

The process ends when the panel that started it is gone, on SIGTERM, and, with ``sessions:
shared``, when its child exits (status 3, so the supervisor restarts it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
import warnings
from _operator import _compare_digest as compare_digest  # hmac's, without loading OpenSSL
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import parse_qs

from open1panel_ai.mcp import logfile
from open1panel_ai.mcp.passthrough.child import ChildFailed
from open1panel_ai.mcp.passthrough.httpd import Connection, Handler, Request, Server
from open1panel_ai.mcp.passthrough.listen import ListenSession, filter_problem
from open1panel_ai.mcp.passthrough.modern import ModernSession, classify, discover_result, for_handshake_child
from open1panel_ai.mcp.passthrough.relay import (
    HANDSHAKE_VERSIONS,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    MODERN_VERSIONS,
    PARSE_ERROR,
    ClientSession,
    Upstream,
    dumps,
    error_message,
    one_line,
)
from open1panel_ai.mcp.passthrough.streams import Exchange, SseSession, StreamableSession
from open1panel_ai.mcp.urls import host_patterns

log = logging.getLogger("open1panel_ai.mcp.passthrough")

#: Exit status when the shared child ended (the same as the v1 bridge's).
EXIT_UPSTREAM_GONE = 3
#: Error code of a request at a protocol revision this bridge does not serve.
UNSUPPORTED_PROTOCOL_VERSION = -32022

#: Settings read from the config, with their defaults (documented in docs/mcp.md).
DEFAULTS: dict[str, Any] = {
    "sessions": "shared",
    "max_sessions": 1000,
    "session_idle_timeout": 1800,
    "max_children": 16,
    "child_idle_timeout": 600,
    "spare_children": 1,
    "event_buffer": 256,
    "event_buffer_bytes": 1 << 20,
    "max_unsent_bytes": 4 << 20,
    "max_body_bytes": 4 << 20,
    "max_message_bytes": 16 << 20,
}

#: How often the housekeeping runs, how long an idle keep-alive connection stays, and how
#: often open streams get a keepalive comment, in seconds.
TICK = 5.0
KEEP_ALIVE = 30.0
PING_EVERY = 15.0

#: How long a 2026-07-28 request waits for the client's answer to an ``input_required``, in
#: seconds, before it is cancelled on the child.
INPUT_WAIT = 300.0

_UNAUTHORIZED = dumps({"error": {"code": "unauthorized", "message": "Send 'Authorization: Bearer <server token>'."}})
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def _matches(value: str, patterns: list[str]) -> bool:
    """An exact match, or ``base:*`` matching ``base:<any port>`` (as the SDK checks)."""
    if value in patterns:
        return True
    return any(p.endswith(":*") and value.startswith(p[:-1]) for p in patterns)


def _accepts(header: str) -> tuple[bool, bool]:
    """Whether an Accept header takes JSON and event streams (wildcards included)."""
    types = {part.split(";")[0].strip().lower() for part in header.split(",")}
    anything = "*/*" in types
    return (
        anything or "application/json" in types or "application/*" in types,
        anything or "text/event-stream" in types or "text/*" in types,
    )


def _invalid(messages: list[Any]) -> str | None:
    """Why these are not JSON-RPC messages a client may send, or None."""
    if not messages:
        return "an empty batch"
    for message in messages:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return "not a JSON-RPC 2.0 message"
        if "method" in message:
            if not isinstance(message["method"], str):
                return "the method is not a string"
            if "id" in message and not _is_id(message["id"]):
                return "a request id must be a string or a number"
            if "params" in message and not isinstance(message["params"], (dict, list)):
                return "params must be an object or an array"
        elif "id" in message and ("result" in message or "error" in message):
            if message["id"] is not None and not _is_id(message["id"]):
                return "an id must be a string or a number"
        else:
            return "neither a request, a notification nor an answer"
    return None


_NAME_KEYS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def _is_id(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


class Bridge(Handler):
    """Serves one MCP server to HTTP clients (see the module's docstring)."""

    def __init__(self, config: Mapping[str, Any], config_path: str) -> None:
        self.config = config
        self.config_path = config_path
        settings = {key: config.get(key, default) for key, default in DEFAULTS.items()}
        for key, value in settings.items():
            if value is None:
                settings[key] = DEFAULTS[key]
        if settings["sessions"] not in ("shared", "per_client"):
            raise ValueError(f"sessions must be 'shared' or 'per_client', not {settings['sessions']!r}")
        self.mode = settings["sessions"]
        self.max_sessions = int(settings["max_sessions"])
        self.session_idle = float(settings["session_idle_timeout"])
        self.max_children = int(settings["max_children"])
        self.child_idle = float(settings["child_idle_timeout"])
        self.spares = int(settings["spare_children"]) > 0 and self.mode == "per_client"
        #: With ``per_client``, a child started ahead for the next session.
        self.spare: Upstream | None = None
        self.spare_pending = False
        #: Seconds between housekeeping rounds: often enough for the shortest idle timeout.
        self.tick = min(TICK, max(0.5, min(self.session_idle, self.child_idle) / 2))
        self.event_limit = int(settings["event_buffer"])
        self.event_bytes_limit = int(settings["event_buffer_bytes"])
        self.max_unsent = int(settings["max_unsent_bytes"])
        self.max_message = int(settings["max_message_bytes"])
        self.expected = f"Bearer {config['token']}".encode()
        self.transports = config.get("transports") or ["streamable-http", "sse"]
        self.hosts = host_patterns(config)
        self.origins = [f"{scheme}://{host}" for host in self.hosts for scheme in ("http", "https")]
        self.server = Server(self, int(settings["max_body_bytes"]))
        self.sessions: dict[str, ClientSession] = {}
        self.children = 0
        self.shared: Upstream | None = None
        if self.mode == "shared":
            self.shared = self._upstream(False)
        #: ``subscriptions/listen`` streams (2026-07-28), which every child's changes reach.
        self.listeners: set[ListenSession] = set()
        #: 2026-07-28 requests waiting for the client's input, by their ``requestState``.
        self.parked: dict[str, ModernSession] = {}
        #: The last ``initialize`` answer of a child, for ``server/discover`` (per_client).
        self.init_result: dict[str, Any] | None = None
        self.tasks: set[asyncio.Task] = set()
        self.done = asyncio.Event()
        self.exit_code = 0
        self.last_ping = time.monotonic()

    # -- requests -------------------------------------------------------------------------

    def head(self, conn: Connection, request: Request) -> bool:
        path = request.path
        if path == "/healthz":
            request.route = "healthz"
            return True
        given = request.headers.get("authorization", "").encode("latin-1")
        if not compare_digest(given, self.expected):
            conn.respond(401, _UNAUTHORIZED, "application/json", [("www-authenticate", 'Bearer realm="mcp"')])
            return False
        if path in ("/mcp", "/mcp/") and "streamable-http" in self.transports:
            route = "mcp"
            if request.method not in ("GET", "POST", "DELETE"):
                conn.respond(
                    405,
                    error_message(None, INVALID_REQUEST, "Method Not Allowed"),
                    "application/json",
                    [("allow", "GET, POST, DELETE")],
                )
                return False
        elif path == "/sse" and "sse" in self.transports:
            route = "sse"
        elif path.startswith("/messages") and "sse" in self.transports:
            route = "messages"
            if request.method != "POST":
                conn.respond(405, b"", None, [("allow", "POST")])
                return False
        else:
            conn.respond(404, b"Not found\n", "text/plain; charset=utf-8")
            return False
        refusal = self._refusal(request)
        if refusal is not None:
            conn.respond(refusal[0], refusal[1].encode(), "text/plain; charset=utf-8")
            return False
        request.route = route
        return True

    def _refusal(self, request: Request) -> tuple[int, str] | None:
        """The SDK's checks against DNS rebinding, in its order, with its answers."""
        headers = request.headers
        if request.method == "POST" and not headers.get("content-type", "").lower().startswith("application/json"):
            return 400, "Invalid Content-Type header"
        host = headers.get("host")
        if not host or not _matches(host, self.hosts):
            return 421, "Invalid Host header"
        origin = headers.get("origin")
        if origin and not _matches(origin, self.origins):
            return 403, "Invalid Origin header"
        return None

    def request(self, conn: Connection, request: Request) -> None:
        route = request.route
        if route == "mcp":
            if request.method == "POST":
                self.mcp_post(conn, request)
            elif request.method == "GET":
                self.mcp_get(conn, request)
            else:
                self.mcp_delete(conn, request)
        elif route == "messages":
            self.sse_post(conn, request)
        elif route == "sse":
            self.sse_open(conn, request)
        else:
            conn.respond(200, b'{"ok":true}', "application/json")

    @staticmethod
    def rpc_error(
        conn: Connection,
        status: int,
        code: int,
        text: str,
        headers: list[tuple[str, str]] | None = None,
        data: Any = None,
    ) -> None:
        conn.respond(status, error_message(None, code, text, data), "application/json", headers)

    # -- Streamable HTTP ------------------------------------------------------------------

    def _session_of(self, conn: Connection, request: Request) -> StreamableSession | None:
        """The request's session; None when it was answered with 400 or 404."""
        session_id = request.headers.get("mcp-session-id")
        if session_id is None:
            self.rpc_error(conn, 400, INVALID_REQUEST, "Bad Request: Missing session ID")
            return None
        session = self.sessions.get(session_id)
        if not isinstance(session, StreamableSession):
            self.rpc_error(conn, 404, INVALID_REQUEST, "Session not found")
            return None
        session.last_active = time.monotonic()
        return session

    def _version_refused(self, conn: Connection, request: Request) -> bool:
        version = request.headers.get("mcp-protocol-version")
        if version is None or version in HANDSHAKE_VERSIONS:
            return False
        if version in MODERN_VERSIONS:
            # No stream to GET and no session to DELETE at this revision.
            conn.respond(405, b"", None, [("allow", "POST")])
        else:
            self.rpc_error(
                conn,
                400,
                INVALID_REQUEST,
                f"Bad Request: Unsupported protocol version: {version}. "
                f"Supported versions: {', '.join(HANDSHAKE_VERSIONS)}",
            )
        return True

    def mcp_post(self, conn: Connection, request: Request) -> None:
        has_json, has_sse = _accepts(request.headers.get("accept", ""))
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            self.rpc_error(conn, 400, PARSE_ERROR, f"Parse error: {exc}")
            return
        if request.headers.get("mcp-protocol-version") in MODERN_VERSIONS:
            self.modern_post(conn, request, body, has_json, has_sse)
            return
        batch = isinstance(body, list)
        messages = body if batch else [body]
        problem = _invalid(messages)
        if problem is not None:
            self.rpc_error(conn, 400, INVALID_REQUEST, f"Invalid request: {problem}")
            return
        if self._version_refused(conn, request):
            return
        raw = None if batch else one_line(request.body.strip())
        if any(m.get("method") == "initialize" and "id" in m for m in messages):
            if batch:
                self.rpc_error(conn, 400, INVALID_REQUEST, "Bad Request: initialize must be sent on its own")
            elif not has_json:
                self.rpc_error(conn, 406, INVALID_REQUEST, "Not Acceptable: Client must accept application/json")
            elif "mcp-session-id" in request.headers:
                if request.headers["mcp-session-id"] in self.sessions:
                    self.rpc_error(conn, 400, INVALID_REQUEST, "Bad Request: this session is initialized already")
                else:
                    self.rpc_error(conn, 404, INVALID_REQUEST, "Session not found")
            else:
                self.open_streamable(conn, body, raw, has_sse)
            return
        session = self._session_of(conn, request)
        if session is None:
            return
        upstream = session.upstream
        if upstream.congested(self.max_unsent):
            self._congested(conn, session)
            return
        requests = [m["id"] for m in messages if "method" in m and "id" in m]
        if not requests:
            for message in messages:
                upstream.from_client(session, message, raw)
            conn.respond(202, b"", None, session.headers())
            return
        if not has_json:
            self.rpc_error(
                conn, 406, INVALID_REQUEST, "Not Acceptable: Client must accept application/json", session.headers()
            )
            return
        if len(set(requests)) != len(requests):
            self.rpc_error(
                conn, 400, INVALID_REQUEST, "Bad Request: two requests in one batch share an id", session.headers()
            )
            return
        Exchange(session, conn, requests, batch, has_sse)
        for message in messages:
            upstream.from_client(session, message, raw)

    def _congested(self, conn: Connection, session: ClientSession | None) -> None:
        """The child stopped reading its input: refuse more rather than hold it all."""
        log.warning(
            "refused a message: the MCP server has left %d bytes of its input unread",
            session.upstream.unsent() if session and session.upstream else 0,
        )
        self.rpc_error(
            conn,
            503,
            INTERNAL_ERROR,
            "The MCP server is not reading its input; try again later",
            session.headers() if isinstance(session, StreamableSession) else None,
        )

    def open_streamable(self, conn: Connection, message: dict[str, Any], raw: bytes | None, has_sse: bool) -> None:
        """A client's ``initialize``: a new session."""
        if len(self.sessions) >= self.max_sessions:
            log.warning("refused a new session: %d sessions are open (max_sessions)", len(self.sessions))
            self.rpc_error(conn, 503, INTERNAL_ERROR, "Too many open sessions")
            return
        given = message.get("params")
        params = given if isinstance(given, dict) else {}
        if self.shared is not None:
            upstream = self.shared

            def answer(failure: str | None) -> None:
                if conn.closed:
                    return
                if failure is not None:
                    self.rpc_error(conn, 503, INTERNAL_ERROR, f"The MCP server is not available: {failure}")
                    return
                session = StreamableSession(self, os.urandom(16).hex())
                self._register(session, upstream)
                result = upstream.initialize_answer(session, params)
                conn.respond(
                    200,
                    dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}),
                    "application/json",
                    session.headers(),
                )

            upstream.when_ready(answer)
            return
        if self.children >= self.max_children:
            log.warning("refused a new session: %d servers run, one per session (max_children)", self.children)
            self.rpc_error(
                conn,
                503,
                INTERNAL_ERROR,
                f"Too many open sessions: each runs its own server, and {self.max_children} run",
            )
            return
        session = StreamableSession(self, os.urandom(16).hex())
        upstream = self._own_upstream(session)
        Exchange(session, conn, [message["id"]], False, has_sse)
        self._spawn(self._start_own(session, upstream, message, raw))

    # -- 2026-07-28 ------------------------------------------------------------------------

    def modern_post(self, conn: Connection, request: Request, body: Any, has_json: bool, has_sse: bool) -> None:
        """A request of the stateless revision (see :mod:`.modern`): one POST, no session."""
        if not has_json:
            conn.respond(406, b"", None)
            return
        if not isinstance(body, dict) or _invalid([body]) is not None or "method" not in body:
            self.rpc_error(conn, 400, INVALID_REQUEST, "Body must be a single JSON-RPC request or notification object")
            return
        if "id" not in body:
            conn.respond(202, b"", None)  # no client notification means anything at this revision
            return
        refusal = classify(body, request.headers)
        if refusal is not None:
            code, text, data = refusal
            conn.respond(400, error_message(body["id"], code, text, data), "application/json")
            return
        state = body["params"].get("requestState")
        if isinstance(state, str) and ("inputResponses" in body["params"] or state.startswith("bridge-")):
            session = self.parked.pop(state, None)
            if (
                session is None
                or session.closed
                or session.method != body["method"]
                or session.name != body["params"].get(_NAME_KEYS.get(body["method"], ""))
            ):
                conn.respond(
                    400,
                    error_message(
                        body["id"], -32602, "requestState is unknown, expired, or belongs to another request"
                    ),
                    "application/json",
                )
                return
            session.retry(conn, body, has_sse)
            return
        if body["method"] == "server/discover":
            self._discover(conn, body["id"])
            return
        if body["method"] == "subscriptions/listen":
            self.listen(conn, body, has_sse)
            return
        if len(self.sessions) >= self.max_sessions:
            log.warning("refused a request: %d sessions are open (max_sessions)", len(self.sessions))
            self.rpc_error(conn, 503, INTERNAL_ERROR, "Too many open sessions")
            return
        session = ModernSession(self, body)
        session.open_round(conn, body["id"], None, has_sse)
        if self.shared is not None:
            upstream = self.shared
            if upstream.congested(self.max_unsent):
                self._congested(conn, None)
                return

            def relay(failure: str | None) -> None:
                if session.closed or session.conn is None:
                    return
                if failure is not None:
                    session.respond(
                        body["id"],
                        error_message(body["id"], INTERNAL_ERROR, f"The MCP server is not available: {failure}"),
                    )
                    return
                self._register(session, upstream)
                upstream.want_level(session.log_level)
                upstream.from_client(session, for_handshake_child(body), None)

            upstream.when_ready(relay)
            return
        if self.children >= self.max_children:
            log.warning("refused a request: %d servers run, one per session (max_children)", self.children)
            self.rpc_error(
                conn,
                503,
                INTERNAL_ERROR,
                f"Too many open sessions: each runs its own server, and {self.max_children} run",
            )
            return
        # per_client: the request is a session of its own, with a child of its own.
        upstream = self._upstream(False)
        session.owns_upstream = True
        self.children += 1
        self._register(session, upstream)
        self._spawn(self._start_for_modern(session, upstream, body))

    def listen(self, conn: Connection, body: dict[str, Any], has_sse: bool) -> None:
        """``subscriptions/listen``, served by the bridge (see :mod:`.listen`)."""
        if not has_sse:
            conn.respond(406, b"", None)  # the answer is a stream, never JSON
            return
        problem = filter_problem(body["params"])
        if problem is not None:
            conn.respond(400, error_message(body["id"], -32602, problem), "application/json")
            return
        if len(self.sessions) >= self.max_sessions:
            log.warning("refused a listen stream: %d sessions are open (max_sessions)", len(self.sessions))
            self.rpc_error(conn, 503, INTERNAL_ERROR, "Too many open sessions")
            return
        if self.shared is None and self.children >= self.max_children:
            log.warning("refused a listen stream: %d servers run, one per session (max_children)", self.children)
            self.rpc_error(
                conn,
                503,
                INTERNAL_ERROR,
                f"Too many open sessions: each runs its own server, and {self.max_children} run",
            )
            return
        session = ListenSession(self, body, conn)
        self.listeners.add(session)
        if self.shared is not None:
            upstream = self.shared
        else:
            # per_client: a child of its own holds its subscriptions and says what changes there.
            upstream = self._upstream(False)
            session.owns_upstream = True
            self.children += 1
        self._register(session, upstream)

        def ready(failure: str | None) -> None:
            if session.closed:
                return
            if failure is not None:
                self.close_session(session, f"the MCP server is not available: {failure}")
                return
            capabilities = (upstream.init_result or {}).get("capabilities") or {}
            resources = capabilities.get("resources") if isinstance(capabilities, dict) else None
            session.start(isinstance(resources, dict) and resources.get("subscribe") is True)

        if session.owns_upstream:
            self._spawn(self._start_for_listen(session, upstream, ready))
        else:
            upstream.when_ready(ready)

    async def _start_for_listen(
        self, session: ListenSession, upstream: Upstream, ready: Callable[[str | None], None]
    ) -> None:
        try:
            await upstream.start()
        except ChildFailed as exc:
            log.error("%s", exc)
            self.close_session(session, f"its MCP server could not be started: {exc}")
            return
        if session.closed:
            return
        upstream.when_ready(ready)

    def publish(self, method: str, params: dict[str, Any]) -> None:
        """A child said something changed: every listen stream whose filter takes it hears."""
        for session in list(self.listeners):
            session.publish(method, params)

    def _upstream(self, exclusive: bool) -> Upstream:
        """A child (not started yet) whose changes reach the listen streams."""
        upstream = Upstream(self.config, exclusive, self._upstream_exited, self.max_message)
        upstream.on_event = self.publish
        return upstream

    async def _start_for_modern(self, session: ModernSession, upstream: Upstream, body: dict[str, Any]) -> None:
        try:
            await upstream.start()
        except ChildFailed as exc:
            log.error("%s", exc)
            session.respond(
                body["id"], error_message(body["id"], INTERNAL_ERROR, f"The MCP server could not be started: {exc}")
            )
            return

        def relay(failure: str | None) -> None:
            if session.closed:
                return
            if failure is not None:
                session.respond(
                    body["id"], error_message(body["id"], INTERNAL_ERROR, f"The MCP server is not available: {failure}")
                )
                return
            self.init_result = upstream.init_result
            upstream.want_level(session.log_level)
            upstream.from_client(session, for_handshake_child(body), None)

        upstream.when_ready(relay)

    def _discover(self, conn: Connection, request_id: Any) -> None:
        """``server/discover``, answered from the child's ``initialize`` answer."""

        def answer(failure: str | None) -> None:
            if conn.closed:
                return
            if failure is not None or self.init_result is None:
                self.rpc_error(conn, 503, INTERNAL_ERROR, f"The MCP server is not available: {failure}")
                return
            conn.respond(
                200,
                dumps({"jsonrpc": "2.0", "id": request_id, "result": discover_result(self.init_result)}),
                "application/json",
            )

        if self.shared is not None:

            def ready(failure: str | None) -> None:
                self.init_result = self.shared.init_result if self.shared is not None else None
                answer(failure)

            self.shared.when_ready(ready)
        elif self.init_result is not None:
            answer(None)
        else:
            self._spawn(self._discover_with_a_child(answer))

    async def _discover_with_a_child(self, answer: Callable[[str | None], None]) -> None:
        """per_client, before any child ran: one is started to ask, then stopped."""
        upstream = Upstream(self.config, False, lambda upstream, status: None, self.max_message)
        try:
            await upstream.start()
            ready = asyncio.get_running_loop().create_future()

            def settle(failure: str | None) -> None:
                if not ready.done():
                    ready.set_result(failure)

            upstream.when_ready(settle)
            failure = await asyncio.wait_for(ready, 60)
            self.init_result = upstream.init_result or self.init_result
            answer(failure)
        except (TimeoutError, ChildFailed) as exc:
            answer(str(exc) or "it did not answer initialize")
        finally:
            await upstream.stop()

    def park(self, session: ModernSession) -> str:
        """Keep a request that waits for its client's input; the ``requestState`` to come back with."""
        state = "bridge-" + os.urandom(24).hex()
        self.parked[state] = session
        return state

    def unpark(self, session: ModernSession) -> None:
        if session.state is not None and self.parked.get(session.state) is session:
            del self.parked[session.state]

    def mcp_get(self, conn: Connection, request: Request) -> None:
        if not _accepts(request.headers.get("accept", ""))[1]:
            self.rpc_error(conn, 406, INVALID_REQUEST, "Not Acceptable: Client must accept text/event-stream")
            return
        if self._version_refused(conn, request):
            return
        session = self._session_of(conn, request)
        if session is None:
            return
        last_event_id = request.headers.get("last-event-id")
        if last_event_id:
            if not session.resume(conn, last_event_id):
                self.rpc_error(
                    conn,
                    410,
                    INVALID_REQUEST,
                    "Gone: the events after that Last-Event-ID are no longer kept",
                    session.headers(),
                )
            return
        if session.get_conn is not None and not session.get_conn.closed:
            self.rpc_error(
                conn, 409, INVALID_REQUEST, "Conflict: Only one SSE stream is allowed per session", session.headers()
            )
            return
        session.open_get(conn)

    def mcp_delete(self, conn: Connection, request: Request) -> None:
        if self._version_refused(conn, request):
            return
        session = self._session_of(conn, request)
        if session is None:
            return
        self.close_session(session, "the client ended it", quiet=True)
        conn.respond(200, b"", "application/json", session.headers())

    # -- legacy SSE -----------------------------------------------------------------------

    def sse_open(self, conn: Connection, request: Request) -> None:
        if len(self.sessions) >= self.max_sessions:
            log.warning("refused a new session: %d sessions are open (max_sessions)", len(self.sessions))
            conn.respond(503, b"Too many open sessions", "text/plain; charset=utf-8")
            return
        session = SseSession(self, os.urandom(16).hex(), conn)
        self.sessions[session.id] = session
        if self.shared is not None:
            self.shared.attach(session)
        conn.start_stream()
        conn.send(b"event: endpoint\ndata: /messages/?session_id=%b\n\n" % session.id.encode())
        conn.on_close = lambda: self.close_session(session, "the client closed its stream", quiet=True)

    def sse_post(self, conn: Connection, request: Request) -> None:
        session_id = parse_qs(request.query).get("session_id", [None])[0]
        if session_id is None:
            conn.respond(400, b"session_id is required", "text/plain; charset=utf-8")
            return
        session_id = session_id.replace("-", "").lower()
        if not _SESSION_ID.match(session_id):
            conn.respond(400, b"Invalid session ID", "text/plain; charset=utf-8")
            return
        session = self.sessions.get(session_id)
        if not isinstance(session, SseSession):
            conn.respond(404, b"Could not find session", "text/plain; charset=utf-8")
            return
        try:
            message = json.loads(request.body)
        except ValueError:
            message = None
        if not isinstance(message, dict) or _invalid([message]) is not None:
            conn.respond(400, b"Could not parse message", "text/plain; charset=utf-8")
            return
        if session.upstream is not None and session.upstream.congested(self.max_unsent):
            log.warning(
                "refused a message: the MCP server has left %d bytes of its input unread",
                session.upstream.unsent(),
            )
            conn.respond(503, b"The MCP server is not reading its input; try again later", "text/plain; charset=utf-8")
            return
        conn.respond(202, b"Accepted", "text/plain; charset=utf-8")
        session.last_active = time.monotonic()
        raw = one_line(request.body.strip())
        if message.get("method") == "initialize" and "id" in message:
            self.sse_initialize(session, message, raw)
        elif session.upstream is None:
            if "id" in message and "method" in message:
                session.respond(
                    message["id"], error_message(message["id"], INVALID_REQUEST, "the session is not initialized")
                )
        else:
            session.upstream.from_client(session, message, raw)

    def sse_initialize(self, session: SseSession, message: dict[str, Any], raw: bytes | None) -> None:
        request_id = message["id"]
        if self.shared is not None:
            upstream = self.shared
            given = message.get("params")
            params = given if isinstance(given, dict) else {}

            def answer(failure: str | None) -> None:
                if session.closed:
                    return
                if failure is not None:
                    session.respond(
                        request_id,
                        error_message(request_id, INTERNAL_ERROR, f"The MCP server is not available: {failure}"),
                    )
                    return
                result = upstream.initialize_answer(session, params)
                session.respond(request_id, dumps({"jsonrpc": "2.0", "id": request_id, "result": result}))

            upstream.when_ready(answer)
            return
        if session.upstream is not None:
            session.respond(
                request_id, error_message(request_id, INVALID_REQUEST, "the session is initialized already")
            )
            return
        if self.children >= self.max_children:
            log.warning("refused a new session: %d servers run, one per session (max_children)", self.children)
            session.respond(
                request_id,
                error_message(
                    request_id,
                    INTERNAL_ERROR,
                    f"Too many open sessions: each runs its own server, and {self.max_children} run",
                ),
            )
            return
        upstream = self._own_upstream(session, register=False)
        self._spawn(self._start_own(session, upstream, message, raw))

    # -- sessions -------------------------------------------------------------------------

    def _register(self, session: ClientSession, upstream: Upstream) -> None:
        self.sessions[session.id] = session
        upstream.attach(session)

    def _own_upstream(self, session: ClientSession, register: bool = True) -> Upstream:
        """A child of the session's own (``sessions: per_client``), counted against the cap:
        the spare started ahead when there is one."""
        upstream, self.spare = self.spare, None
        if upstream is None or upstream.child is None or not upstream.child.alive:
            upstream = self._upstream(True)
        if self.spares:
            self._spawn(self.prepare_spare())
        if register:
            self._register(session, upstream)
        else:
            upstream.attach(session)
        self.children += 1
        return upstream

    async def prepare_spare(self) -> None:
        """Start the next session's child ahead, so its ``initialize`` waits for no process."""
        if self.spare is not None or self.spare_pending:
            return
        self.spare_pending = True
        upstream = self._upstream(True)
        try:
            await upstream.start()
        except ChildFailed as exc:
            log.error("the bridge stopped: %s", exc)
            self.finish(1)
            return
        finally:
            self.spare_pending = False
        if self.done.is_set() or self.spare is not None:
            await upstream.stop()
            return
        self.spare = upstream

    async def _start_own(
        self, session: ClientSession, upstream: Upstream, message: dict[str, Any], raw: bytes | None
    ) -> None:
        try:
            if upstream.child is None:
                await upstream.start()
        except ChildFailed as exc:
            log.error("%s", exc)
            session.respond(
                message["id"],
                error_message(message["id"], INTERNAL_ERROR, f"The MCP server could not be started: {exc}"),
            )
            self.close_session(session, "its MCP server could not be started")
            return
        if session.closed:
            await upstream.stop()
            return
        upstream.from_client(session, message, raw)

    def close_session(self, session: ClientSession, reason: str, quiet: bool = False) -> None:
        """End a session: its requests are cancelled, its streams closed, its own child stopped."""
        if session.closed:
            return
        session.closed = True
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        if isinstance(session, ListenSession):
            self.listeners.discard(session)
        upstream = session.upstream
        if upstream is not None:
            upstream.detach(session, reason)
        session.close_streams(f"the session ended: {reason}")
        if upstream is not None and (upstream.exclusive or getattr(session, "owns_upstream", False)):
            self.children -= 1
            self._spawn(upstream.stop())
        (log.debug if quiet else log.info)("session %s ended: %s", session.id[:8], reason)

    def check_slow(self, session: ClientSession, conn: Connection) -> None:
        """Drop a session whose client stopped reading what is sent to it."""
        unsent = conn.unsent()
        if unsent > self.max_unsent:
            log.warning(
                "dropped session %s: its client stopped reading (%d bytes unsent, the limit is %d)",
                session.id[:8],
                unsent,
                self.max_unsent,
            )
            conn.abort()
            self.close_session(session, "its client stopped reading", quiet=True)

    def _upstream_exited(self, upstream: Upstream, status: int | None) -> None:
        if self.done.is_set():
            return  # stopping: the children go too
        if upstream is self.shared:
            if self.config.get("url"):
                log.error("the bridge stopped: the remote server is gone")
            else:
                log.error("the server process exited with status %s", status)
            self.finish(EXIT_UPSTREAM_GONE)
            return
        if upstream is self.spare:
            # It exited before any client spoke to it: it cannot serve anyone (a missing key,
            # a bad argument). Like a shared child, that ends the bridge, for the supervisor.
            self.spare = None
            log.error("the server process exited with status %s", status)
            self.finish(EXIT_UPSTREAM_GONE)
            return
        for session in list(upstream.sessions):
            self.close_session(session, f"its MCP server process exited (status {status})")

    # -- the process ----------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def finish(self, code: int) -> None:
        if not self.done.is_set():
            self.exit_code = code
            self.done.set()

    def housekeeping(self) -> None:
        now = time.monotonic()
        self.server.sweep(KEEP_ALIVE)
        for parked in list(self.parked.values()):
            if parked.parked_since is not None and now - parked.parked_since > INPUT_WAIT:
                self.close_session(parked, f"its client sent no input for {INPUT_WAIT:.0f} s")
        for session in list(self.sessions.values()):
            own = session.upstream is not None and session.upstream.exclusive
            if session.inflight or (session.busy and not own):
                continue
            idle = now - session.last_active
            if idle > (self.child_idle if own else self.session_idle):
                self.close_session(session, f"idle for {idle:.0f} s")
        if now - self.last_ping >= PING_EVERY:
            self.last_ping = now
            for session in list(self.sessions.values()):
                session.ping()
        for upstream in {s.upstream for s in self.sessions.values()} | {self.shared}:
            if upstream is not None:
                upstream.purge_cancelled(60)

    def reload_hosts(self) -> None:
        with open(self.config_path, encoding="utf-8") as file:
            fresh = json.load(file)
        self.hosts = host_patterns({**self.config, **fresh})
        self.origins = [f"{scheme}://{host}" for host in self.hosts for scheme in ("http", "https")]
        log.info("allowed hosts now: %s", ", ".join(fresh.get("allowed_hosts") or []) or "loopback only")

    async def stop_children(self) -> None:
        upstreams = {s.upstream for s in self.sessions.values() if s.upstream is not None}
        for upstream in (self.shared, self.spare):
            if upstream is not None:
                upstreams.add(upstream)
        await asyncio.gather(*(u.stop() for u in upstreams), return_exceptions=True)


async def serve(config_path: str, config: Mapping[str, Any]) -> int:
    loop = asyncio.get_running_loop()
    _watch_children_with_pidfd(loop)
    # The panel names itself: one killed before this line ran is no longer the parent here.
    panel_pid = int(config.get("panel_pid") or os.getppid())
    bridge = Bridge(config, config_path)

    def hangup() -> None:
        try:
            bridge.reload_hosts()
        except (OSError, ValueError) as exc:
            log.error("could not reload the config: %s", exc)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    loop.add_signal_handler(signal.SIGTERM, bridge.finish, 0)
    loop.add_signal_handler(signal.SIGINT, bridge.finish, 0)
    host, port = config["bind_host"], int(config["port"])
    try:
        listener = await loop.create_server(bridge.server.protocol, host, port, reuse_address=True)
    except OSError as exc:
        log.error("the bridge stopped: cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
        return 2
    log.info("serving on %s:%s (sessions: %s)", host, port, bridge.mode)
    if bridge.shared is not None:
        try:
            await bridge.shared.start()
        except ChildFailed as exc:
            log.error("the bridge stopped: %s", exc)
            listener.close()
            return 1
    elif bridge.spares:
        await bridge.prepare_spare()

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, bridge.tick))
            if os.getppid() != panel_pid:
                # A panel killed outright cannot stop its bridges: they notice and go too.
                log.error("the panel that started this bridge is gone; stopping")
                bridge.finish(0)
            if time.monotonic() - last >= bridge.tick:
                last = time.monotonic()
                bridge.housekeeping()

    ticker = loop.create_task(tick())
    await bridge.done.wait()
    ticker.cancel()
    listener.close()
    for stream in list(bridge.listeners):
        stream.end_gracefully()
    for conn in list(bridge.server.connections):
        conn.close()  # after what was written (errors for pending requests) has been sent
    await bridge.stop_children()
    await asyncio.sleep(0.05)
    return bridge.exit_code


def _watch_children_with_pidfd(loop: asyncio.AbstractEventLoop) -> None:
    """On Python 3.11, wait for children through pidfds rather than a thread per child."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            os.close(os.pidfd_open(os.getpid()))
        except OSError:
            return  # the kernel has no pidfds: keep asyncio's default
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.get_event_loop_policy().set_child_watcher(watcher)


def setup_logging(config: Mapping[str, Any]) -> None:
    """The server's log file, shared with the supervisor, in the v1 bridge's format."""
    handler = logfile.Handler(
        config["log_file"],
        int(config.get("log_max_bytes", logfile.MAX_BYTES)),
        int(config.get("log_backups", logfile.BACKUPS)),
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    if config.get("url"):
        from open1panel_ai.mcp.urls import MaskedURL

        handler.addFilter(MaskedURL(config["url"]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("asyncio", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    # A SIGHUP before the reload handler is installed must not end the bridge.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m open1panel_ai.mcp.passthrough CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as file:
        config = json.load(file)
    if config.get("gateway"):
        # A gateway (supergateway) runs the stdio server itself: the SDK bridge serves it.
        from open1panel_ai.mcp import bridge

        return bridge.main(argv)
    setup_logging(config)
    try:
        return asyncio.run(serve(argv[0], config))
    except Exception as exc:  # noqa: BLE001 - whatever stopped it goes to the server's log
        log.error("the bridge stopped: %s: %s", type(exc).__name__, exc)
        return 1
