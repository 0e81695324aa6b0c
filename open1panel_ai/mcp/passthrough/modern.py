"""The stateless 2026-07-28 revision, served in front of a child of the handshake era.

A 2026-07-28 client sends no ``initialize`` and keeps no session: every request is a POST of
its own, with its protocol version, client info and capabilities in ``params._meta`` and the
``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` headers. The bridge checks these
the way the revision asks (:func:`classify`), answers ``server/discover`` itself from the
child's ``initialize`` answer, and relays every other request as a one-request
:class:`ModernSession` on the child.

A child of the handshake era asks the client for input with a request of its own (sampling,
elicitation, roots). A 2026-07-28 client takes no such request: the bridge answers the
client's request with an ``input_required`` result that embeds it, keyed, with an opaque
``requestState``. The client retries its request carrying ``inputResponses`` and that
``requestState``; the bridge hands each response to the child as the answer to its request,
and the child's final result answers the retry. The child's request stays in flight across
the rounds, so nothing is run twice.

Between an ``input_required`` answer and the retry the request has no response stream, and the
child keeps running: progress and log messages it sends then are held (within
``max_unsent_bytes``; a request that would hold more is dropped with a logged reason) and are
written first on the retry's stream, progress under the retry's token, in the order the child
sent them.

Cancelling is closing the request's response stream: the child gets ``notifications/cancelled``.
Log messages reach a request that asked for them (``io.modelcontextprotocol/logLevel``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from open1panel_ai.mcp.passthrough.relay import (
    HANDSHAKE_VERSIONS,
    INVALID_REQUEST,
    LOG_LEVELS,
    METHOD_NOT_FOUND,
    MODERN_VERSIONS,
    ClientSession,
    dumps,
    error_message,
)

if TYPE_CHECKING:
    from open1panel_ai.mcp.passthrough.app import Bridge
    from open1panel_ai.mcp.passthrough.httpd import Connection

log = logging.getLogger("open1panel_ai.mcp.passthrough")

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

INVALID_PARAMS = -32602
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022

#: The HTTP status of an error answered as plain JSON, by JSON-RPC code (as the revision says).
ERROR_STATUS = {
    -32700: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    -32021: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}
#: Methods whose ``Mcp-Name`` header repeats a parameter, and which parameter.
NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
#: Server→client requests that become an ``input_required`` result.
INPUT_METHODS = frozenset({"sampling/createMessage", "elicitation/create", "roots/list"})
#: Methods whose results carry caching directives at 2026-07-28. A child of the handshake era
#: gives none: the bridge says "do not keep it, and keep it private", which is always true.
CACHEABLE = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"})
#: What every served revision is, oldest first, as ``server/discover`` lists them.
SUPPORTED = [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS]


def decode_header(value: str | None) -> str | None:
    """A header value as the client meant it: ``=?base64?…?=`` holds UTF-8 that would not
    travel as a header; a malformed one is None (it can then match nothing)."""
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    payload = value[9:-2]
    try:
        decoded = base64.b64decode(payload, validate=True)
        if base64.b64encode(decoded).decode("ascii") != payload:
            return None
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def classify(message: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, Any] | None:
    """Why a 2026-07-28 request is refused (JSON-RPC code, text, data), or None: the
    ``_meta`` envelope, then the headers against the body, then the revision."""
    params: Any = message.get("params")  # the client's JSON, checked below
    meta = params.get("_meta") if isinstance(params, dict) else None
    if not isinstance(meta, dict):
        return (
            INVALID_PARAMS,
            f"params._meta must be an object carrying the required {PROTOCOL_VERSION_KEY!r} "
            f"and {CLIENT_CAPABILITIES_KEY!r} envelope keys",
            None,
        )
    missing = [key for key in (PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY) if key not in meta]
    if missing:
        return INVALID_PARAMS, f"params._meta is missing the required envelope key(s): {', '.join(missing)}", None
    version = meta[PROTOCOL_VERSION_KEY]
    if headers.get("mcp-protocol-version") != version:
        return (
            HEADER_MISMATCH,
            "mcp-protocol-version header does not match the request envelope's protocol version",
            None,
        )
    method = message["method"]
    if headers.get("mcp-method") != method:
        return HEADER_MISMATCH, "mcp-method header does not match the request body's method", None
    name_key = NAME_PARAMS.get(method)
    if (
        name_key is not None
        and params.get(name_key) is not None
        and decode_header(headers.get("mcp-name")) != params[name_key]
    ):
        return HEADER_MISMATCH, f"mcp-name header does not match the request body's {name_key!r} parameter", None
    if version not in MODERN_VERSIONS:
        return (
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            {"supported": SUPPORTED, "requested": version},
        )
    return None


#: The ``_meta`` keys of the 2026-07-28 envelope, which a child of the handshake era refuses.
ENVELOPE_KEYS = (PROTOCOL_VERSION_KEY, CLIENT_INFO_KEY, CLIENT_CAPABILITIES_KEY, LOG_LEVEL_KEY)


def for_handshake_child(message: dict[str, Any]) -> dict[str, Any]:
    """The request as the handshake era spells it: the envelope leaves ``_meta`` (the child
    learned the bridge's identity and capabilities at ``initialize``); every other key of
    ``_meta``, a progress token say, stays as it came."""
    params = message["params"]
    meta = {key: value for key, value in params["_meta"].items() if key not in ENVELOPE_KEYS}
    params = {key: value for key, value in params.items() if key != "_meta"}
    if meta:
        params["_meta"] = meta
    return {**message, "params": params}


def discover_result(init_result: dict[str, Any]) -> dict[str, Any]:
    """``server/discover``'s answer, from the child's ``initialize`` answer: what it can do,
    its instructions, and its name in ``_meta``, with every revision the bridge serves."""
    result: dict[str, Any] = {
        "supportedVersions": SUPPORTED,
        "capabilities": init_result.get("capabilities") or {},
        "ttlMs": 0,
        "cacheScope": "private",
        "resultType": "complete",
    }
    if isinstance(init_result.get("instructions"), str):
        result["instructions"] = init_result["instructions"]
    if isinstance(init_result.get("serverInfo"), dict):
        result["_meta"] = {SERVER_INFO_KEY: init_result["serverInfo"]}
    return result


class ModernSession(ClientSession):
    """One request of a 2026-07-28 client, over every round it takes (see the module)."""

    transport = "streamable-http (2026-07-28)"
    #: It gets log messages only when it asked for them, and none of a session's own
    #: notifications (those ride ``subscriptions/listen`` at this revision).
    logs_by_default = False
    standalone = False

    def __init__(self, bridge: Bridge, message: dict[str, Any]) -> None:
        super().__init__(os.urandom(16).hex())
        self.bridge = bridge
        meta = message["params"]["_meta"]
        self.protocol_version = meta[PROTOCOL_VERSION_KEY]
        capabilities = meta.get(CLIENT_CAPABILITIES_KEY)
        self.capabilities = capabilities if isinstance(capabilities, dict) else {}
        level = meta.get(LOG_LEVEL_KEY)
        self.log_level = level if level in LOG_LEVELS else None
        self.ready = True
        self.method = message["method"]
        self.name = message["params"].get(NAME_PARAMS.get(self.method, ""))
        self.first_id = message["id"]
        #: The current round: the client's request id, its progress token, where it is answered.
        self.round_id: Any = message["id"]
        self.token: Any = _progress_token(message["params"])
        self.conn: Connection | None = None
        self.can_stream = False
        self.streaming = False
        #: Input requests waiting for the client: key → the child's request id.
        self.asked: dict[str, Any] = {}
        #: The child's requests that came while no round was open, to be asked next.
        self.queued: list[dict[str, Any]] = []
        self.state: str | None = None
        self.parked_since: float | None = None
        self.final: dict[str, Any] | None = None
        #: Progress and log messages the child sent while no round was open, and their size.
        self.held: list[dict[str, Any]] = []
        self.held_bytes = 0
        self.counter = 0
        self.owns_upstream = False

    # -- rounds ---------------------------------------------------------------------------

    def open_round(self, conn: Connection, request_id: Any, token: Any, can_stream: bool) -> None:
        """The response of a new round (the first request, or a retry) goes to ``conn``."""
        self.conn, self.round_id, self.can_stream, self.streaming = conn, request_id, can_stream, False
        if token is not None:
            self.token = token
        self.parked_since = None
        self.last_active = time.monotonic()
        conn.on_close = self._lost

    def retry(self, conn: Connection, message: dict[str, Any], can_stream: bool) -> None:
        """A retry carrying ``inputResponses``: each goes to the child as its answer. What the
        child sent while the client was away comes first, before anything it sends after."""
        params = message["params"]
        self.open_round(conn, message["id"], _progress_token(params), can_stream)
        held, self.held, self.held_bytes = self.held, [], 0
        for event in held:
            self._event(event)
        responses = params.get("inputResponses")
        responses = responses if isinstance(responses, dict) else {}
        asked, self.asked = self.asked, {}
        for key, child_id in asked.items():
            if isinstance(responses.get(key), dict):
                answer = {"jsonrpc": "2.0", "id": child_id, "result": responses[key]}
            else:
                answer = {
                    "jsonrpc": "2.0",
                    "id": child_id,
                    "error": {
                        "code": INVALID_REQUEST,
                        "message": f"the client sent no answer for input request {key!r}",
                    },
                }
            if self.upstream is not None:
                self.upstream.from_client(self, answer, None)
        if self.final is not None:
            final, self.final = self.final, None
            self._answer(final)
        elif self.queued:
            queued, self.queued = self.queued, []
            self._ask(queued)

    def _lost(self) -> None:
        """The client closed the response: that cancels the request."""
        self.conn = None
        if not self.closed and self.parked_since is None:
            self.bridge.close_session(self, "the client closed its request", quiet=True)

    # -- ClientSession --------------------------------------------------------------------

    def respond(self, client_id: Any, data: bytes) -> None:
        message = json.loads(data)
        result = message.get("result")
        if isinstance(result, dict):
            # What the 2026-07-28 schema requires of a result and the handshake era lacks.
            result = {"resultType": "complete", **result}
            if self.method in CACHEABLE:
                result = {"ttlMs": 0, "cacheScope": "private", **result}
            message["result"] = result
        if self.conn is None:
            self.final = message  # the client comes back for it with its retry
            return
        self._answer(message)

    def _answer(self, message: dict[str, Any]) -> None:
        message["id"] = self.round_id
        conn, self.conn = self.conn, None
        self.bridge.close_session(self, "answered", quiet=True)
        if conn is None:
            return
        conn.on_close = None
        data = dumps(message)
        if self.streaming:
            conn.send(b"event: message\ndata: %b\n\n" % data)
            conn.end_stream()
        else:
            code: Any = (message.get("error") or {}).get("code")  # the server's JSON: any value
            status = ERROR_STATUS.get(code, 200)
            conn.respond(status, data, "application/json")

    def push(self, data: bytes, related: Any = None) -> None:
        message = json.loads(data)
        method = message.get("method")
        if method in INPUT_METHODS and "id" in message:
            if self.conn is None:
                self.queued.append(message)
            else:
                self._ask([message])
            return
        if method == "notifications/cancelled":  # the child gave up asking
            params = message.get("params") or {}
            self.asked = {k: v for k, v in self.asked.items() if v != params.get("requestId")}
            self.queued = [m for m in self.queued if m.get("id") != params.get("requestId")]
            return
        if method != "notifications/progress" and method != "notifications/message":
            return  # nothing else belongs to one request at this revision
        if self.conn is None and not self.closed:
            self._hold(message, len(data))
        else:
            self._event(message)

    def _hold(self, message: dict[str, Any], size: int) -> None:
        """Keep ``message`` for the retry; a request holding too much is dropped, and says why."""
        self.held.append(message)
        self.held_bytes += size
        limit = self.bridge.max_unsent
        if self.held_bytes > limit:
            log.warning(
                "dropped request %s: its server sent %d bytes of notifications while it waited for "
                "its client's input (the limit is %d)",
                self.id[:8],
                self.held_bytes,
                limit,
            )
            self.bridge.close_session(self, "it held too much while waiting for its client's input", quiet=True)

    def _event(self, message: dict[str, Any]) -> None:
        """Write a notification on the round's stream; progress carries the round's token (each
        round of the client's request has a token of its own)."""
        conn = self.conn
        if conn is None or not self.can_stream:
            return
        if message.get("method") == "notifications/progress":
            if self.token is None:
                return
            message = {**message, "params": {**message["params"], "progressToken": self.token}}
        if not self.streaming:
            self.streaming = True
            conn.start_stream()
        conn.send(b"event: message\ndata: %b\n\n" % dumps(message))
        self.bridge.check_slow(self, conn)

    def _ask(self, requests: list[dict[str, Any]]) -> None:
        """Answer the round with ``input_required``, embedding the child's ``requests``."""
        embedded = {}
        for request in requests:
            self.counter += 1
            key = f"input-{self.counter}"
            self.asked[key] = request["id"]
            embedded[key] = {"method": request["method"], "params": request.get("params") or {}}
        self.state = self.bridge.park(self)
        self.parked_since = time.monotonic()
        conn, self.conn = self.conn, None
        if conn is None:
            return
        conn.on_close = None
        data = dumps(
            {
                "jsonrpc": "2.0",
                "id": self.round_id,
                "result": {"resultType": "input_required", "inputRequests": embedded, "requestState": self.state},
            }
        )
        if self.streaming:
            conn.send(b"event: message\ndata: %b\n\n" % data)
            conn.end_stream()
        else:
            conn.respond(200, data, "application/json")

    def related_request(self) -> Any:
        return self.first_id if self.inflight else None

    @property
    def busy(self) -> bool:
        return self.conn is not None

    def close_streams(self, text: str) -> None:
        self.bridge.unpark(self)
        self.held, self.held_bytes = [], 0
        conn, self.conn = self.conn, None
        if conn is None or conn.closed:
            return
        conn.on_close = None
        data = error_message(self.round_id, -32603, text)
        if self.streaming:
            conn.send(b"event: message\ndata: %b\n\n" % data)
            conn.end_stream()
        else:
            conn.respond(200, data, "application/json")

    def ping(self) -> None:
        if self.conn is not None and self.streaming:
            self.conn.send(b": ping\n\n")


def _progress_token(params: Any) -> Any:
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get("progressToken") if isinstance(meta, dict) else None
