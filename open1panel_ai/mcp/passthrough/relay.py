"""Routing JSON-RPC between client sessions and one stdio child (or one remote server, see
:mod:`.remote`), without the ``mcp`` SDK.

An :class:`Upstream` owns one child and relays every message in both directions. It reads
only what it must to route a message (``id``, ``method``, a progress token, a URI) and passes
the rest through as it came. Two ways to use it:

- **shared** (``exclusive=False``): one child for every client session. The bridge initializes
  the child itself and answers each client's ``initialize`` from the child's answer. Request ids
  are rewritten to ids unique on the child and mapped back, and so are progress tokens, so two
  sessions never collide. A request the server sends (sampling, elicitation, roots) goes to the
  one session that can answer it and has a request in flight; when that is ambiguous, or no
  session can answer, the server gets a JSON-RPC error that says why. ``ping`` from the server
  is answered by the bridge. Notifications go where they belong: progress to the request that
  asked for it, ``resources/updated`` to the sessions subscribed to that URI, log messages to
  every session whose level lets them through, anything else to every session. Subscriptions
  and log levels are kept per session: the child is subscribed while any session is, and logs
  at the most verbose level any session asked for.
- **exclusive** (``exclusive=True``): one child for one session (``sessions: per_client``).
  Every message passes byte for byte, ``initialize`` included, with ids and tokens untouched.

In both, a client's ``notifications/cancelled`` reaches the child and the child's late answer
to that request is dropped, and a child that exits answers every request still pending with an
error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from open1panel_ai.mcp.passthrough.child import Child

if TYPE_CHECKING:
    from open1panel_ai.mcp.passthrough.remote import RemoteChild

log = logging.getLogger("open1panel_ai.mcp.passthrough")

#: Revisions reachable through the ``initialize`` handshake, oldest first.
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_HANDSHAKE = HANDSHAKE_VERSIONS[-1]
#: Revisions of the stateless era (no handshake, no session).
MODERN_VERSIONS = ("2026-07-28",)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
#: What a request ended by the client's cancel is answered with on a 2025-era stream.
REQUEST_CANCELLED = -32800

LOG_LEVELS = {
    name: rank
    for rank, name in enumerate(("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"))
}

#: The client capability a server→client request needs.
_CAPABILITY = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}

#: The notifications that 2026-07-28 carries on ``subscriptions/listen`` streams.
_EVENTS = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    }
)

#: What the bridge tells a shared child it can route: everything the official client offers.
BRIDGE_CAPABILITIES = {"roots": {"listChanged": True}, "sampling": {}, "elicitation": {"form": {}, "url": {}}}


def is_at_least(version: str, minimum: str) -> bool:
    """Whether ``version`` is a known revision no older than ``minimum``."""
    known = (*HANDSHAKE_VERSIONS, *MODERN_VERSIONS)
    return version in known and known.index(version) >= known.index(minimum)


def dumps(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def error_message(request_id: Any, code: int, text: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": text}
    if data is not None:
        error["data"] = data
    return dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def one_line(raw: bytes | None) -> bytes | None:
    """``raw`` when it can travel as one line of stdio or SSE data as it is, else None."""
    if raw is None or b"\n" in raw or b"\r" in raw:
        return None
    return raw


class ClientSession:
    """One client session as the relay sees it; a transport says how messages reach it."""

    transport = "?"
    #: Whether log messages reach it when it set no level, and whether notifications that
    #: concern the whole session (``list_changed``, ``resources/updated``) reach it.
    logs_by_default = True
    standalone = True

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        self.upstream: Upstream | None = None
        self.capabilities: dict[str, Any] = {}
        self.protocol_version = LATEST_HANDSHAKE
        self.log_level: str | None = None
        #: Requests in flight: the client's id → the id on the child.
        self.inflight: dict[Any, Any] = {}
        self.subscriptions: set[str] = set()
        self.ready = False
        self.closed = False
        self.last_active = time.monotonic()

    def respond(self, client_id: Any, data: bytes) -> None:
        """Deliver the answer to the client's request ``client_id``."""
        raise NotImplementedError

    def push(self, data: bytes, related: Any = None) -> None:
        """Deliver a request or notification; ``related`` names the client request it belongs to."""
        raise NotImplementedError

    def cancelled(self, client_id: Any) -> None:
        """The client cancelled ``client_id``: end whatever waits for its answer."""

    @property
    def busy(self) -> bool:
        """Whether a stream of the session is open (it is not idle then)."""
        return False

    def close_streams(self, text: str) -> None:
        """End the session's streams; requests still waiting are answered with ``text``."""

    def ping(self) -> None:
        """Write a keepalive comment on the session's open streams."""

    def related_request(self) -> Any:
        """The client request a message without one belongs to: the only one in flight, else None."""
        if len(self.inflight) == 1:
            return next(iter(self.inflight))
        return None

    def supports(self, method: str, params: Mapping[str, Any] | None) -> bool:
        capability = _CAPABILITY.get(method)
        if capability is None:
            return True
        declared = self.capabilities.get(capability)
        if not isinstance(declared, dict):
            return False
        if method == "elicitation/create" and isinstance(params, dict) and params.get("mode") == "url":
            return isinstance(declared.get("url"), dict)
        return True


