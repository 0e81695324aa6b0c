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
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
from flask import Flask, Request, Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from open1panel_ai import errors
from open1panel_ai.i18n import Message

log = logging.getLogger(__name__)

#: The owner's socket, in a folder of the data dir that only the panel's user may enter.
SOCKET_PATH = Path("run") / "owner.sock"
#: Headers that describe one hop, not the request or answer: never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Headers of the owner's answer that the relaying server sets itself.
SET_BY_SERVER = frozenset({"server", "date"})
#: Body types a request guard may have read before the relay (a form's CSRF field, say).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
CHUNK = 64 * 1024
#: The longest path a unix socket address holds (``sun_path`` less its closing NUL byte).
MAX_SOCKET_PATH = 107
#: Seconds the owner may take to answer; uploads and model loads can take minutes.
ANSWER_TIMEOUT = 600
#: Connections the owner's socket holds while they wait to be accepted.
LISTEN_BACKLOG = 128


def check_socket_path(data_dir: Path) -> None:
    """A ValueError saying what to change when the owner's socket path in ``data_dir`` is too
    long for a unix socket address (the kernel's limit is 107 bytes)."""
    path = data_dir / SOCKET_PATH
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ValueError(
            f"The data dir {data_dir} is too deep for processes to share it: the owner's socket "
            f"{path} would be {len(os.fsencode(path))} bytes long, and a unix socket path holds "
            f"at most {MAX_SOCKET_PATH}. Choose a shorter OPEN1PANEL_AI_DATA_DIR."
        )


class _QuietHandler(WSGIRequestHandler):
    """The socket's requests were already logged by the process that relayed them."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class OwnerSocketError(OSError):
    """The owner's socket cannot be opened; the message says why and what to do."""


class OwnerSocket:
    """The owner's second listener: the panel's app on a unix socket (mode 0600).

    :meth:`listen` binds the socket, which may fail; :meth:`serve` then answers on it. Between
    the two, connections wait in the socket's backlog, so a process binds first and serves only
    once it answers the API itself.
    """

    def __init__(self, app: Flask, data_dir: Path) -> None:
        self.app = app
        self.path = data_dir / SOCKET_PATH
        self._server: BaseWSGIServer | None = None
        self._serving = False

    def listen(self) -> None:
        """Bind the socket (mode 0600, in an owner-only folder) without answering yet.

        A socket file left by an owner that died is replaced; a symbolic link or any other
        file in its place is left alone and refused, as is a ``run`` folder that is a link.
        Every failure is an :class:`OwnerSocketError` that says what is in the way, never an
        exit of the process.
        """
        folder = self.path.parent
        try:
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                pass
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode):
                raise OwnerSocketError(
                    f"{folder} is {_kind(info.st_mode)}, not a folder; the "
                    f"owner's socket goes in it. Remove it, and start the panel again."
                )
            os.chmod(folder, 0o700)
            _remove_stale_socket(self.path)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OwnerSocketError:
            raise
        except OSError as exc:
            raise OwnerSocketError(f"Cannot prepare the owner's socket {self.path}: {exc}") from exc
        bound = False
        try:
            listener.bind(str(self.path))
            bound = True
            os.chmod(self.path, 0o600)  # nobody else can connect meanwhile: the folder is 0700
            listener.listen(LISTEN_BACKLOG)
            # Werkzeug serves a duplicate of the bound socket; given one, it never binds, removes
            # a file or exits the process by itself.
            self._server = make_server(
                f"unix://{self.path}", 0, self.app, threaded=True, request_handler=_QuietHandler, fd=listener.fileno()
            )
        except (Exception, SystemExit) as exc:
            if bound:
                self.path.unlink(missing_ok=True)
            raise OwnerSocketError(f"Cannot listen on the owner's socket {self.path}: {exc}") from exc
        finally:
            listener.close()

    def serve(self) -> None:
        """Answer the socket's requests in a daemon thread (after :meth:`listen`)."""
        if self._server is None:
            raise RuntimeError("OwnerSocket.serve() is called after listen()")
        self._serving = True
        threading.Thread(target=self._server.serve_forever, name="owner-socket", daemon=True).start()

    def stop(self) -> None:
        """Stop answering, close the socket and remove its file; nothing when not listening."""
        if self._server is not None:
            if self._serving:
                self._server.shutdown()
            self._server.server_close()
            _remove_stale_socket(self.path, quiet=True)
            self._server = None
            self._serving = False


def _remove_stale_socket(path: Path, quiet: bool = False) -> None:
    """Remove the socket file at ``path`` if there is one. Only a socket is removed (unlink never
    follows a link); a link or any other file there is an :class:`OwnerSocketError`, or, when
    ``quiet``, left alone with a log line."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(info.st_mode):
        path.unlink(missing_ok=True)
        return
    reason = (
        f"{path} is {_kind(info.st_mode)}, not the socket of an earlier owner, so the panel "
        f"leaves it alone. Remove it if nothing else needs it, and start the panel again."
    )
    if not quiet:
        raise OwnerSocketError(reason)
    log.warning("%s", reason)


def _kind(mode: int) -> str:
    """What a file of ``mode`` is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def relayed_path(path: str) -> str:
    """``path`` (decoded, as Werkzeug gives it) encoded again segment by segment, so that the
    owner routes exactly the request this process checked: an encoded ``/`` stays inside its
    segment, and a ``.`` or ``..`` segment is sent as ``%2E`` or ``%2E%2E``, which the HTTP
    client does not resolve (it would turn ``models/../../mcp`` into another route)."""
    segments = []
    for segment in path.split("/"):
        if segment in (".", ".."):
            segments.append(segment.replace(".", "%2E"))
        else:
            segments.append(quote(segment, safe=":@!$&'()*+,;=~"))
    return "/".join(segments)


class Relay:
    """Forwards requests to the owner's socket and turns its answers into Flask responses."""

    def __init__(self, data_dir: Path) -> None:
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(data_dir / SOCKET_PATH)),
            base_url="http://owner",
            timeout=httpx.Timeout(ANSWER_TIMEOUT, connect=5),
        )

    def forward(self, request: Request) -> Response:
        """The owner's answer to ``request``; a 503 envelope when the owner cannot be reached
        (it is starting, or another process is taking over from one that died)."""
        url = relayed_path(request.path)
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        headers = [(name, value) for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP]
        content: bytes | Iterator[bytes] | None = None
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
            raise errors.UpstreamUnavailable(Message("error.owner_unavailable"), code="owner_unavailable") from None
        response = Response(
            answer.iter_raw(CHUNK),
            status=answer.status_code,
            headers=[
                (name, value)
                for name, value in answer.headers.multi_items()
                if name.lower() not in HOP_BY_HOP | SET_BY_SERVER
            ],
        )
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
