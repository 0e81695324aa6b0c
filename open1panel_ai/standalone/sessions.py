"""What the standalone host keeps on the server about browsers: their sessions, and the wrong
tokens each client address sent to the sign-in form.

Both live in ``<data dir>/host.sqlite3`` (mode 0600), so every panel process of a data dir
sees the same: a session signed out through one process is signed out in all of them, and a
client cannot spread its guesses over several processes. A browser's cookie names its session
by a random id; the database keeps only the id's SHA-256, so a copy of the database opens no
session.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from open1panel_ai.host import private

DATABASE_FILE = "host.sqlite3"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, created REAL NOT NULL, expires REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sign_in_failures (client TEXT PRIMARY KEY, first REAL NOT NULL, "
    "count INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class HostDatabase:
    """One SQLite connection shared by the threads of a process, one statement group at a time.

    The host asks it once per browser request (is this session alive?), which takes well under
    a millisecond; one connection keeps the process's open files at three however many request
    threads it has."""

    def __init__(self, path: Path) -> None:
        private.private_dir(path.parent)
        # Created 0600 before SQLite opens it; SQLite gives the -wal and -shm files its mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, private.FILE_MODE))
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        with self.transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (other processes wait for it, up to 30 s)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query_one(self, sql: str, params: tuple = ()) -> tuple | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Browser sessions: made at sign-in, alive for ``lifetime`` seconds, gone at sign-out.

    A session cookie is good only while its id is here, so signing out ends it on the server
    and a copy of the cookie taken before is worth nothing. ``token_check`` (a keyed hash of
    the admin token) is kept beside them: a panel that starts with another admin token drops
    every session, which signs every browser out."""

    def __init__(self, database: HostDatabase, lifetime: float, token_check: str) -> None:
        self.database = database
        self.lifetime = lifetime
        with database.transaction() as db:
            row = db.execute("SELECT value FROM settings WHERE name = 'token_check'").fetchone()
            if row is None or row[0] != token_check:
                db.execute("DELETE FROM sessions")
                db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES ('token_check', ?)", (token_check,))

    def create(self, session_id: str) -> None:
        """Keep ``session_id`` (a fresh random id) as a live session; drop expired ones."""
        now = time.time()
        with self.database.transaction() as db:
            db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            db.execute(
                "INSERT INTO sessions (id_hash, created, expires) VALUES (?, ?, ?)",
                (_id_hash(session_id), now, now + self.lifetime),
            )

    def alive(self, session_id: object) -> bool:
        """Whether ``session_id`` names a session that was made here, not ended and not expired."""
        if not isinstance(session_id, str) or not session_id:
            return False
        row = self.database.query_one(
            "SELECT 1 FROM sessions WHERE id_hash = ? AND expires > ?", (_id_hash(session_id), time.time())
        )
        return row is not None

    def end(self, session_id: object) -> None:
        """End one session (sign-out)."""
        if isinstance(session_id, str) and session_id:
            with self.database.transaction() as db:
                db.execute("DELETE FROM sessions WHERE id_hash = ?", (_id_hash(session_id),))


def client_key(address: str | None) -> str:
    """Whom the sign-in throttle counts: an IPv4 address, or the /64 network of an IPv6 one
    (one host usually holds a whole /64, so counting its addresses one by one would count
    nothing)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"  # not an IP address (a unix socket): all such clients count as one
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SignInThrottle:
    """Counts wrong tokens per client: after ``attempts`` of them within ``window`` seconds of
    the first, that client's sign-ins are refused until the window ends. A right token clears
    the count."""

    def __init__(self, database: HostDatabase, attempts: int, window: float) -> None:
        self.database = database
        self.attempts = attempts
        self.window = window

    def retry_after(self, client: str) -> int:
        """Seconds ``client`` must wait before it may try again; 0 when it may try now."""
        now = time.time()
        row = self.database.query_one("SELECT first, count FROM sign_in_failures WHERE client = ?", (client,))
        if row is None or row[1] < self.attempts or now >= row[0] + self.window:
            return 0
        return max(1, math.ceil(row[0] + self.window - now))

    def failed(self, client: str) -> tuple[int, int]:
        """Count one wrong token. Returns (wrong tokens in this window, seconds until ``client``
        may try again: 0 while it has attempts left)."""
        now = time.time()
        with self.database.transaction() as db:
            db.execute("DELETE FROM sign_in_failures WHERE first <= ?", (now - self.window,))
            row = db.execute("SELECT first, count FROM sign_in_failures WHERE client = ?", (client,)).fetchone()
            first, count = (row[0], row[1] + 1) if row else (now, 1)
            db.execute(
                "INSERT OR REPLACE INTO sign_in_failures (client, first, count) VALUES (?, ?, ?)",
                (client, first, count),
            )
        return count, (max(1, math.ceil(first + self.window - now)) if count >= self.attempts else 0)

    def succeeded(self, client: str) -> None:
        with self.database.transaction() as db:
            db.execute("DELETE FROM sign_in_failures WHERE client = ?", (client,))
