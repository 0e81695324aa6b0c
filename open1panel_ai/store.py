"""The plugin's SQLite store: one file in the data dir, WAL mode, versioned migrations.

Each feature owns its tables and brings its own list of migrations under a component name;
:meth:`Store.migrate` applies the ones a database has not seen yet, each in its own
transaction, and records them in ``schema_migrations``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from open1panel_ai import private

#: Seconds :meth:`Store.close` waits for a thread to finish with its connection.
CLOSE_WAIT = 10

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (component, version)
)
"""


def timestamp() -> str:
    """Now, in the one form the tables store times: UTC to the millisecond with a ``Z``
    (``2026-05-01T12:00:00.123Z``, as SQLite's ``strftime('%Y-%m-%dT%H:%M:%fZ')`` writes it)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """Thread-safe access to one SQLite database file.

    Every thread gets its own connection (SQLite connections must not be shared while in use),
    closed when the thread ends, so short-lived threads (a pool per request, a timer per event)
    leave no connection behind. :meth:`close` waits for a connection another thread is using
    (closing it under that thread crashes the interpreter). Writes go through :meth:`transaction`, which takes the write
    lock up front so two writers never deadlock on an upgrade from a read lock.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        private.private_dir(self.path.parent)
        # SQLite gives the -wal and -shm files the database file's mode: 0600 from the start.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, private.FILE_MODE))
        self._local = threading.local()
        #: Every open connection, with the lock its thread holds while using it.
        self._connections: dict[sqlite3.Connection, threading.RLock] = {}
        self._lock = threading.Lock()
        self._closed = False
        with self.transaction() as db:
            db.execute(_BOOKKEEPING)

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, kept from :meth:`close` while the block runs."""
        holder = self._holder()
        with holder.in_use:
            if self._closed:
                raise RuntimeError("the store is closed")
            yield holder.db

    def _holder(self) -> _ThreadConnection:
        if self._closed:
            raise RuntimeError("the store is closed")
        holder = getattr(self._local, "holder", None)
        if holder is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            holder = self._local.holder = _ThreadConnection(db)
            with self._lock:
                self._connections[db] = holder.in_use
            # Only this thread's local storage refers to the holder: it goes when the thread ends.
            weakref.finalize(holder, self._forget, db)
        return holder

    def _forget(self, db: sqlite3.Connection) -> None:
        """Close the connection of a thread that has ended."""
        with self._lock:
            self._connections.pop(db, None)
        db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction: committed on success, rolled back on error."""
        with self._using() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._using() as db:
            return db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._using() as db:
            return db.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement in its own transaction; return the number of rows changed."""
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    def schema_version(self, component: str) -> int:
        row = self.query_one(
            "SELECT max(version) AS v FROM schema_migrations WHERE component = ?", (component,)
        )
        return row["v"] or 0

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the migrations of ``component`` that are newer than the database.

        ``migrations[0]`` is version 1, and so on; a migration is one or more SQL statements.
        Released migrations must never change: add a new one instead.

        :return: the schema version now in place.
        """
        current = self.schema_version(component)
        if current > len(migrations):
            raise RuntimeError(
                f"the database holds {component} schema version {current}, newer than this "
                f"release knows ({len(migrations)}); upgrade open1panel-ai or restore a backup"
            )
        for version, script in enumerate(migrations[current:], start=current + 1):
            with self.transaction() as db:
                applied = db.execute("SELECT max(version) FROM schema_migrations WHERE component = ?",
                                     (component,)).fetchone()[0] or 0
                if applied >= version:
                    continue  # another process sharing the database applied it meanwhile
                for statement in _split_statements(script):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (component, version) VALUES (?, ?)",
                    (component, version),
                )
        return len(migrations)

    def integrity_check(self) -> str:
        """Return SQLite's ``PRAGMA integrity_check`` verdict (``"ok"`` when healthy)."""
        return "; ".join(row[0] for row in self.query("PRAGMA integrity_check"))

    def close(self) -> None:
        """Close every connection, each once its thread is done with it; one still busy after
        :data:`CLOSE_WAIT` seconds is left for its thread's end to close. A final checkpoint
        folds the WAL back into the file."""
        with self._lock:
            self._closed = True
            connections = list(self._connections.items())
            self._connections.clear()
        for db, in_use in connections:
            if not in_use.acquire(timeout=CLOSE_WAIT):
                continue
            try:
                try:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass
                db.close()
            finally:
                in_use.release()


class _ThreadConnection:
    """One thread's connection and the lock held while it is used; sqlite3 connections cannot
    be weakly referenced, this can."""

    __slots__ = ("__weakref__", "db", "in_use")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.in_use = threading.RLock()


def _split_statements(script: str) -> list[str]:
    """Split a migration script into complete statements (``executescript`` would commit)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and sqlite3.complete_statement(pending + ";"):
        statements.append(pending.strip())
    elif pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")
    return statements
