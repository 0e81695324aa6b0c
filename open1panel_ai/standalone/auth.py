"""The standalone host's authentication: one admin token, bearer headers and browser sessions.

API clients send ``Authorization: Bearer <token>``; Socket.IO clients send it in the ``auth``
payload (``{"token": ...}``) or the same header. Browsers sign in once with the token and then
carry a signed session cookie; state-changing requests from a session must also carry the
session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import session

from open1panel_ai.web import read_form_body

TOKEN_FILE = "admin-token"
SECRET_FILE = "session-secret"
TOKEN_ENV = "OPEN1PANEL_AI_TOKEN"
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
            if _create_whole(path, secret):
                return secret, True
            continue  # another process made it first: read theirs
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not text"
            raise ValueError(f"Cannot read {path} ({reason}). Make it readable to this user, or "
                             f"delete it to have a new secret made at the next start{other_way}.") from None
        if secret:
            return secret, False
        if time.monotonic() > deadline:
            raise ValueError(f"{path} is empty. Delete it to have a new secret made at the next "
                             f"start{other_way}.")
        time.sleep(0.05)  # a file written in place by something else may still be filling


def _create_whole(path: Path, secret: str) -> bool:
    """Put ``secret`` at ``path`` (mode 0600) unless a file is there already; True if it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(draft)


def load_or_create_token(data_dir: Path, environ=os.environ) -> tuple[str, bool]:
    """The admin token: from ``OPEN1PANEL_AI_TOKEN``, else the data dir's token file, created
    (mode 0600) on first start. Returns (token, created_now)."""
    from_env = environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, False
    return _read_or_create_secret(data_dir / TOKEN_FILE, other_way=f", or set {TOKEN_ENV}")


def load_or_create_session_secret(data_dir: Path) -> str:
    """The key that signs browser sessions: the data dir's secret file, created (mode 0600) on
    first start. A new one signs every browser out."""
    return _read_or_create_secret(data_dir / SECRET_FILE, 48)[0]


class TokenAuth:
    """Checks credentials against the admin token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("The admin token must not be empty.")
        self._token = token
        # Sessions remember which token signed them in, so a new token signs everyone out.
        self._fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]

    def matches(self, candidate: Any) -> bool:
        """Whether ``candidate`` is the admin token (never true for an empty one)."""
        return isinstance(candidate, str) and bool(candidate) and hmac.compare_digest(candidate.encode(), self._token.encode())

    def authenticate(self, request, auth: Any = None) -> dict[str, str] | None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.matches(credentials.strip()):
            return {"name": "admin", "via": "token"}
        if isinstance(auth, dict) and self.matches(auth.get("token")):
            return {"name": "admin", "via": "token"}
        if session.get("user") and session.get("token") == self._fingerprint:
            return {"name": session["user"], "via": "session"}
        return None

    def sign_in(self) -> None:
        session.clear()
        session.permanent = True
        session["user"] = "admin"
        session["token"] = self._fingerprint
        session["csrf"] = secrets.token_urlsafe(24)


def csrf_token() -> str:
    """The CSRF token of the current browser session (created when missing)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def csrf_ok(request) -> bool:
    """Whether ``request`` carries its session's CSRF token, in the header or a form field.
    A form's body is read so that it is kept, and can still be relayed to the owner process;
    one over the body limit is a 413 envelope, refused before it is read into memory."""
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.mimetype in FORM_TYPES:
        read_form_body()
        sent = request.form.get(CSRF_FIELD)
    return bool(expected and sent) and hmac.compare_digest(str(sent), str(expected))
