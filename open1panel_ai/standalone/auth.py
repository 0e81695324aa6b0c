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
from pathlib import Path
from typing import Any

from flask import session

TOKEN_FILE = "admin-token"
SECRET_FILE = "session-secret"
TOKEN_ENV = "OPEN1PANEL_AI_TOKEN"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _read_or_create_secret(path: Path, nbytes: int = 32) -> tuple[str, bool]:
    """Read a secret file, or create it with owner-only permissions. Returns (secret, created)."""
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, True


def load_or_create_token(data_dir: Path, environ=os.environ) -> tuple[str, bool]:
    """The admin token: from ``OPEN1PANEL_AI_TOKEN``, else the data dir's token file, created
    (mode 0600) on first start. Returns (token, created_now)."""
    from_env = environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env, False
    return _read_or_create_secret(data_dir / TOKEN_FILE)


def load_or_create_session_secret(data_dir: Path) -> str:
    return _read_or_create_secret(data_dir / SECRET_FILE, 48)[0]


class TokenAuth:
    """Checks credentials against the admin token."""

    def __init__(self, token: str) -> None:
        self._token = token
        # Sessions remember which token signed them in, so a new token signs everyone out.
        self._fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]

    def matches(self, candidate: Any) -> bool:
        return isinstance(candidate, str) and hmac.compare_digest(candidate.encode(), self._token.encode())

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
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    return bool(expected and sent) and hmac.compare_digest(str(sent), str(expected))
