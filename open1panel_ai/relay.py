"""API requests carried to the owner process: its unix socket, and the relay that uses it.

Only the owner (see :mod:`open1panel_ai.ownership`) holds the task runner's and the MCP
supervisors' state in memory, so another process does not answer the AI API itself: it
forwards each API request, after checking who sends it, over a unix socket in the data dir to
the owner, which answers it as its own, and hands the answer back unchanged (status, headers,
body, streamed both ways).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
from flask import Flask, Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from open1panel_ai import errors

log = logging.getLogger(__name__)

#: The owner's socket, in a folder of the data dir that only the panel's user may enter.
SOCKET_PATH = Path("run") / "owner.sock"
#: Headers that describe one hop, not the request or answer: never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"})
#: Headers of the owner's answer that the relaying server sets itself.
SET_BY_SERVER = frozenset({"server", "date"})
#: Body types a request guard may have read before the relay (a form's CSRF field, say).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
CHUNK = 64 * 1024
#: The longest path a unix socket address holds (``sun_path`` less its closing NUL byte).
MAX_SOCKET_PATH = 107
#: Seconds the owner may take to answer; uploads and model loads can take minutes.
ANSWER_TIMEOUT = 600


def check_socket_path(data_dir: Path) -> None:
    """A ValueError saying what to change when the owner's socket path in ``data_dir`` is too
    long for a unix socket address (the kernel's limit is 107 bytes)."""
    path = data_dir / SOCKET_PATH
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ValueError(
            f"The data dir {data_dir} is too deep for processes to share it: the owner's socket "
            f"{path} would be {len(os.fsencode(path))} bytes long, and a unix socket path holds "
            f"at most {MAX_SOCKET_PATH}. Choose a shorter OPEN1PANEL_AI_DATA_DIR.")


class _QuietHandler(WSGIRequestHandler):
    """The socket's requests were already logged by the process that relayed them."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class OwnerSocket:
    """The owner's second listener: the panel's app on a unix socket (mode 0600)."""

    def __init__(self, app: Flask, data_dir: Path) -> None:
        self.app = app
        self.path = data_dir / SOCKET_PATH
        self._server: BaseWSGIServer | None = None

    def start(self) -> None:
        """Listen on the socket and answer its requests in a daemon thread. The socket's
        folder is made owner-only first, and a socket left by an owner that died is replaced.
        Raises OSError when the socket cannot be bound."""
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        self._server = make_server(f"unix://{self.path}", 0, self.app, threaded=True,
                                   request_handler=_QuietHandler)
        os.chmod(self.path, 0o600)
        threading.Thread(target=self._server.serve_forever, name="owner-socket", daemon=True).start()

    def stop(self) -> None:
        """Stop answering, close the socket and remove its file; nothing when not started."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self.path.unlink(missing_ok=True)
            self._server = None


class Relay:
    """Forwards requests to the owner's socket and turns its answers into Flask responses."""

    def __init__(self, data_dir: Path) -> None:
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(data_dir / SOCKET_PATH)),
            base_url="http://owner", timeout=httpx.Timeout(ANSWER_TIMEOUT, connect=5),
        )

    def forward(self, request: Request) -> Response:
        """The owner's answer to ``request``; a 503 envelope when the owner cannot be reached
        (it is starting, or another process is taking over from one that died)."""
        url = quote(request.path, safe="/:@!$&'()*+,;=~")
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        headers = [(name, value) for name, value in request.headers.items()
                   if name.lower() not in HOP_BY_HOP]
        content = None
        if request.mimetype in FORM_TYPES and _body_was_read(request):
            # A guard read the form (its CSRF field) and Werkzeug kept the body it read, within
            # the body limit; any other body, a form's included, is streamed unread.
            content = request.get_data()
            headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
        elif request.content_length or request.headers.get("Transfer-Encoding"):
            content = _chunks(request)
        outgoing = self._client.build_request(request.method, url, headers=headers, content=content)
        try:
            answer = self._client.send(outgoing, stream=True)
        except httpx.TransportError as exc:
            log.warning("the owner process did not answer %s %s: %s", request.method, url, exc)
            raise errors.UpstreamUnavailable(
                "The panel process that runs background work is not answering; it may be "
                "restarting. Try again in a few seconds.", code="owner_unavailable") from None
        response = Response(answer.iter_raw(CHUNK), status=answer.status_code, headers=[
            (name, value) for name, value in answer.headers.multi_items()
            if name.lower() not in HOP_BY_HOP | SET_BY_SERVER])
        response.call_on_close(answer.close)
        return response

    def close(self) -> None:
        """Close the connections to the owner; call once, when the process stops."""
        self._client.close()


def _body_was_read(request: Request) -> bool:
    """Whether the body was read and kept already (Werkzeug keeps what ``get_data`` read)."""
    return getattr(request, "_cached_data", None) is not None


def _chunks(request: Request) -> Iterator[bytes]:
    while chunk := request.stream.read(CHUNK):
        yield chunk
