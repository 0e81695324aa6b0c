"""The SQLite store: WAL, versioned migrations, no committed data lost to a crash, and no
connection left open by a thread that has ended."""

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

from open1panel_ai.store import IDLE_CONNECTIONS, MAX_CONNECTIONS, Store


def test_the_database_runs_in_wal_mode(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    assert store.query_one("PRAGMA journal_mode")[0] == "wal"
    store.close()


def test_a_thread_that_ends_leaves_no_connection_open(tmp_path):
    """Short-lived threads (a pool per request, a timer per event) each read the store; their
    connections close as they end, so open database files do not pile up."""
    store = Store(tmp_path / "db.sqlite3")

    def open_database_files():
        return sum(1 for f in psutil.Process().open_files() if f.path.startswith(str(store.path)))

    def threads_reading(count):
        for _ in range(count):
            thread = threading.Thread(target=store.query, args=("SELECT count(*) FROM schema_migrations",))
            thread.start()
            thread.join()
        return open_database_files()

    # SQLite may keep one closed file open for reuse; after that the count holds still.
    assert threads_reading(5) == threads_reading(20)
    assert store.query_one("SELECT count(*) FROM schema_migrations")[0] == 0  # this thread's still works
    store.close()


def test_live_threads_share_a_bounded_number_of_connections(tmp_path):
    """A server's request threads live as long as it does. A connection kept per thread would
    hold its page cache and open files for each of them, more as the tables grow; instead the
    store keeps IDLE_CONNECTIONS at most, however many live threads have read it."""
    store = Store(tmp_path / "db.sqlite3")
    store.execute("CREATE TABLE t (x INTEGER)")
    release, have_read = threading.Event(), threading.Semaphore(0)

    def reader():
        store.query("SELECT count(*) FROM t")
        have_read.release()
        release.wait(10)  # alive, as a request thread between requests

    threads = [threading.Thread(target=reader) for _ in range(100)]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:
            assert have_read.acquire(timeout=10)
        assert len(store._connections) <= IDLE_CONNECTIONS
        files = sum(1 for f in psutil.Process().open_files() if f.path.startswith(str(store.path)))
        assert files <= 3 * IDLE_CONNECTIONS
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
    store.close()


def test_threads_reading_at_once_wait_for_a_connection_rather_than_open_more(tmp_path):
    """Fifty threads querying side by side open MAX_CONNECTIONS connections at most, all
    kept: no connection is opened and closed per burst (whose schema and page cache, freed
    from the allocator arenas of many threads, would scatter free memory the process keeps)."""
    store = Store(tmp_path / "db.sqlite3")
    store.execute("CREATE TABLE t (x INTEGER)")
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT count(*) FROM c"
    answers = []

    def reader():
        for _ in range(10):
            answers.append(store.query_one(slow)[0])

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [20000] * 500
    assert store.opened <= MAX_CONNECTIONS
    assert len(store._connections) == store.opened  # every one kept for the next
    store.close()


def test_a_query_inside_a_transaction_runs_in_it(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    store.execute("CREATE TABLE t (x INTEGER)")
    with store.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
        assert store.query_one("SELECT count(*) FROM t")[0] == 1  # not yet committed
    store.close()


def test_migrations_apply_once_and_in_order(tmp_path):
    migrations = [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",
        "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;\nCREATE INDEX notes_pinned ON notes (pinned);",
    ]
    store = Store(tmp_path / "db.sqlite3")
    assert store.migrate("notes", migrations[:1]) == 1
    store.execute("INSERT INTO notes (text) VALUES ('kept')")
    assert store.migrate("notes", migrations) == 2
    assert store.migrate("notes", migrations) == 2  # nothing left to do
    assert store.query_one("SELECT text, pinned FROM notes")[:] == ("kept", 0)
    versions = [tuple(r) for r in store.query("SELECT component, version FROM schema_migrations ORDER BY version")]
    assert versions == [("notes", 1), ("notes", 2)]
    store.close()


def test_a_failing_migration_leaves_the_previous_version_in_place(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    store.migrate("notes", ["CREATE TABLE notes (id INTEGER PRIMARY KEY)"])
    with pytest.raises(sqlite3.OperationalError):
        store.migrate(
            "notes",
            [
                "CREATE TABLE notes (id INTEGER PRIMARY KEY)",
                "CREATE TABLE extra (id INTEGER);\nALTER TABLE missing ADD COLUMN x;",
            ],
        )
    assert store.schema_version("notes") == 1
    assert store.query("SELECT name FROM sqlite_master WHERE name = 'extra'") == []
    store.close()


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    store.migrate("notes", ["CREATE TABLE a (x)", "CREATE TABLE b (x)"])
    with pytest.raises(RuntimeError, match="newer than this release"):
        store.migrate("notes", ["CREATE TABLE a (x)"])
    store.close()


WRITER = textwrap.dedent("""
    import sys
    from open1panel_ai.store import IDLE_CONNECTIONS, Store
    store = Store(sys.argv[1])
    store.migrate("demo", ["CREATE TABLE rows (n INTEGER PRIMARY KEY)"])
    for n in range(200):
        store.execute("INSERT INTO rows (n) VALUES (?)", (n,))
    with store.transaction() as db:
        for n in range(200, 5000):
            db.execute("INSERT INTO rows (n) VALUES (?)", (n,))
        print("in-transaction", flush=True)
        sys.stdin.readline()  # the test kills us here, before COMMIT
""")


def test_killing_a_writer_mid_transaction_loses_nothing_committed(tmp_path):
    path = tmp_path / "db.sqlite3"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "in-transaction"
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    store = Store(path)
    assert store.integrity_check() == "ok"
    assert [r[0] for r in store.query("SELECT n FROM rows ORDER BY n")] == list(range(200))
    store.close()


def test_closing_waits_for_a_transaction_another_thread_is_in(tmp_path):
    store = Store(tmp_path / "a.sqlite3")
    store.execute("CREATE TABLE t (x INTEGER)")
    inside, finish, outcome = threading.Event(), threading.Event(), []

    def writer():
        with store.transaction() as db:
            inside.set()
            finish.wait(10)
            db.execute("INSERT INTO t VALUES (1)")
        outcome.append("committed")
        try:
            store.query("SELECT x FROM t")
        except RuntimeError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() must wait for the writer's transaction"
    finish.set()
    closer.join(10)
    thread.join(10)
    assert outcome == ["committed", "the store is closed"]
    with sqlite3.connect(tmp_path / "a.sqlite3") as db:
        assert db.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_a_single_statement_write_does_not_queue_behind_a_transaction_waiting_its_turn(tmp_path):
    """A transaction holds the process's write lock through every wait for the interpreter
    between its statements; under load those waits are long. A single-statement write holds
    SQLite's lock only inside its one call into SQLite, so it must not queue on that lock:
    here another thread holds it (a transaction's writer that has not reached SQLite yet)
    and the write still lands."""
    store = Store(tmp_path / "a.sqlite3")
    store.execute("CREATE TABLE t (x INTEGER)")
    holding, release, let_go = threading.Event(), threading.Event(), threading.Event()

    def transaction_waiting_its_turn():
        with store._writing:
            holding.set()
            release.wait(60)
        let_go.set()

    holder = threading.Thread(target=transaction_waiting_its_turn)
    holder.start()
    try:
        assert holding.wait(10)
        assert store.execute("INSERT INTO t VALUES (1)") == 1
        landed_while_held = not let_go.is_set()
    finally:
        release.set()
        holder.join()
    assert landed_while_held and store.query_one("SELECT count(*) AS n FROM t")["n"] == 1
    store.close()
