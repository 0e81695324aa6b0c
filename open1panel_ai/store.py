"""The plugin's SQLite store: one file in the data dir, WAL mode, versioned migrations.

Each feature owns its tables and brings its own list of migrations under a component name;
:meth:`Store.migrate` applies the ones a database has not seen yet, each in its own
transaction, and records them in ``schema_migrations``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from open1panel_ai import private

#: Seconds :meth:`Store.close` waits for a thread to finish with its connection.
CLOSE_WAIT = 10
#: Seconds a connection waits for a lock held by another writer (SQLite's busy timeout).
LOCK_TIMEOUT = 30
#: Connections a store keeps open between uses: about as many as run queries at once in a
#: panel (whose Python code runs one thread at a time).
IDLE_CONNECTIONS = 8
#: Connections open at once: a thread that finds them all in use waits for one. Opening and
#: closing a connection for each burst would allocate and free its schema and page cache
#: each time, from the allocator arena of whichever of hundreds of threads did it, which
#: leaves the freed memory scattered among blocks still in use (see docs/performance.md).
MAX_CONNECTIONS = IDLE_CONNECTIONS

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

    A connection serves one thread at a time (SQLite connections must not be shared while in
    use), from the first store call of a block to the end of its outermost one, so a query
    inside a transaction runs in that transaction. Idle connections are kept for the next
    thread, at most :data:`IDLE_CONNECTIONS` of them; one more is opened for a burst and
    closed after it. Each connection holds what it read (its page cache, its sorts), so a
    connection per thread of a server with hundreds of request threads would hold hundreds of
    those, and more as the tables grow; with the idle ones bounded, what the store holds does
    not depend on the number of threads. :meth:`close` waits for a connection another thread
    is using (closing it under that thread crashes the interpreter). Writes go through
    :meth:`transaction`, which takes the write lock up front so two writers never deadlock on
    an upgrade from a read lock, or :meth:`execute`, one statement that is its own transaction.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        private.private_dir(self.path.parent)
        # SQLite gives the -wal and -shm files the database file's mode: 0600 from the start.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, private.FILE_MODE))
        self._local = threading.local()  # the connection this thread is using, while it is
        #: Every open connection, with the lock its thread holds while using it.
        self._connections: dict[sqlite3.Connection, threading.RLock] = {}
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        #: Told when a connection is given back or closed; waited on, under ``_lock``, by a
        #: thread that finds :data:`MAX_CONNECTIONS` in use.
        self._free = threading.Condition(self._lock)
        self._open = 0  # connections open or being opened
        #: Connections opened since the store was, for those who measure it.
        self.opened = 0
        #: Held by the thread in a write transaction (see :meth:`transaction`); reentrant, so a
        #: nested transaction fails in SQLite as it always did instead of waiting on itself.
        self._writing = threading.RLock()
        self._closed = False
        with self.transaction() as db:
            db.execute(_BOOKKEEPING)

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread, kept from :meth:`close` and from other threads while
        the block runs; nested blocks of one thread get the same one."""
        holder = getattr(self._local, "holder", None)
        if holder is not None:
            with holder.in_use:
                if self._closed:
                    raise RuntimeError("the store is closed")
                yield holder.db
            return
        holder = self._take()
        self._local.holder = holder
        try:
            with holder.in_use:
                if self._closed:
                    raise RuntimeError("the store is closed")
                yield holder.db
        finally:
            self._local.holder = None
            self._give_back(holder)

    def _take(self) -> _Connection:
        """An idle connection, else a new one while fewer than :data:`MAX_CONNECTIONS` are open,
        else the first one another thread gives back. A thread holds a connection for one
        statement, or for one transaction (and those run one at a time), so one comes back
        soon; after :data:`LOCK_TIMEOUT` seconds without, one more is opened all the same."""
        deadline = None
        with self._free:
            while True:
                if self._closed:
                    raise RuntimeError("the store is closed")
                if self._idle:
                    return self._idle.pop()
                if self._open < MAX_CONNECTIONS:
                    break
                if deadline is None:
                    deadline = time.monotonic() + LOCK_TIMEOUT
                if not self._free.wait(deadline - time.monotonic()) and time.monotonic() >= deadline:
                    break
            self._open += 1
            self.opened += 1
        try:
            return self._connect()
        except BaseException:
            with self._free:
                self._open -= 1
                self._free.notify()
            raise

    def _connect(self) -> _Connection:
        db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        holder = _Connection(db)
        with self._lock:
            self._connections[db] = holder.in_use
        return holder

    def _give_back(self, holder: _Connection) -> None:
        """Keep a connection a thread is done with for the next, or close it when enough are
        kept already (or the store is closed)."""
        with self._free:
            if not self._closed and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(holder)
                self._free.notify()
                return
            self._connections.pop(holder.db, None)
            self._open -= 1
            self._free.notify()
        with holder.in_use:
            holder.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction: committed on success, rolled back on error.

        The transactions of this process take turns on a lock of their own before SQLite's
        write lock, which a transaction holds from its ``BEGIN`` to its ``COMMIT``: a writer
        that finds SQLite's lock taken polls it with sleeps that grow to 100 ms (its busy
        handler), while one waiting on this lock starts the moment the one before is done.
        Writers in other processes, and :meth:`execute`'s, still meet at SQLite's lock. Like
        SQLite's, the wait ends in ``database is locked`` after the connection's timeout."""
        if not self._writing.acquire(timeout=LOCK_TIMEOUT):
            raise sqlite3.OperationalError("database is locked")
        try:
            with self._using() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                else:
                    db.execute("COMMIT")
        finally:
            self._writing.release()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._using() as db:
            return db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._using() as db:
            return db.execute(sql, params).fetchone()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement; return the number of rows changed.

        Alone, the statement is its own transaction (SQLite's autocommit): SQLite holds its
        write lock only inside that one call, and lets it go before the thread waits to get
        the interpreter back. So it does not queue on :meth:`transaction`'s lock, which its
        holder keeps through those waits (a writer that finds SQLite's lock taken retries
        within milliseconds). Inside a transaction of this thread it is part of that one.
        """
        with self._using() as db:
            return db.execute(sql, params).rowcount

    def schema_version(self, component: str) -> int:
        row = self.query_one("SELECT max(version) AS v FROM schema_migrations WHERE component = ?", (component,))
        if row is None:  # never: an aggregate answers one row
            return 0
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
                applied = (
                    db.execute(
                        "SELECT max(version) FROM schema_migrations WHERE component = ?", (component,)
                    ).fetchone()[0]
                    or 0
                )
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
        :data:`CLOSE_WAIT` seconds is left for its thread to close. A final checkpoint folds
        the WAL back into the file."""
        with self._free:
            self._closed = True
            connections = list(self._connections.items())
            self._connections.clear()
            self._idle.clear()
            self._free.notify_all()
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


class _Connection:
    """A connection and the lock its thread holds while using it."""

    __slots__ = ("db", "in_use")

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
