"""``subscriptions/listen`` (2026-07-28) served by the bridge for a child of the handshake era.

At 2026-07-28 there is no session and no GET stream: a client that wants change notifications
sends ``subscriptions/listen`` with the kinds it wants (``toolsListChanged``,
``promptsListChanged``, ``resourcesListChanged``, ``resourceSubscriptions``), and the response
*is* the stream. The child speaks 2025-11-25 and knows nothing of it, so the bridge serves it:

- it subscribes the child to each URI asked for (``resources/subscribe``, counted with every
  other session's subscriptions, so the child is subscribed while anyone is);
- it acknowledges with ``notifications/subscriptions/acknowledged`` carrying what it honors:
  every ``list_changed`` kind asked for, and the URIs the child accepted (none when the child
  does not declare ``resources.subscribe``);
- every ``list_changed`` and ``resources/updated`` that any child of this bridge sends (the
  shared one, a session's own, another request's) is published to every listen stream whose
  filter takes it, stamped with ``_meta["io.modelcontextprotocol/subscriptionId"]`` (the
  listen request's id), the child's own params and ``_meta`` kept;
- the bridge stopping ends each stream gracefully (a result carrying the subscription id); the
  child exiting ends it with an error, so the client knows to listen again and refetch.

The wire format is the ``mcp`` SDK's (:mod:`mcp.server.subscriptions`). Log messages are not
carried: at this revision ``notifications/message`` may only ride the stream of the request
that asked for it.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from open1panel_ai.mcp.passthrough.relay import INTERNAL_ERROR, ClientSession, dumps, error_message

if TYPE_CHECKING:
    from open1panel_ai.mcp.passthrough.app import Bridge
    from open1panel_ai.mcp.passthrough.httpd import Connection

log = logging.getLogger("open1panel_ai.mcp.passthrough")

SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
#: The filter's flags and the notification each one lets through.
LIST_FLAGS = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}
UPDATED = "notifications/resources/updated"
#: What rides a listen stream at 2026-07-28, and nothing else does.
LISTEN_METHODS = frozenset({*LIST_FLAGS.values(), UPDATED})


def filter_problem(params: Any) -> str | None:
    """Why ``params`` is not a ``subscriptions/listen`` filter, or None."""
    wanted = params.get("notifications") if isinstance(params, dict) else None
    if not isinstance(wanted, dict):
        return "params.notifications must be an object (the notifications to listen for)"
    for flag in LIST_FLAGS:
        if wanted.get(flag) is not None and not isinstance(wanted[flag], bool):
            return f"params.notifications.{flag} must be a boolean"
    uris = wanted.get("resourceSubscriptions")
    if uris is not None and not (isinstance(uris, list) and all(isinstance(u, str) for u in uris)):
        return "params.notifications.resourceSubscriptions must be a list of URIs"
    return None


class ListenSession(ClientSession):
    """One ``subscriptions/listen`` stream (see the module's docstring).

    It is attached to a child only to hold its resource subscriptions there: it answers no
    request of the child's and takes no notification from the child directly; what it sends
    comes from :meth:`publish`, for whichever child it was.
    """

    transport = "streamable-http (2026-07-28 subscriptions/listen)"
    logs_by_default = False
    standalone = False

    def __init__(self, bridge: Bridge, message: dict[str, Any], conn: Connection) -> None:
        super().__init__(os.urandom(16).hex())
        self.bridge = bridge
        self.request_id = message["id"]
        self.meta = {SUBSCRIPTION_ID_KEY: self.request_id}
        wanted = message["params"]["notifications"]
        self.methods = {method for flag, method in LIST_FLAGS.items() if wanted.get(flag) is True}
        self.wanted_uris = list(dict.fromkeys(wanted.get("resourceSubscriptions") or ()))
        self.uris: set[str] = set()
        #: Subscribe requests sent to the child and not answered yet: their id → the URI.
        self.subscribing: dict[str, str] = {}
        self.conn: Connection | None = conn
        self.acked = False
        #: Events published before the acknowledgment, sent right after it (deduplicated:
        #: each is a level trigger, "this changed", so one of each is as good as many).
        self.backlog: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.ready = True
        self.owns_upstream = False
        conn.on_close = self._lost

    def start(self, subscribe: bool) -> None:
        """Subscribe the child to the URIs asked for (when it can be), then acknowledge."""
        if subscribe and self.upstream is not None:
            for number, uri in enumerate(self.wanted_uris, 1):
                request_id = f"listen-subscribe-{number}"
                self.subscribing[request_id] = uri
            for request_id, uri in list(self.subscribing.items()):
                request = {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "resources/subscribe",
                    "params": {"uri": uri},
                }
                self.upstream.from_client(self, request, None)
        if not self.subscribing:
            self._acknowledge()

    # -- ClientSession --------------------------------------------------------------------

    def respond(self, client_id: Any, data: bytes) -> None:
        uri = self.subscribing.pop(client_id, None)
        if uri is None:
            return
        if isinstance(json.loads(data).get("result"), dict):
            self.uris.add(uri)
        else:
            log.info("listen stream %r: the server refused to subscribe to %s", self.request_id, uri)
        if not self.subscribing:
            self._acknowledge()

    def push(self, data: bytes, related: Any = None) -> None:
        """Nothing the child sends reaches the stream this way (see :meth:`publish`)."""

    def supports(self, method: str, params: Any) -> bool:
        return False  # a listen stream answers no request of the server's

    @property
    def busy(self) -> bool:
        return self.conn is not None

    def ping(self) -> None:
        if self.conn is not None and self.acked:
            self.conn.send(b": ping\n\n")

    def close_streams(self, text: str) -> None:
        """Ended by the bridge: the client gets an error, and knows to listen again."""
        self._end(error_message(self.request_id, INTERNAL_ERROR, text))

    def end_gracefully(self) -> None:
        """The bridge is stopping: the stream ends with its result, as the revision says."""
        self._end(
            dumps({"jsonrpc": "2.0", "id": self.request_id, "result": {"_meta": self.meta, "resultType": "complete"}})
        )

    # -- the stream -----------------------------------------------------------------------

    def publish(self, method: str, params: dict[str, Any]) -> None:
        """A child sent ``method``: pass it on when this stream's filter takes it."""
        uri = params.get("uri") if method == UPDATED else None
        if method == UPDATED:
            if (
                not isinstance(uri, str)
                or (self.acked and uri not in self.uris)
                or (not self.acked and uri not in self.wanted_uris)
            ):
                return
        elif method not in self.methods:
            return
        meta = params.get("_meta")
        stamped = {**params, "_meta": {**(meta if isinstance(meta, dict) else {}), **self.meta}}
        if not self.acked:
            self.backlog[(method, uri)] = stamped
            return
        self._send({"jsonrpc": "2.0", "method": method, "params": stamped})

    def _acknowledge(self) -> None:
        conn = self.conn
        if self.acked or conn is None or self.closed:
            return
        self.acked = True
        honored: dict[str, Any] = {flag: True for flag, method in LIST_FLAGS.items() if method in self.methods}
        if self.uris:
            honored["resourceSubscriptions"] = [uri for uri in self.wanted_uris if uri in self.uris]
        conn.start_stream()
        self._send(
            {
                "jsonrpc": "2.0",
                "method": "notifications/subscriptions/acknowledged",
                "params": {"notifications": honored, "_meta": self.meta},
            }
        )
        backlog, self.backlog = self.backlog, {}
        for (method, uri), params in backlog.items():
            if method != UPDATED or uri in self.uris:
                self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def _send(self, message: dict[str, Any]) -> None:
        conn = self.conn
        if conn is None:
            return
        conn.send(b"event: message\ndata: %b\n\n" % dumps(message))
        self.bridge.check_slow(self, conn)

    def _end(self, data: bytes) -> None:
        conn, self.conn = self.conn, None
        if conn is None or conn.closed:
            return
        conn.on_close = None
        if self.acked:
            conn.send(b"event: message\ndata: %b\n\n" % data)
            conn.end_stream()
        else:
            conn.respond(200, data, "application/json")

    def _lost(self) -> None:
        """The client closed the stream: the subscription ends."""
        self.conn = None
        self.bridge.close_session(self, "the client closed its listen stream", quiet=True)
