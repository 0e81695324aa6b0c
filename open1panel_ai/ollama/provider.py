"""The built-in Ollama provider ``http``: Ollama's REST API over httpx.

It follows reference/ollama-api.md: errors are ``{"error": text}``, a streamed pull reports an
error as its last line, delete and copy answer an empty body, load and unload are one JSON
object. Failures become the panel's API errors, each naming the server's address.
"""

from __future__ import annotations

import contextvars
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar

import httpx

from hookspecs import hookimpl
from hookspecs.ai import OllamaProvider
from hookspecs.ollama import (
    ChatLine,
    ChatRequest,
    EmbedReply,
    EmbedRequest,
    ModelEntry,
    ModelInfo,
    ProgressLine,
    RunningModel,
)
from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama.wire import fit, fit_all

#: How long to wait for Ollama to accept a connection, and for a quick answer.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0
#: A stream may pause while Ollama verifies a large blob.
STREAM_READ_TIMEOUT = 600.0
#: Loading a large model, or receiving a large blob, may take many minutes, but not forever.
LONG_READ_TIMEOUT = 3600.0
#: A blob upload whose next chunk Ollama does not take in this time has stalled; it also
#: bounds how long a cancel waits while a chunk is being sent.
UPLOAD_WRITE_TIMEOUT = 60.0

_client_lock = threading.Lock()
_client: httpx.Client | None = None

#: A callback ``trace(event, info)`` that requests made in this context report their steps to
#: (httpcore's trace events: ``connection.connect_tcp.started``, ``http11.send_request_headers
#: .started``, ...). The watcher sets it, to know whether a request that takes long is still
#: waiting for a connection or waiting for Ollama's answer (:mod:`.watcher`). Its requests also
#: close their connection when answered: polls come seconds or a minute apart, and a connection
#: left idle that long holds a socket on both sides for nothing and is often cut by then.
request_trace: contextvars.ContextVar[Callable[[str, dict], None] | None] = contextvars.ContextVar(
    "ollama_request_trace", default=None
)


