"""The standalone host's authentication: the admin token, bearer headers, browser sessions,
and the scrape token of ``/metrics``.

API clients send ``Authorization: Bearer <token>``; Socket.IO clients send it in the ``auth``
payload (``{"token": ...}``) or the same header. Browsers sign in once with the token and then
carry a signed session cookie naming a session the server keeps (:mod:`.sessions`), so signing
out ends it for good; state-changing requests from a session must also carry the session's
CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``). A Prometheus server sends the
scrape token, which opens ``GET /api/v2/ai/metrics`` and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import flask
from flask import session
from flask.sessions import SecureCookieSessionInterface

from hookspecs.panel import PanelUser
from open1panel_ai.host import Settings, private, read_form_body
from open1panel_ai.standalone.sessions import SessionStore

TOKEN_FILE = "admin-token"
SECRET_FILE = "session-secret"
METRICS_TOKEN_FILE = "metrics-token"
TOKEN_ENV = "OPEN1PANEL_AI_TOKEN"
METRICS_TOKEN_ENV = "OPEN1PANEL_AI_METRICS_TOKEN"
TRUST_PROXY_SETTING = "trust_proxy"
#: The fewest characters a token may have: 32 random characters cannot be guessed online.
MIN_TOKEN_LENGTH = 32
#: The one route the scrape token opens, for GET (and HEAD) only.
METRICS_PATH = "/api/v2/ai/metrics"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Body types whose fields Werkzeug parses into ``request.form``.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
#: Seconds to wait for an empty secret file to be filled before refusing it.
EMPTY_SECRET_WAIT = 2.0


def _read_or_create_secret(path: Path, nbytes: int = 32, other_way: str = "") -> tuple[str, bool]:
    """Read a secret file, or create it with owner-only permissions. Returns (secret, created).

    Several panel processes may start on one data dir at once. The file appears whole (written
    beside it, then linked into place), so no process ever reads it half written; the processes
    that lose the race read the one that won. An empty file is refused: an empty secret would
    sign anyone in. An empty or unreadable file is a ValueError that says what to do, ending
    with ``other_way`` (another way to give the secret, if there is one).
    """
    deadline = time.monotonic() + EMPTY_SECRET_WAIT
    while True:
        try:
            secret = path.read_text().strip()
        except FileNotFoundError:
            secret = secrets.token_urlsafe(nbytes)
            if private.create_whole(path, secret):
                return secret, True
            continue  # another process made it first: read theirs
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not text"
            raise ValueError(
                f"Cannot read {path} ({reason}). Make it readable to this user, or "
                f"delete it to have a new secret made at the next start{other_way}."
            ) from None
        if secret:
            return secret, False
        if time.monotonic() > deadline:
            raise ValueError(f"{path} is empty. Delete it to have a new secret made at the next start{other_way}.")
        time.sleep(0.05)  # a file written in place by something else may still be filling


def load_or_create_token(data_dir: Path, environ: Mapping[str, str] = os.environ) -> tuple[str, bool]:
    """The admin token: from ``OPEN1PANEL_AI_TOKEN``, else the data dir's token file, created
    (mode 0600) on first start. Returns (token, created_now). A token shorter than
    :data:`MIN_TOKEN_LENGTH` is a ValueError that says how to make a good one."""
    from_env = environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return _long_enough(from_env, TOKEN_ENV, f"unset {TOKEN_ENV} to have one made"), False
    token, created = _read_or_create_secret(data_dir / TOKEN_FILE, other_way=f", or set {TOKEN_ENV}")
    return _long_enough(token, str(data_dir / TOKEN_FILE), "delete the file to have one made"), created


def load_or_create_metrics_token(data_dir: Path, environ: Mapping[str, str] = os.environ) -> str:
    """The scrape token of ``/metrics``: from ``OPEN1PANEL_AI_METRICS_TOKEN``, else the data
    dir's ``metrics-token`` file, created (mode 0600) on first start."""
    if environ.get(METRICS_TOKEN_ENV, "").strip():
        return _metrics_token_from(data_dir, environ)[0]
    path = data_dir / METRICS_TOKEN_FILE
    token = _read_or_create_secret(path, other_way=f", or set {METRICS_TOKEN_ENV}")[0]
    return _long_enough(token, str(path), "delete the file to have one made")


