"""The built-in Ollama provider ``http``: Ollama's REST API over httpx.

It follows reference/ollama-api.md: errors are ``{"error": text}``, a streamed pull reports an
error as its last line, delete and copy answer an empty body, load and unload are one JSON
object. Failures become the panel's API errors, each naming the server's address.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from hookspecs import hookimpl
from open1panel_ai import errors
from open1panel_ai.i18n import Message

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
    """Talks to any Ollama server by its base URL."""

    name = "http"

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._client = shared_client()

    def probe(self) -> None:
        """httpx is a dependency, so this provider can always work; each server's own
        reachability is shown per endpoint."""

    # -- reading ----------------------------------------------------------------------------

    def version(self, base_url: str) -> str:
        return self._json("GET", base_url, "/api/version").get("version", "")

    def list_models(self, base_url: str) -> list[dict[str, Any]]:
        return self._json("GET", base_url, "/api/tags").get("models") or []

    def running_models(self, base_url: str) -> list[dict[str, Any]]:
        return self._json("GET", base_url, "/api/ps").get("models") or []

    def show(self, base_url: str, name: str) -> dict[str, Any]:
        return self._json("POST", base_url, "/api/show", {"model": name})

    # -- changing -----------------------------------------------------------------------------

    def delete(self, base_url: str, name: str) -> None:
        self._request("DELETE", base_url, "/api/delete", {"model": name})

    def copy(self, base_url: str, source: str, destination: str) -> None:
        self._request("POST", base_url, "/api/copy", {"source": source, "destination": destination})

    def load(self, base_url: str, name: str, keep_alive: str | int,
             options: Mapping[str, Any]) -> None:
        body: dict[str, Any] = {"model": name, "keep_alive": keep_alive, "stream": False}
        if options:
            body["options"] = dict(options)
        self._request("POST", base_url, "/api/generate", body,
                      timeout=httpx.Timeout(LONG_READ_TIMEOUT, connect=CONNECT_TIMEOUT))

    def unload(self, base_url: str, name: str) -> None:
        self._request("POST", base_url, "/api/generate", {"model": name, "keep_alive": 0, "stream": False})

    def pull(self, base_url: str, name: str) -> LineStream:
        return self._stream(base_url, "/api/pull", {"model": name, "stream": True})

    def blob_exists(self, base_url: str, digest: str) -> bool:
        response = self._request("HEAD", base_url, f"/api/blobs/{digest}", accept=(200, 404))
        return response.status_code == 200

    def upload_blob(self, base_url: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        self._request("POST", base_url, f"/api/blobs/{digest}", content=chunks,
                      headers={"Content-Length": str(size)},
                      timeout=httpx.Timeout(LONG_READ_TIMEOUT, connect=CONNECT_TIMEOUT,
                                            write=UPLOAD_WRITE_TIMEOUT))

    def create(self, base_url: str, name: str, files: Mapping[str, str],
               extra: Mapping[str, Any] | None = None) -> LineStream:
        body = {"model": name, "stream": True, **(extra or {})}
        if files:
            body["files"] = dict(files)
        return self._stream(base_url, "/api/create", body)

    # -- plumbing -------------------------------------------------------------------------------

    def _json(self, method: str, base_url: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self._request(method, base_url, path, body)
        try:
            data = response.json()
        except ValueError:
            raise errors.UpstreamError(
                Message("ollama.error.not_json", url=base_url, path=path),
                details={"url": base_url, "status": response.status_code}) from None
        return data if isinstance(data, dict) else {}

    def _request(self, method: str, base_url: str, path: str, body: Any = None, *,
                 accept: tuple[int, ...] = (200, 201), timeout: Any = ..., **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        if timeout is not ...:
            kwargs["timeout"] = timeout
        try:
            response = self._client.request(method, base_url.rstrip("/") + path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(base_url, exc) from None
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise unusable_address(base_url) from exc
        if response.status_code not in accept:
            raise answered_badly(base_url, response.status_code, response.text)
        return response

    def _stream(self, base_url: str, path: str, body: dict) -> LineStream:
        return LineStream(self._client, base_url, path, body)


class LineStream:
    """A streamed Ollama reply, one JSON object per line.

    :meth:`close` may be called from another thread while a reader waits for the next line:
    it closes the connection, which tells Ollama to stop (a pull keeps its partial data),
    and the reader's loop ends without an error.
    """

    def __init__(self, client: httpx.Client, base_url: str, path: str, body: dict) -> None:
        self._client = client
        self._base_url = base_url
        self._path = path
        self._body = body
        self._response: httpx.Response | None = None
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        base_url = self._base_url
        timeout = httpx.Timeout(STREAM_READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        try:
            request = self._client.build_request("POST", base_url.rstrip("/") + self._path,
                                                 json=self._body, timeout=timeout)
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
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise errors.UpstreamError(
                            Message("ollama.error.bad_line", url=base_url),
                            details={"url": base_url}) from None
        except httpx.TransportError as exc:
            if self._closed:
                return  # closed on purpose, from another thread
            raise unreachable(base_url, exc, during=self._path) from None
        finally:
            self.close()

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
    return errors.Conflict(Message("ollama.address.not_address", text=base_url), code="bad_address",
                           details={"url": base_url})


def unreachable(base_url: str, exc: Exception, during: str | None = None) -> errors.UpstreamUnavailable:
    """The 503 error for a server that cannot be reached (or dropped the connection)."""
    reason = str(exc) or type(exc).__name__
    if during:
        message = Message("ollama.error.dropped", url=base_url, path=during, reason=reason)
    else:
        message = Message("ollama.error.unreachable", url=base_url, reason=reason)
    fix = Message("ollama.fix.unreachable")
    return errors.UpstreamUnavailable(message, code="ollama_unreachable", details={
        "url": base_url, "reason": reason, "fix": fix, "fix_i18n": fix.public(),
    })


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
        return errors.UpstreamError(Message("ollama.error.not_ollama", url=base_url, status=status),
                                    details={"url": base_url, "status": status}, code="ollama_error")
    details = {"url": base_url, "status": status, "ollama": said}
    if status == 404:
        return errors.NotFound(Message("ollama.error.not_found", text=said[:1].upper() + said[1:]),
                               details=details, code="model_not_found")
    if status == 400:
        return errors.BadRequest(Message("ollama.error.refused", text=said), details=details,
                                 code="ollama_bad_request")
    if status == 503:
        return errors.UpstreamUnavailable(Message("ollama.error.busy", url=base_url, text=said),
                                          details=details, code="ollama_busy")
    return errors.UpstreamError(Message("ollama.error.answered", url=base_url, status=status, text=said),
                                details=details, code="ollama_error")


@hookimpl(trylast=True)
def ai_ollama_providers():
    return [HttpOllamaProvider]
