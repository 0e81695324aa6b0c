"""A remote Streamable HTTP server in the place of a stdio child.

:class:`RemoteChild` has the interface of :class:`.child.Child` (``send``, ``unsent``,
``alive``, ``stop``, with ``on_line`` and ``on_exit``), so :class:`.relay.Upstream` relays to a
remote server exactly as to a child: ids, progress tokens, subscriptions, server→client
requests and cancels are routed the same way, and the messages pass as they came.

On the wire it is a Streamable HTTP client of the 2025 era, with the configured headers:

- each message goes in a POST of its own; the answer comes as JSON or as an event stream,
  whose every event is handed on as it arrives (progress before the result, a server's request
  in the middle);
- the ``Mcp-Session-Id`` the server gives at ``initialize`` and the negotiated
  ``MCP-Protocol-Version`` go with every later request;
- the GET stream carries what the server starts (``list_changed``, updates, log messages,
  its requests); dropped, it is opened again with ``Last-Event-ID``, a few times, backing off;
- a refused POST (a 4xx or 5xx) answers the requests it carried with a JSON-RPC error that
  gives the status; a refused ``initialize``, an unreachable server or a session the server
  forgot ends the upstream, as a child's exit does;
- stopping ends the session with DELETE.

Nothing of a remote URL's userinfo or query string reaches the log (:class:`open1panel_ai.mcp.urls.MaskedURL`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("open1panel_ai.mcp.passthrough")

INTERNAL_ERROR = -32603
#: How many times in a row the GET stream is opened again after it dropped, and the longest
#: wait between tries, in seconds.
GET_RETRIES = 5
GET_BACKOFF_MAX = 5.0


class RemoteChild:
    """One session with a remote Streamable HTTP server (see the module's docstring)."""

    pid = None

    def __init__(
        self,
        on_line: Callable[[bytes], None],
        on_exit: Callable[[int | None], None],
        max_line: int,
        config: Mapping[str, Any],
    ) -> None:
        self._on_line = on_line
        self._on_exit = on_exit
        self.max_line = max_line
        self.url: str = config["url"]
        self.headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        #: The HTTP client, from :meth:`start` until the upstream is over.
        self.client: httpx.AsyncClient | None = None
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.gone = False
        self.tasks: set[asyncio.Task] = set()
        self.get_task: asyncio.Task | None = None
        #: Bytes of POST bodies the server has not taken yet.
        self.pending_bytes = 0

    async def start(self, *_ignored: Any) -> None:
        import httpx  # only a bridge with a remote upstream pays for it

        self._httpx = httpx
        self.client = httpx.AsyncClient(
            headers=self.headers, timeout=httpx.Timeout(30, read=None), follow_redirects=False
        )

    @property
    def alive(self) -> bool:
        return self.client is not None and not self.gone

    def send(self, line: bytes) -> None:
        """POST one message (or a batch); what the server answers comes to ``on_line``."""
        client = self.client
        if client is not None and not self.gone:  # alive
            self._spawn(self._post(client, line))

    def unsent(self) -> int:
        return self.pending_bytes

    async def stop(self, grace: float = 2.0) -> None:
        """End the session (DELETE), then the connections; ``on_exit`` follows."""
        if self.client is None or self.gone:
            return
        if self.session_id is not None:
            try:
                await self.client.delete(self.url, headers=self._headers(), timeout=grace)
            except self._httpx.HTTPError:
                pass  # the server forgets the session on its own then
        self._lost(None, 0)

    # -- the wire -------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _headers(self, accept: str = "application/json, text/event-stream") -> dict[str, str]:
        headers = {"accept": accept}
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version is not None:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    async def _post(self, client: httpx.AsyncClient, line: bytes) -> None:
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        items = parsed if isinstance(parsed, list) else [parsed]
        requests = [m for m in items if isinstance(m, dict) and "method" in m and "id" in m]
        initialize = next((m["id"] for m in requests if m["method"] == "initialize"), None)
        headers = {**self._headers(), "content-type": "application/json"}
        self.pending_bytes += len(line)
        counted = True
        try:
            async with client.stream("POST", self.url, content=line, headers=headers) as response:
                self.pending_bytes -= len(line)
                counted = False
                status = response.status_code
                if status >= 400:
                    await self._refused(response, requests, initialize is not None)
                    return
                if initialize is not None and response.headers.get("mcp-session-id"):
                    self.session_id = response.headers["mcp-session-id"]
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "text/event-stream":
                    async for _event_id, data in _events(response):
                        self._deliver(data, initialize)
                elif kind == "application/json":
                    self._deliver(await response.aread(), initialize)
        except self._httpx.HTTPError as exc:
            if self.alive:
                self._lost(f"the remote server cannot be reached: {_describe(exc)}")
        finally:
            if counted:
                self.pending_bytes -= len(line)

    async def _refused(self, response: httpx.Response, requests: list[dict[str, Any]], initialize: bool) -> None:
        status = response.status_code
        body = await response.aread()
        log.error("the remote server answered %d to POST %s", status, self.url)
        if initialize:
            self._lost(f"the remote server refused initialize (HTTP {status})")
            return
        if status == 404 and self.session_id is not None:
            self._lost("the remote server no longer knows the session (HTTP 404)")
            return
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        for request in requests:
            if isinstance(answer, dict) and answer.get("id") == request["id"] and "error" in answer:
                error = answer["error"]  # the server's own JSON-RPC error, as it gave it
            else:
                error = {"code": INTERNAL_ERROR, "message": f"the remote MCP server answered HTTP {status}"}
            self._on_line(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode())

    def _deliver(self, data: bytes, initialize: Any) -> None:
        data = data.strip()
        if not data:
            return
        if len(data) > self.max_line:
            logging.getLogger("child").warning(
                "a message from the remote server was longer than %d bytes and was dropped", self.max_line
            )
            return
        if initialize is not None and self.protocol_version is None:
            try:
                message = json.loads(data)
            except ValueError:
                message = None
            result = message.get("result") if isinstance(message, dict) else None
            if isinstance(result, dict) and message.get("id") == initialize:
                version = result.get("protocolVersion")
                self.protocol_version = version if isinstance(version, str) else None
                self._on_line(data)
                self.get_task = asyncio.get_running_loop().create_task(self._standalone())
                return
        self._on_line(data)

    async def _standalone(self) -> None:
        """The GET stream, for what the server starts; opened again when it drops."""
        await asyncio.sleep(0)  # after ``notifications/initialized`` has gone out
        last_event_id: str | None = None
        failures = 0
        while (client := self.client) is not None and not self.gone:  # alive
            headers = self._headers("text/event-stream")
            if last_event_id is not None:
                headers["last-event-id"] = last_event_id
            try:
                async with client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code == 405:
                        return  # the server offers no such stream
                    if response.status_code == 404 and self.session_id is not None:
                        self._lost("the remote server no longer knows the session (HTTP 404)")
                        return
                    if response.status_code < 400:
                        failures = 0
                        async for event_id, data in _events(response):
                            last_event_id = event_id or last_event_id
                            self._deliver(data, None)
                    else:
                        await response.aread()
            except self._httpx.HTTPError:
                pass
            failures += 1
            if failures > GET_RETRIES:
                log.warning(
                    "the remote server's stream of its own messages could not be opened again; "
                    "its notifications and requests outside a request are not received"
                )
                return
            await asyncio.sleep(min(GET_BACKOFF_MAX, 0.5 * 2**failures))

    def _lost(self, reason: str | None, status: int | None = None) -> None:
        """The upstream is over: said once, then its connections go."""
        if self.gone:
            return
        self.gone = True
        if reason is not None:
            log.error("%s", reason)
        for task in [*self.tasks, self.get_task]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        client, self.client = self.client, None
        if client is not None:
            asyncio.get_running_loop().create_task(client.aclose())
        self._on_exit(status)


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str | None, bytes]]:
    """The ``(id, data)`` of each message event of an event stream, as each completes."""
    data: list[str] = []
    event_id: str | None = None
    kind = "message"
    async for line in response.aiter_lines():
        if not line:
            if data and kind == "message":
                yield event_id, "\n".join(data).encode()
            data, kind = [], "message"
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
        elif field == "event":
            kind = value
    if data and kind == "message":
        yield event_id, "\n".join(data).encode()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