def check_metrics_token(data_dir: Path, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, as a ValueError, a scrape token the panel cannot start with, creating nothing:
    one that is too short, or that is the admin token (every scraper would be an admin)."""
    metrics, where = _metrics_token_from(data_dir, environ)
    admin = environ.get(TOKEN_ENV, "").strip() or _existing(data_dir / TOKEN_FILE)
    if _same(metrics, admin):
        raise ValueError(
            f"{where} holds the admin token; the scrape token of /metrics must be "
            "another one, so that a Prometheus server cannot act as the admin."
        )


def _metrics_token_from(data_dir: Path, environ: Mapping[str, str]) -> tuple[str, str]:
    """(the scrape token, where it came from): the variable, else the file ("" when neither
    holds one); a ValueError when it is too short."""
    from_env = environ.get(METRICS_TOKEN_ENV, "").strip()
    if from_env:
        return (
            _long_enough(from_env, METRICS_TOKEN_ENV, f"unset {METRICS_TOKEN_ENV} to have one made"),
            METRICS_TOKEN_ENV,
        )
    path = data_dir / METRICS_TOKEN_FILE
    token = _existing(path)
    return (_long_enough(token, str(path), "delete the file to have one made") if token else ""), str(path)


def _existing(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""  # missing or unreadable: the start reports it when it reads the file


def _long_enough(token: str, where: str, otherwise: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"{where} holds a token of {len(token)} characters; a token must have at least "
            f"{MIN_TOKEN_LENGTH}, so that it cannot be guessed. Make one with "
            f"`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`, or {otherwise}."
        )
    return token


def trusted_proxies(settings: Settings) -> int:
    """How many reverse proxies in front of the panel to believe (``OPEN1PANEL_AI_TRUST_PROXY``):
    their ``X-Forwarded-For`` names the client, their ``X-Forwarded-Proto`` says whether it came
    over HTTPS. 0, the default, believes no such header."""
    raw = (settings.get(TRUST_PROXY_SETTING) or "0").strip()
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError(
            f"OPEN1PANEL_AI_TRUST_PROXY must be the number of reverse proxies in front of "
            f"the panel (0 or more), not {raw!r}."
        )
    return count


def load_or_create_session_secret(data_dir: Path) -> str:
    """The key that signs browser sessions: the data dir's secret file, created (mode 0600) on
    first start. A new one signs every browser out."""
    return _read_or_create_secret(data_dir / SECRET_FILE, 48)[0]


def token_check(token: str, secret: str) -> str:
    """A keyed hash of the admin token, kept beside the sessions (never in a cookie): when it
    changes, the token changed, and every session ends."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


class TokenAuth:
    """Checks credentials: the admin token, browser sessions kept in ``sessions``, and the
    scrape token, which opens :data:`METRICS_PATH` only."""

    def __init__(self, token: str, sessions: SessionStore | None = None, metrics_token: str | None = None) -> None:
        if not token:
            raise ValueError("The admin token must not be empty.")
        self._token = token
        self._metrics_token = metrics_token or None
        self.sessions = sessions
        #: (namespace, Socket.IO sid) → the browser session that let the connection in.
        self._sockets: dict[tuple[str, str], str] = {}

    def matches(self, candidate: Any) -> bool:
        """Whether ``candidate`` is the admin token (never true for an empty one)."""
        return _same(candidate, self._token)

    def authenticate(self, request: flask.Request, auth: Any = None) -> PanelUser | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else None
        if self.matches(bearer):
            return {"name": "admin", "via": "token"}
        if isinstance(auth, dict) and self.matches(auth.get("token")):
            return {"name": "admin", "via": "token"}
        if session.get("user") and self.sessions is not None and self.sessions.alive(session.get("sid")):
            socket_sid = getattr(request, "sid", None)  # set by Flask-SocketIO while a client connects
            if isinstance(socket_sid, str):
                self._sockets[(getattr(request, "namespace", "/"), socket_sid)] = session["sid"]
            return {"name": session["user"], "via": "session"}
        if (
            auth is None
            and self._metrics_token
            and request.method in ("GET", "HEAD")
            and request.path == METRICS_PATH
            and _same(bearer, self._metrics_token)
        ):
            return {"name": "metrics", "via": "metrics-token"}
        return None

    def ended_sockets(self, connected: Callable[[str, str], bool]) -> list[tuple[str, str]]:
        """The (namespace, sid) of Socket.IO connections let in by a browser session that has
        ended since (signed out, expired, or the token changed). ``connected(namespace, sid)``
        tells whether a connection is still open; closed ones are forgotten."""
        ended: list[tuple[str, str]] = []
        for key, session_id in list(self._sockets.items()):
            if not connected(*key):
                self._sockets.pop(key, None)
            elif self.sessions is None or not self.sessions.alive(session_id):
                self._sockets.pop(key, None)
                ended.append(key)
        return ended

    def sign_in(self) -> None:
        """Start a new browser session: a new id, kept on the server, and a new CSRF token."""
        if self.sessions is None:
            raise RuntimeError("this host keeps no browser sessions")
        session.clear()
        session.permanent = True
        session_id = secrets.token_urlsafe(32)
        self.sessions.create(session_id)
        session["user"] = "admin"
        session["sid"] = session_id
        session["csrf"] = secrets.token_urlsafe(24)

    def sign_out(self) -> None:
        """End the browser session on the server, so that its cookie opens nothing any more."""
        if self.sessions is not None:
            self.sessions.end(session.get("sid"))
        session.clear()


def _same(candidate: Any, token: str | None) -> bool:
    """Whether ``candidate`` is ``token``, compared in constant time (never for empty ones)."""
    if not isinstance(candidate, str) or not candidate or not token:
        return False
    return hmac.compare_digest(candidate.encode(), token.encode())


class PanelSessionInterface(SecureCookieSessionInterface):
    """Flask's signed session cookie, marked ``Secure`` whenever the request came over HTTPS:
    directly, or through a reverse proxy the panel trusts (``OPEN1PANEL_AI_TRUST_PROXY``) that
    says so in ``X-Forwarded-Proto``. The browser then never sends it over plain HTTP."""

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        return flask.request.is_secure or super().get_cookie_secure(app)


def csrf_token() -> str:
    """The CSRF token of the current browser session (created when missing)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def csrf_ok(request: flask.Request) -> bool:
    """Whether ``request`` carries its session's CSRF token, in the header or a form field.
    A form's body is read so that it is kept, and can still be relayed to the owner process;
    one over the body limit is a 413 envelope, refused before it is read into memory."""
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.mimetype in FORM_TYPES:
        read_form_body()
        sent = request.form.get(CSRF_FIELD)
    return bool(expected and sent) and hmac.compare_digest(str(sent), str(expected))