def shared_client() -> httpx.Client:
    """The one HTTP client (and connection pool) of every provider instance: the panel builds
    providers again (the status page does so each time), and a client per instance would
    leave its connections open."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))
        return _client


class HttpOllamaProvider:
    """Talks to any Ollama server by its base URL (:class:`hookspecs.ai.OllamaProvider`).

    Every answer is fitted to the contract's types (:mod:`.wire`): an entry of a list that
    lacks a required key (a model without a text ``name`` or an int ``size``) is left out, and
    a declared key of another type is dropped; the rest passes on as the server sent it."""

    name: ClassVar[str] = "http"

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._client = shared_client()

    def probe(self) -> None:
        """httpx is a dependency, so this provider can always work; each server's own
        reachability is shown per endpoint."""

    # -- reading ----------------------------------------------------------------------------

    def version(self, base_url: str) -> str:
        version = self._json("GET", base_url, "/api/version").get("version", "")
        return version if isinstance(version, str) else ""

    def list_models(self, base_url: str) -> list[ModelEntry]:
        return fit_all(self._json("GET", base_url, "/api/tags").get("models"), ModelEntry)

    def running_models(self, base_url: str) -> list[RunningModel]:
        return fit_all(self._json("GET", base_url, "/api/ps").get("models"), RunningModel)

    def show(self, base_url: str, name: str) -> ModelInfo:
        return fit(self._json("POST", base_url, "/api/show", {"model": name}), ModelInfo) or {}

    # -- changing -----------------------------------------------------------------------------

    def delete(self, base_url: str, name: str) -> None:
        self._request("DELETE", base_url, "/api/delete", {"model": name})

    def copy(self, base_url: str, source: str, destination: str) -> None:
        self._request("POST", base_url, "/api/copy", {"source": source, "destination": destination})

    def load(self, base_url: str, name: str, keep_alive: str | int, options: Mapping[str, Any]) -> None:
        body: dict[str, Any] = {"model": name, "keep_alive": keep_alive, "stream": False}
        if options:
            body["options"] = dict(options)
        self._request(
            "POST", base_url, "/api/generate", body, timeout=httpx.Timeout(LONG_READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        )

    def unload(self, base_url: str, name: str) -> None:
        self._request("POST", base_url, "/api/generate", {"model": name, "keep_alive": 0, "stream": False})

    def pull(self, base_url: str, name: str) -> LineStream[ProgressLine]:
        return LineStream(self._client, base_url, "/api/pull", {"model": name, "stream": True}, ProgressLine)

    def blob_exists(self, base_url: str, digest: str) -> bool:
        response = self._request("HEAD", base_url, f"/api/blobs/{digest}", accept=(200, 404))
        return response.status_code == 200

    def upload_blob(self, base_url: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        self._request(
            "POST",
            base_url,
            f"/api/blobs/{digest}",
            content=chunks,
            headers={"Content-Length": str(size)},
            timeout=httpx.Timeout(LONG_READ_TIMEOUT, connect=CONNECT_TIMEOUT, write=UPLOAD_WRITE_TIMEOUT),
        )

    def create(
        self, base_url: str, name: str, files: Mapping[str, str], extra: Mapping[str, Any] | None = None
    ) -> LineStream[ProgressLine]:
        body = {"model": name, "stream": True, **(extra or {})}
        if files:
            body["files"] = dict(files)
        return LineStream(self._client, base_url, "/api/create", body, ProgressLine)

    def chat(self, base_url: str, request: ChatRequest) -> LineStream[ChatLine]:
        return LineStream(self._client, base_url, "/api/chat", {**request, "stream": True}, ChatLine)

    def embed(self, base_url: str, request: EmbedRequest) -> EmbedReply:
        return fit(self._json_post_long(base_url, "/api/embed", dict(request)), EmbedReply) or {}

    def _json_post_long(self, base_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A JSON answer that may first wait for a model to load."""
        response = self._request(
            "POST", base_url, path, body, timeout=httpx.Timeout(LONG_READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        )
        try:
            data = response.json()
        except ValueError:
            raise errors.UpstreamError(
                Message("ollama.error.not_json", url=base_url, path=path),
                details={"url": base_url, "status": response.status_code},
            ) from None
        return data if isinstance(data, dict) else {}

    # -- plumbing -------------------------------------------------------------------------------

    def _json(self, method: str, base_url: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self._request(method, base_url, path, body)
        try:
            data = response.json()
        except ValueError:
            raise errors.UpstreamError(
                Message("ollama.error.not_json", url=base_url, path=path),
                details={"url": base_url, "status": response.status_code},
            ) from None
        return data if isinstance(data, dict) else {}

    def _request(
        self,
        method: str,
        base_url: str,
        path: str,
        body: Any = None,
        *,
        accept: tuple[int, ...] = (200, 201),
        timeout: Any = ...,
        **kwargs: Any,
    ) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        if timeout is not ...:
            kwargs["timeout"] = timeout
        trace = request_trace.get()
        if trace is not None:
            kwargs["extensions"] = {"trace": trace}
            kwargs["headers"] = {**kwargs.get("headers", {}), "Connection": "close"}
        try:
            response = self._client.request(method, base_url.rstrip("/") + path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_failure(base_url, exc) from None
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise unusable_address(base_url) from exc
        if response.status_code not in accept:
            raise answered_badly(base_url, response.status_code, response.text)
        return response


Line = TypeVar("Line")


class LineStream(Generic[Line]):
    """A streamed Ollama reply, one JSON object per line, each fitted to ``shape`` (a
    :class:`hookspecs.ai.ProgressStream` of ``ProgressLine``, or a
    :class:`hookspecs.ai.ChatStream` of ``ChatLine``). A line that is not a JSON object is a
    bad answer (502); an ``error`` that is not text is passed on as text, so it still ends the
    stream with that failure.

    :meth:`close` may be called from another thread while a reader waits for the next line:
    it closes the connection, which tells Ollama to stop (a pull keeps its partial data),
    and the reader's loop ends without an error.
    """

    def __init__(self, client: httpx.Client, base_url: str, path: str, body: dict[str, Any], shape: type[Line]) -> None:
        self._client = client
        self._base_url = base_url
        self._path = path
        self._body = body
        self._shape: type[Line] = shape
        self._response: httpx.Response | None = None
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Line]:
        base_url = self._base_url
        timeout = httpx.Timeout(STREAM_READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        try:
            request = self._client.build_request(
                "POST", base_url.rstrip("/") + self._path, json=self._body, timeout=timeout
            )
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise unusable_address(base_url) from exc
        try:
            response = self._client.send(request, stream=True)
            with self._lock:
                self._response = response
                closed = self._closed
            if closed:
                response.close()
                return
            if response.status_code != 200:
                response.read()
                raise answered_badly(base_url, response.status_code, response.text)
            for line in response.iter_lines():
                if line.strip():
                    yield self._fitted(line)
        except httpx.TransportError as exc:
            if self._closed:
                return  # closed on purpose, from another thread
            raise transport_failure(base_url, exc, during=self._path) from None
        finally:
            self.close()

    def _fitted(self, text: str) -> Line:
        """One line of the reply as the stream's type, or a 502 when it is not an object."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and "error" in data and not isinstance(data["error"], str):
            data = {**data, "error": str(data["error"])}
        fitted = fit(data, self._shape)
        if fitted is None:
            raise errors.UpstreamError(
                Message("ollama.error.bad_line", url=self._base_url), details={"url": self._base_url}
            )
        return fitted

    def close(self) -> None:
        with self._lock:
            self._closed = True
            response = self._response
        if response is None:
            return
        # Closing a socket does not wake a thread blocked reading it; shutting it down does.
        network = response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        response.close()


def unusable_address(base_url: str) -> errors.Conflict:
    """The 409 error for a server address no request can be made to (one stored by an earlier
    version that took what is refused now, such as an IPv6 zone)."""
    return errors.Conflict(
        Message("ollama.address.not_address", text=base_url), code="bad_address", details={"url": base_url}
    )


class OllamaTimeout(errors.UpstreamUnavailable):
    """Ollama took the request but did not answer in time: it is up, but slow or stuck (a
    large model loading, a disk that stalls). A 504, and never the advice to start Ollama."""

    status = 504


def transport_failure(
    base_url: str, exc: httpx.TransportError, during: str | None = None
) -> errors.UpstreamUnavailable:
    """The panel error for a request that got no answer, telling apart where it stopped:

    - no free connection in the panel's own pool (the panel is saturated, not Ollama):
      503 ``panel_busy``;
    - connected, but no answer (or no room for the request) in time: 504 ``ollama_timeout``;
    - no connection at all, or one that dropped: 503 ``ollama_unreachable``.

    ``details.stage`` names it: ``pool``, ``answer`` or ``connect``."""
    if isinstance(exc, httpx.PoolTimeout):
        return panel_busy(base_url, waited=_timeout_of(exc, "pool"))
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        return ollama_timeout(base_url, waited=_timeout_of(exc, "read"), during=during)
    return unreachable(base_url, exc, during=during)


def _timeout_of(exc: httpx.TransportError, kind: str) -> float | None:
    """The seconds the request's ``kind`` timeout allowed, when httpx says."""
    try:
        return exc.request.extensions["timeout"][kind]
    except (RuntimeError, KeyError, TypeError):
        return None


def panel_busy(base_url: str, waited: float | None) -> errors.UpstreamUnavailable:
    """The 503 error for a request to Ollama that never started because the panel had too
    many of them under way: the panel is saturated; nothing is known to be wrong with Ollama."""
    seconds = "?" if waited is None else f"{waited:g}"
    fix = Message("ollama.fix.panel_busy")
    return errors.UpstreamUnavailable(
        Message("ollama.error.panel_busy", url=base_url, seconds=seconds),
        code="panel_busy",
        details={
            "url": base_url,
            "stage": "pool",
            "connected": False,
            "waited": waited,
            "fix": fix,
            "fix_i18n": fix.public(),
        },
    )


def ollama_timeout(base_url: str, waited: float | None, during: str | None = None) -> OllamaTimeout:
    """The 504 error for a request Ollama accepted but did not answer in time."""
    seconds = "?" if waited is None else f"{waited:g}"
    fix = Message("ollama.fix.timeout")
    return OllamaTimeout(
        Message("ollama.error.timeout", url=base_url, seconds=seconds),
        code="ollama_timeout",
        details={
            "url": base_url,
            "stage": "answer",
            "connected": True,
            "waited": waited,
            "during": during,
            "fix": fix,
            "fix_i18n": fix.public(),
        },
    )


def unreachable(base_url: str, exc: Exception, during: str | None = None) -> errors.UpstreamUnavailable:
    """The 503 error for a server that cannot be reached (or dropped the connection)."""
    reason = str(exc) or type(exc).__name__
    if during:
        message = Message("ollama.error.dropped", url=base_url, path=during, reason=reason)
    else:
        message = Message("ollama.error.unreachable", url=base_url, reason=reason)
    fix = Message("ollama.fix.unreachable")
    return errors.UpstreamUnavailable(
        message,
        code="ollama_unreachable",
        details={
            "url": base_url,
            "reason": reason,
            "fix": fix,
            "fix_i18n": fix.public(),
            "stage": "connect",
            "connected": during is not None,
        },
    )


#: The longest error text of Ollama's passed on; its messages are one short sentence.
ERROR_TEXT_LIMIT = 300


def ollama_error_text(text: str) -> str | None:
    """The text of an ``{"error": "..."}`` reply, or None when the reply is something else."""
    try:
        said = json.loads(text)
    except ValueError:
        return None
    if not isinstance(said, dict) or not isinstance(said.get("error"), str):
        return None
    return said["error"].strip()[:ERROR_TEXT_LIMIT] or None


def answered_badly(base_url: str, status: int, text: str) -> errors.ApiError:
    """The panel error for an Ollama error reply, with Ollama's own text in details.

    Only the text of an ``{"error": "..."}`` reply is passed on: whatever else the address
    answers (a proxy's page, another service) may hold things the panel should not echo, so
    it becomes a short status line instead."""
    said = ollama_error_text(text)
    if said is None:
        return errors.UpstreamError(
            Message("ollama.error.not_ollama", url=base_url, status=status),
            details={"url": base_url, "status": status},
            code="ollama_error",
        )
    details = {"url": base_url, "status": status, "ollama": said}
    if status == 404:
        return errors.NotFound(
            Message("ollama.error.not_found", text=said[:1].upper() + said[1:]), details=details, code="model_not_found"
        )
    if status == 400:
        return errors.BadRequest(Message("ollama.error.refused", text=said), details=details, code="ollama_bad_request")
    if status == 503:
        return errors.UpstreamUnavailable(
            Message("ollama.error.busy", url=base_url, text=said), details=details, code="ollama_busy"
        )
    return errors.UpstreamError(
        Message("ollama.error.answered", url=base_url, status=status, text=said), details=details, code="ollama_error"
    )


@hookimpl(trylast=True)
def ai_ollama_providers() -> list[type[OllamaProvider]]:
    return [HttpOllamaProvider]
