"""The secrets a binding puts in front of its target: bearer tokens and basic-auth hashes.

Basic-auth passwords are kept only as bcrypt hashes, the one strong scheme both nginx (through
the system's crypt, libxcrypt on current distributions) and Caddy's ``http_basic`` accept.
"""

from __future__ import annotations

import secrets

import bcrypt

#: bcrypt's cost factor: about a quarter of a second per check on a small server.
BCRYPT_ROUNDS = 12
MIN_PASSWORD_LENGTH = 12
#: bcrypt reads at most this many bytes of a password (and refuses more).
MAX_PASSWORD_BYTES = 72


def new_bearer_token() -> str:
    """A fresh bearer token: 256 random bits in URL-safe base64 (safe inside any config)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str) -> str:
    """The bcrypt hash (``$2b$…``) of a basic-auth password."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")