class _Pending:
    __slots__ = ("session", "client_id", "method", "token", "cancelled", "callback", "since", "uri")

    def __init__(
        self,
        session: ClientSession | None,
        client_id: Any,
        method: str,
        callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.session = session
        self.client_id = client_id
        self.method = method
        self.token: Any = None
        self.cancelled = False
        self.callback = callback
        self.since = time.monotonic()
        self.uri: str | None = None


class Upstream:
    """One stdio child and the client sessions it serves (see the module's docstring)."""

    def __init__(
        self, config: Mapping[str, Any], exclusive: bool, on_exit: Callable[[Upstream, int | None], None], max_line: int
    ) -> None:
        self.config = config
        self.exclusive = exclusive
        self.on_exit = on_exit
        self.max_line = max_line
        self.child: Child | RemoteChild | None = None
        self.sessions: set[ClientSession] = set()
        self.pending: dict[Any, _Pending] = {}
        self.next_id = 0
        #: Progress tokens on the child → (session, the client's token, the client's request id).
        self.progress: dict[Any, tuple[ClientSession, Any, Any]] = {}
        #: Ids of requests the child sent → the session asked to answer.
        self.server_requests: dict[Any, ClientSession] = {}
        self.subscribers: dict[str, set[ClientSession]] = {}
        self.roots_hint: ClientSession | None = None
        self.child_level: str | None = None
        self.init_result: dict[str, Any] | None = None
        self.exit_status: int | None = None
        self.ready_waiters: list[Callable[[str | None], None]] = []
        self.failure: str | None = None
        #: Called with each ``list_changed`` and ``resources/updated`` the child sends, besides
        #: their delivery to this child's sessions: the bridge's ``subscriptions/listen`` streams.
        self.on_event: Callable[[str, dict[str, Any]], None] | None = None

    # -- the child ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the child (or connect to the remote server); in shared mode also initialize
        it (see :meth:`when_ready`)."""
        if self.config.get("url"):
            from open1panel_ai.mcp.passthrough.remote import RemoteChild

            self.child = RemoteChild(self.from_child, self._child_exited, self.max_line, self.config)
            await self.child.start()
        else:
            self.child = Child(self.from_child, self._child_exited, self.max_line)
            await self.child.start(self.config["command"], self.config.get("env") or {}, self.config.get("cwd"))
            log.info("started %s (pid %d)", self.config["command"][0], self.child.pid)
        if not self.exclusive:
            self.request(
                "initialize",
                {
                    "protocolVersion": LATEST_HANDSHAKE,
                    "capabilities": BRIDGE_CAPABILITIES,
                    "clientInfo": {"name": "open1panel-ai-bridge", "version": _version()},
                },
                self._initialized,
            )

    @property
    def is_ready(self) -> bool:
        return self.init_result is not None

    def when_ready(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(None)`` once the shared child answered ``initialize``, or
        ``callback(reason)`` if it never will."""
        if self.init_result is not None or self.failure is not None:
            callback(self.failure)
        else:
            self.ready_waiters.append(callback)

    def _set_ready(self, failure: str | None) -> None:
        self.failure = failure
        waiters, self.ready_waiters = self.ready_waiters, []
        for waiter in waiters:
            waiter(failure)

    def _initialized(self, message: dict[str, Any]) -> None:
        result = message.get("result")
        if not isinstance(result, dict):
            error = message.get("error") or {}
            reason = f"the server refused initialize: {error.get('message', error)}"
            log.error("%s", reason)
            self._set_ready(reason)
            return
        self.init_result = result
        self.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        info = result.get("serverInfo") or {}
        log.info(
            "upstream %s %s ready (protocol %s)", info.get("name"), info.get("version"), result.get("protocolVersion")
        )
        self._set_ready(None)

    def send(self, line: bytes) -> None:
        if self.child is not None:
            self.child.send(line)

    def unsent(self) -> int:
        """Bytes of the child's input it has not read yet (0 before it started)."""
        return self.child.unsent() if self.child is not None else 0

    def congested(self, limit: int) -> bool:
        """Whether the child has left more than ``limit`` bytes of its input unread."""
        return self.child is not None and self.child.unsent() > limit

    def request(self, method: str, params: dict[str, Any], callback: Callable[[dict[str, Any]], None]) -> None:
        """Send a request of the bridge's own; ``callback`` gets the child's answer."""
        upstream_id = self._new_id()
        self.pending[upstream_id] = _Pending(None, None, method, callback)
        self.send(dumps({"jsonrpc": "2.0", "id": upstream_id, "method": method, "params": params}))

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _child_exited(self, status: int | None) -> None:
        self.exit_status = status
        gone = (
            "the remote MCP server went away"
            if self.config.get("url")
            else f"the MCP server process exited (status {status})"
        )
        text = f"{gone} before it answered"
        pending, self.pending = self.pending, {}
        for entry in pending.values():
            if entry.callback is not None:
                entry.callback({"error": {"code": INTERNAL_ERROR, "message": text}})
            elif not entry.cancelled and entry.session is not None and not entry.session.closed:
                entry.session.inflight.pop(entry.client_id, None)
                entry.session.respond(entry.client_id, error_message(entry.client_id, INTERNAL_ERROR, text))
        asked, self.server_requests = self.server_requests, {}
        for request_id, session in asked.items():
            if not session.closed:
                session.push(
                    dumps(
                        {
                            "jsonrpc": "2.0",
                            "method": "notifications/cancelled",
                            "params": {"requestId": request_id, "reason": gone},
                        }
                    )
                )
        self.progress.clear()
        if self.init_result is None and not self.exclusive:
            self._set_ready(f"{gone} before it was ready")
        self.on_exit(self, status)

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()

    # -- client → child -------------------------------------------------------------------

    def attach(self, session: ClientSession) -> None:
        session.upstream = self
        self.sessions.add(session)

    def want_level(self, level: str | None) -> None:
        """Make the shared child log at ``level`` or more verbosely (a 2026-07-28 request
        asks for log messages in its ``_meta``, not with ``logging/setLevel``)."""
        if self.exclusive or level not in LOG_LEVELS:
            return
        if self.child_level is None or LOG_LEVELS[level] < LOG_LEVELS[self.child_level]:
            self.child_level = level
            self.request("logging/setLevel", {"level": level}, lambda answer: None)

    def initialize_answer(self, session: ClientSession, params: Mapping[str, Any]) -> dict[str, Any]:
        """The shared child's ``initialize`` result, as this session negotiated it."""
        requested = params.get("protocolVersion")
        session.protocol_version = requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE
        capabilities = params.get("capabilities")
        session.capabilities = capabilities if isinstance(capabilities, dict) else {}
        session.ready = True
        return {**(self.init_result or {}), "protocolVersion": session.protocol_version}

    def from_client(self, session: ClientSession, message: dict[str, Any], raw: bytes | None) -> None:
        """Relay one message ``session`` sent (``raw``: its bytes, when they can pass as they are)."""
        session.last_active = time.monotonic()
        method = message.get("method")
        if method is None:
            self._client_answer(session, message, raw)
        elif "id" in message:
            self._client_request(session, message, method, raw)
        else:
            self._client_notification(session, message, method, raw)

    def _client_answer(self, session: ClientSession, message: dict[str, Any], raw: bytes | None) -> None:
        request_id = message.get("id")
        if not _hashable(request_id) or self.server_requests.get(request_id) is not session:
            log.debug("dropped an answer from session %s to no request of the server", session.id[:8])
            return
        del self.server_requests[request_id]
        self.send(raw or dumps(message))

    def _client_request(self, session: ClientSession, message: dict[str, Any], method: str, raw: bytes | None) -> None:
        client_id = message["id"]
        params: Any = message.get("params")  # JSON from the client, checked where it is used
        if self.exclusive:
            if client_id in self.pending:
                session.respond(
                    client_id, error_message(client_id, INVALID_REQUEST, f"request id {client_id!r} is already in use")
                )
                return
            if method == "initialize" and isinstance(params, dict):
                capabilities = params.get("capabilities")
                session.capabilities = capabilities if isinstance(capabilities, dict) else {}
            entry = _Pending(session, client_id, method)
            token = _progress_token(params)
            if token is not None and _hashable(token):
                entry.token = token
                self.progress[token] = (session, token, client_id)
            self.pending[client_id] = entry
            session.inflight[client_id] = client_id
            self.send(raw or dumps(message))
            return
        if method == "logging/setLevel" and isinstance(params, dict) and params.get("level") in LOG_LEVELS:
            session.log_level = params["level"]
            lowest = min(
                (s.log_level for s in self.sessions if s.log_level and not s.closed),
                key=LOG_LEVELS.__getitem__,
                default=session.log_level,
            )
            if lowest == self.child_level:
                session.respond(client_id, dumps({"jsonrpc": "2.0", "id": client_id, "result": {}}))
                return
            self.child_level = lowest
            message["params"] = {**params, "level": lowest}
        elif method == "resources/subscribe" and isinstance(params, dict) and isinstance(params.get("uri"), str):
            uri = params["uri"]
            subscribers = self.subscribers.setdefault(uri, set())
            already = bool(subscribers)
            subscribers.add(session)
            session.subscriptions.add(uri)
            if already:
                session.respond(client_id, dumps({"jsonrpc": "2.0", "id": client_id, "result": {}}))
                return
        elif method == "resources/unsubscribe" and isinstance(params, dict) and isinstance(params.get("uri"), str):
            uri = params["uri"]
            subscribers = self.subscribers.get(uri, set())
            subscribers.discard(session)
            session.subscriptions.discard(uri)
            if subscribers:
                session.respond(client_id, dumps({"jsonrpc": "2.0", "id": client_id, "result": {}}))
                return
            self.subscribers.pop(uri, None)
        upstream_id = self._new_id()
        entry = _Pending(session, client_id, method)
        if method == "resources/subscribe":
            entry.uri = params["uri"]
        token = _progress_token(params)
        if token is not None:
            entry.token = upstream_id
            self.progress[upstream_id] = (session, token, client_id)
            params = message["params"] = {**params, "_meta": {**params["_meta"], "progressToken": upstream_id}}
        self.pending[upstream_id] = entry
        session.inflight[client_id] = upstream_id
        message["id"] = upstream_id
        self.send(dumps(message))

    def _client_notification(
        self, session: ClientSession, message: dict[str, Any], method: str, raw: bytes | None
    ) -> None:
        if method == "notifications/cancelled":
            params: Any = message.get("params")
            client_id = params.get("requestId") if isinstance(params, dict) else None
            upstream_id = session.inflight.pop(client_id, None) if _hashable(client_id) else None
            if upstream_id is None:
                return  # answered already, or never asked: nothing to cancel
            entry = self.pending.get(upstream_id)
            if entry is not None:
                entry.cancelled = True
            if self.exclusive:
                self.send(raw or dumps(message))
            else:
                self.send(dumps({**message, "params": {**params, "requestId": upstream_id}}))
            session.cancelled(client_id)
            return
        if not self.exclusive:
            if method == "notifications/initialized":
                return  # the bridge initialized the shared child itself
            if method == "notifications/roots/list_changed":
                self.roots_hint = session
        self.send(raw or dumps(message))

    def detach(self, session: ClientSession, reason: str) -> None:
        """Forget a session that ended: its requests are cancelled on the child, the child's
        requests to it are answered with an error, and its subscriptions are dropped."""
        self.sessions.discard(session)
        if self.roots_hint is session:
            self.roots_hint = None
        if self.exclusive:
            return  # the child goes with the session
        for upstream_id in session.inflight.values():
            entry = self.pending.get(upstream_id)
            if entry is not None:
                entry.cancelled = True
            self.send(
                dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {"requestId": upstream_id, "reason": reason},
                    }
                )
            )
        session.inflight.clear()
        for request_id, owner in list(self.server_requests.items()):
            if owner is session:
                del self.server_requests[request_id]
                self.send(
                    error_message(
                        request_id, INTERNAL_ERROR, f"the client session this request went to ended ({reason})"
                    )
                )
        for uri in session.subscriptions:
            subscribers = self.subscribers.get(uri)
            if subscribers is not None:
                subscribers.discard(session)
                if not subscribers:
                    del self.subscribers[uri]
                    self.request("resources/unsubscribe", {"uri": uri}, lambda answer: None)
        session.subscriptions.clear()

    # -- child → client -------------------------------------------------------------------

    def from_child(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            logging.getLogger("child").warning("not JSON-RPC on stdout: %s", line[:200].decode(errors="replace"))
            return
        if isinstance(message, list):  # a batch, as 2025-03-26 allowed
            for item in message:
                self._from_child(item, None)
        else:
            self._from_child(message, line)

    def _from_child(self, message: Any, raw: bytes | None) -> None:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            logging.getLogger("child").warning("not JSON-RPC on stdout: %s", str(message)[:200])
            return
        raw = one_line(raw)
        method = message.get("method")
        if method is None:
            self._child_answer(message, raw)
        elif "id" in message:
            self._child_request(message, method, raw)
        else:
            self._child_notification(message, method, raw)

    def _child_answer(self, message: dict[str, Any], raw: bytes | None) -> None:
        upstream_id = message.get("id")
        entry = self.pending.pop(upstream_id, None) if _hashable(upstream_id) else None
        if entry is None:
            log.debug("dropped an answer to no pending request: %r", upstream_id)
            return
        if entry.token is not None:
            self.progress.pop(entry.token, None)
        session = entry.session
        if session is None:  # the bridge's own request: its callback takes the answer
            if entry.callback is not None:
                entry.callback(message)
            return
        if "error" in message and entry.uri is not None:  # a failed subscribe subscribes no one
            subscribers = self.subscribers.get(entry.uri, set())
            subscribers.discard(session)
            session.subscriptions.discard(entry.uri)
            if not subscribers:
                self.subscribers.pop(entry.uri, None)
        if entry.cancelled or session.closed:
            return
        session.inflight.pop(entry.client_id, None)
        if self.exclusive:
            if entry.method == "initialize" and isinstance(message.get("result"), dict):
                session.protocol_version = message["result"].get("protocolVersion", LATEST_HANDSHAKE)
                session.ready = True
            session.respond(entry.client_id, raw or dumps(message))
        else:
            message["id"] = entry.client_id
            session.respond(entry.client_id, dumps(message))

    def _child_request(self, message: dict[str, Any], method: str, raw: bytes | None) -> None:
        request_id = message["id"]
        if not self.exclusive and method == "ping":
            self.send(dumps({"jsonrpc": "2.0", "id": request_id, "result": {}}))
            return
        params: Any = message.get("params")  # JSON from the server, checked where it is used
        session, why = self._route(method, params)
        if session is None:
            log.info("answered the server's %s with an error: %s", method, why)
            code = METHOD_NOT_FOUND if why.startswith("no client session") else INTERNAL_ERROR
            self.send(error_message(request_id, code, why))
            return
        if _hashable(request_id):
            self.server_requests[request_id] = session
        session.push(raw or dumps(message), session.related_request())

    def _route(self, method: str, params: Any) -> tuple[ClientSession | None, str]:
        """The session that should answer the server's request, or None and why not."""
        live = [s for s in self.sessions if s.ready and not s.closed]
        if self.exclusive:
            return (live[0], "") if live else (None, "no client session is connected")
        able = [s for s in live if s.supports(method, params)]
        if not able:
            capability = _CAPABILITY.get(method)
            declared = f": none declared the {capability!r} capability" if capability and live else ""
            return None, f"no client session connected to the bridge can answer {method}{declared}"
        busy = [s for s in able if s.inflight]
        if len(busy) == 1:
            return busy[0], ""
        if len(busy) > 1:
            return None, (
                f"the bridge cannot tell which client session {method} is for: {len(busy)} "
                "sessions have requests in flight (run this server with sessions: per_client "
                "to give each session its own server)"
            )
        if method == "roots/list" and self.roots_hint in able:
            return self.roots_hint, ""
        if len(able) == 1:
            return able[0], ""
        return None, (
            f"the bridge cannot tell which client session {method} is for: {len(able)} "
            "sessions could answer and none has a request in flight"
        )

    def _child_notification(self, message: dict[str, Any], method: str, raw: bytes | None) -> None:
        params: Any = message.get("params")  # JSON from the server, checked where it is used
        if self.on_event is not None and method in _EVENTS:
            self.on_event(method, params if isinstance(params, dict) else {})
        if method == "notifications/progress":
            token = params.get("progressToken") if isinstance(params, dict) else None
            found = self.progress.get(token) if _hashable(token) else None
            if found is None:
                log.debug("dropped progress for no pending request: %r", token)
                return
            session, client_token, client_id = found
            if not self.exclusive:
                message["params"] = {**params, "progressToken": client_token}
                raw = None
            session.push(raw or dumps(message), client_id)
            return
        if method == "notifications/cancelled":  # the server gave up a request it sent
            request_id = params.get("requestId") if isinstance(params, dict) else None
            asker = self.server_requests.pop(request_id, None) if _hashable(request_id) else None
            if asker is not None and not asker.closed:
                asker.push(raw or dumps(message), asker.related_request())
            return
        data = raw or dumps(message)
        if self.exclusive:
            # Over stdio nothing says which request a notification belongs to; with one request
            # in flight it most likely belongs to that one, and keeps its place before the answer.
            for session in self.sessions:
                if not session.closed:
                    session.push(data, session.related_request())
            return
        targets: Collection[ClientSession]
        if method == "notifications/resources/updated":
            uri = params.get("uri") if isinstance(params, dict) else None
            targets = self.subscribers.get(uri, ()) if isinstance(uri, str) else ()
        elif method == "notifications/message":
            level: Any = params.get("level") if isinstance(params, dict) else None  # any JSON: unknown ranks last
            rank = LOG_LEVELS.get(level, len(LOG_LEVELS))
            targets = [
                s
                for s in self.sessions
                if (s.log_level is None and s.logs_by_default)
                or (s.log_level is not None and LOG_LEVELS[s.log_level] <= rank)
            ]
        else:
            targets = [s for s in self.sessions if s.standalone]
        for session in list(targets):  # these concern the session, not a request: its GET stream
            if session.ready and not session.closed:
                session.push(data)

    def purge_cancelled(self, older_than: float) -> None:
        """Forget cancelled requests the child never answered."""
        limit = time.monotonic() - older_than
        for upstream_id, entry in list(self.pending.items()):
            if entry.cancelled and entry.since < limit:
                del self.pending[upstream_id]
                if entry.token is not None:
                    self.progress.pop(entry.token, None)


def _progress_token(params: Any) -> Any:
    if isinstance(params, dict):
        meta = params.get("_meta")
        if isinstance(meta, dict):
            return meta.get("progressToken")
    return None


def _hashable(value: Any) -> bool:
    """Whether ``value`` can be a JSON-RPC id or progress token (a string or a number)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _version() -> str:
    from open1panel_ai import __version__

    return __version__
