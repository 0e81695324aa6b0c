"""Background tasks: long work with persisted state, live progress, cancel and retry.

A feature registers a :class:`TaskKind` (a name and a function) and submits tasks of it. The
runner keeps every task in SQLite, so a panel restart loses nothing: a task left ``queued`` or
``running`` by a crash becomes ``interrupted`` at the next start, and kinds declared
``resumable`` are started again by themselves.

Progress is published through a callback (the Socket.IO ``task`` event), coalesced to at most
:data:`MAX_EVENTS_PER_SECOND` per task; a task's final state is always published.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from open1panel_ai import i18n
from open1panel_ai.i18n import Message
from open1panel_ai.store import Store, timestamp

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE = frozenset({"queued", "running"})
FINAL = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
RETRYABLE = frozenset({"failed", "cancelled", "interrupted"})

MAX_EVENTS_PER_SECOND = 4
#: Progress is written to SQLite at most this often while a task runs (state changes always are).
PERSIST_INTERVAL = 1.0
#: Speed is measured over this trailing window of progress reports.
SPEED_WINDOW = 5.0
#: Finished tasks older than this are removed at startup.
KEEP_FINISHED = timedelta(days=30)
#: Listings (one per filter and limit asked for) whose rows are kept while the table is unchanged.
KEPT_LISTINGS = 16

MIGRATIONS = [
    """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        completed INTEGER,
        total INTEGER,
        percent REAL,
        bytes_per_second REAL,
        eta_seconds REAL,
        message TEXT,
        error TEXT,
        resume_on_start INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX tasks_by_status ON tasks (status);
    CREATE INDEX tasks_by_created ON tasks (created_at);
    """,
    # The key and values of a message the pages translate ({"key", "params"}), or NULL.
    "ALTER TABLE tasks ADD COLUMN message_i18n TEXT;",
]

_PUBLIC_FIELDS = (
    "id",
    "kind",
    "target",
    "status",
    "completed",
    "total",
    "percent",
    "bytes_per_second",
    "eta_seconds",
    "message",
    "message_i18n",
    "error",
    "created_at",
    "updated_at",
)


class TaskCancelled(Exception):
    """Raised inside a task function when it notices it was cancelled."""


class TaskError(Exception):
    """Raised by a task function to fail with a message a person understands.

    :param message: what went wrong and, where possible, what to do; a
        :class:`~open1panel_ai.i18n.Message` is shown in the reader's language.
    :param details: machine-readable context, such as the upstream's own error text.
    """

    status = "failed"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class TaskInterrupted(TaskError):
    """Raised when outside circumstances stopped the work (a dropped connection, say).

    The task ends ``interrupted`` rather than ``failed``: retrying it is expected to work.
    """

    status = "interrupted"


class TaskConflict(Exception):
    """A cancel or retry that the task's current status does not allow."""


@dataclass(frozen=True)
class TaskKind:
    """A kind of long work a feature offers.

    :param name: the ``kind`` field of its tasks (``"ollama.pull"``).
    :param run: called in a worker thread with a :class:`TaskContext`; returns on success,
        raises :class:`TaskError` / :class:`TaskInterrupted` / :class:`TaskCancelled` otherwise.
    :param resumable: start tasks of this kind again by themselves after a panel restart.
    """

    name: str
    run: Callable[[TaskContext], None]
    resumable: bool = False


@dataclass
class _Live:
    """What the runner keeps in memory about a task that is queued or running."""

    record: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    on_cancel: list[Callable[[], None]] = field(default_factory=list)
    samples: deque = field(default_factory=lambda: deque(maxlen=64))
    persisted_at: float = 0.0
    stopping_panel: bool = False
    #: The version of the record's last snapshot for the store, and of the last one written.
    version: int = 0
    written: int = 0
    #: Held while a snapshot of this task is written, so that its writes land in order.
    write_lock: threading.Lock = field(default_factory=threading.Lock)


class TaskContext:
    """What a task function gets: its parameters, a progress reporter, and cancellation."""

    def __init__(self, runner: TaskRunner, live: _Live) -> None:
        self._runner = runner
        self._live = live
        record = live.record
        self.id: str = record["id"]
        self.kind: str = record["kind"]
        self.target: str = record["target"]
        self.params: dict[str, Any] = json.loads(record["params"])
        #: 1 for the first run, 2 after the first retry or resume, and so on.
        self.attempt: int = record["attempts"]

    @property
    def cancelled(self) -> bool:
        return self._live.cancel.is_set()

    @property
    def panel_stopping(self) -> bool:
        """Whether the cancel comes from the panel shutting down (a resumable task continues at
        the next start) rather than from a person."""
        return self._live.stopping_panel

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise TaskCancelled()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from another thread) when the task is cancelled, e.g. to close a
        stream the task is blocked on. Called at once if it already was."""
        self._live.on_cancel.append(callback)
        if self.cancelled:
            callback()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True early if the task was cancelled meanwhile."""
        return self._live.cancel.wait(seconds)

    def progress(self, completed: int | None = None, total: int | None = None, message: str | None = None) -> None:
        """Report progress. ``completed`` and ``total`` are in the task's unit (bytes for
        downloads); speed, ETA and a never-decreasing percent are derived from them."""
        self._runner._progress(self._live, completed, total, message)


class TaskRunner:
    """Runs tasks in a thread pool and keeps their state in the store."""

    def __init__(self, store: Store, publish: Callable[[dict[str, Any]], None], workers: int = 4) -> None:
        self._store = store
        self._publish = publish
        self._kinds: dict[str, TaskKind] = {}
        self._live: dict[str, _Live] = {}
        self._lock = threading.RLock()
        self._emit_lock = threading.Lock()
        self._emitted_at: dict[str, float] = {}
        self._emit_timers: dict[str, threading.Timer] = {}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")
        self._stopping = False
        self._started = False
        #: Counts this runner's writes to the tasks table; a listing is kept with the count it
        #: was read at (see :meth:`list`).
        self._writes = itertools.count()
        self._written = next(self._writes)
        self._listings: OrderedDict[tuple[Any, ...], tuple[int, list[tuple[str, dict[str, Any]]]]] = OrderedDict()
        store.migrate("tasks", MIGRATIONS)

    # -- registration and startup ---------------------------------------------------------

    def register(self, kind: TaskKind) -> None:
        """Offer a kind of task. A resumable kind registered after :meth:`start` still picks up
        its tasks that a restart interrupted."""
        if kind.name in self._kinds:
            raise ValueError(f"task kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind
        if self._started and kind.resumable:
            self._resume(kind.name)

    def start(self) -> list[str]:
        """Recover from the last run: mark unfinished tasks ``interrupted`` and start the
        resumable ones again. Call once, after every feature registered its kinds.

        :return: the ids of the tasks resumed.
        """
        cutoff = (datetime.now(UTC) - KEEP_FINISHED).isoformat().replace("+00:00", "Z")
        with self._store.transaction() as db:
            db.execute(
                "DELETE FROM tasks WHERE status IN ('succeeded', 'failed', 'cancelled') AND updated_at < ?",
                (cutoff,),
            )
            db.execute(
                "UPDATE tasks SET status = 'interrupted', resume_on_start = 1, "
                "bytes_per_second = NULL, eta_seconds = NULL, updated_at = ?, "
                "error = ? WHERE status IN ('queued', 'running')",
                (timestamp(), json.dumps(_panel_stopped_error())),
            )
        self._wrote()
        self._started = True
        return [task_id for kind in self._kinds.values() if kind.resumable for task_id in self._resume(kind.name)]

    def _resume(self, kind: str) -> list[str]:
        resumed = []
        for row in self._store.query(
            "SELECT id FROM tasks WHERE status = 'interrupted' AND resume_on_start = 1 "
            "AND kind = ? ORDER BY created_at",
            (kind,),
        ):
            with self._lock:
                live = self._requeue(row["id"], message=Message("task.message.resuming"))
            self._launch(live)
            resumed.append(row["id"])
        return resumed

    # -- public operations ----------------------------------------------------------------

    def submit(self, kind: str, target: str, params: Mapping[str, Any] | None = None) -> dict:
        """Start a task, or return the active task of the same kind and target (so a second
        request for the same work joins the first instead of doubling it)."""
        if kind not in self._kinds:
            raise ValueError(f"unknown task kind {kind!r}")
        with self._lock:
            running = self._find_active(kind, target)
            if running is not None:
                return self._public(running.record)
            now = timestamp()
            record: dict[str, Any] = {
                "id": uuid.uuid4().hex,
                "kind": kind,
                "target": target,
                "params": json.dumps(dict(params or {}), sort_keys=True),
                "status": "queued",
                "completed": None,
                "total": None,
                "percent": None,
                "bytes_per_second": None,
                "eta_seconds": None,
                "message": None,
                "message_i18n": None,
                "error": None,
                "resume_on_start": 0,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            columns = ", ".join(record)
            marks = ", ".join("?" for _ in record)
            self._store.execute(f"INSERT INTO tasks ({columns}) VALUES ({marks})", list(record.values()))
            self._wrote()
            live = _Live(record)
            self._live[record["id"]] = live
            queued = self._public(record)
        self._launch(live)
        return queued

    def active(self, kind: str, target: str) -> dict | None:
        """The queued or running task of ``kind`` on ``target``, if there is one."""
        with self._lock:
            running = self._find_active(kind, target)
            return self._public(running.record) if running is not None else None

    def get(self, task_id: str) -> dict | None:
        with self._lock:
            live = self._live.get(task_id)
            if live is not None:
                return self._public(live.record)
        row = self._store.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return self._public(dict(row)) if row else None

    def _with_live(self, listing: list[tuple[str, dict[str, Any]]]) -> list[dict]:
        """A listing with each running task as it is now; the caller holds the lock."""
        live = self._live
        return [self._public(live[task_id].record) if task_id in live else task for task_id, task in listing]

    def list(self, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[dict]:
        """The tasks, newest first: the ``limit`` latest, of ``status`` and ``kind`` when given.

        A running task is taken as it is now, from memory. Once :meth:`start` made this process
        the one that runs tasks (and so the only writer of their table), the rows of each
        listing are kept until the next write, and asked for again only then: a list asked for
        many times a second, while a download's progress changes only the running task, is
        read from SQLite about once a second (its progress is written that often) instead of
        for every request. The dicts of finished tasks are shared by the callers: read them,
        do not change them."""
        key = (status, kind, limit)
        with self._lock:
            kept = self._listings.get(key)
            if kept is not None and kept[0] == self._written:
                self._listings.move_to_end(key)
                return self._with_live(kept[1])
            written = self._written
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if kind:
            clauses.append("kind = ?")
            params.append(kind)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._store.query(f"SELECT * FROM tasks {where} ORDER BY created_at DESC LIMIT ?", [*params, limit])
        listing = [(row["id"], self._public(dict(row))) for row in rows]
        with self._lock:
            # Kept only when no write landed since the count was read: a listing read across
            # a write may hold either side of it.
            if self._started and written == self._written:
                self._listings[key] = (written, listing)
                self._listings.move_to_end(key)
                while len(self._listings) > KEPT_LISTINGS:
                    self._listings.popitem(last=False)
            return self._with_live(listing)

    def cancel(self, task_id: str) -> dict:
        with self._lock:
            live = self._live.get(task_id)
            if live is None:
                task = self.get(task_id)
                if task is None:
                    raise KeyError(task_id)
                raise TaskConflict(Message("task.error.not_cancellable", status=task["status"]))
            live.cancel.set()
            callbacks = list(live.on_cancel)
            ended = None
            if live.record["status"] == "queued":
                ended = self._finish(live, "cancelled", message=Message("task.message.cancelled_before_start"))
        if ended is not None:
            self._emit(task_id, final=True, snapshot=ended)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a closer that fails must not keep the cancel from happening
                log.exception("cancel callback of task %s failed", task_id)
        return self._saved(task_id)

    def retry(self, task_id: str) -> dict:
        task = self.get(task_id)
        if task is None:
            raise KeyError(task_id)
        if task["status"] not in RETRYABLE:
            raise TaskConflict(Message("task.error.not_retryable", status=task["status"]))
        if task["kind"] not in self._kinds:
            raise TaskConflict(Message("task.error.unknown_kind", kind=task["kind"]))
        with self._lock:
            running = self._find_active(task["kind"], task["target"])
            if running is not None:
                raise TaskConflict(Message("task.error.duplicate", id=running.record["id"]))
            live = self._requeue(task_id, message=Message("task.message.retrying"))
        self._launch(live)
        return self._saved(task_id)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop all work: running tasks are interrupted (and resumable ones will continue at the
        next start); their state is saved before this returns."""
        with self._lock:
            self._stopping = True
            lives = list(self._live.values())
            for live in lives:
                live.stopping_panel = True
                live.cancel.set()
        for live in lives:
            for callback in list(live.on_cancel):
                try:
                    callback()
                except Exception:
                    log.exception("cancel callback of task %s failed", live.record["id"])
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._live:
                    break
            time.sleep(0.05)
        with self._lock:
            ended = [
                self._finish(live, "interrupted", error=_panel_stopped_error(), resume=True)
                for live in list(self._live.values())
            ]
        for snapshot in ended:
            self._emit(snapshot["id"], final=True, snapshot=snapshot)
        with self._emit_lock:
            for timer in self._emit_timers.values():
                timer.cancel()
            self._emit_timers.clear()

    # -- internals ------------------------------------------------------------------------

    def _saved(self, task_id: str) -> dict:
        """The task ``task_id``, which the caller has just changed (a KeyError if it is gone)."""
        task = self.get(task_id)
        if task is None:
            raise KeyError(task_id)
        return task

    def _find_active(self, kind: str, target: str) -> _Live | None:
        """The queued or running task of ``kind`` on ``target``; the caller holds the lock."""
        return next(
            (live for live in self._live.values() if live.record["kind"] == kind and live.record["target"] == target),
            None,
        )

    def _requeue(self, task_id: str, message: Message) -> _Live:
        """Put a finished task back in the queue; the caller holds the lock and then calls
        :meth:`_launch` after releasing it."""
        found = self._store.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if found is None:
            raise KeyError(task_id)
        row = dict(found)
        row.update(
            status="queued",
            error=None,
            bytes_per_second=None,
            eta_seconds=None,
            resume_on_start=0,
            updated_at=timestamp(),
        )
        _set_message(row, message)
        live = _Live(row)
        self._live[task_id] = live
        self._persist(live)
        return live

    def _launch(self, live: _Live) -> None:
        self._emit(live.record["id"], final=False)
        self._executor.submit(self._run, live)

    def _run(self, live: _Live) -> None:
        record = live.record
        with self._lock:
            if record["status"] != "queued" or self._stopping:
                return
            record["status"] = "running"
            record["attempts"] += 1
            record["updated_at"] = timestamp()
            self._persist(live)
        self._emit(record["id"], final=False)
        kind = self._kinds[record["kind"]]
        try:
            kind.run(TaskContext(self, live))
        except TaskCancelled:
            self._end(live, "cancelled", message=Message("task.message.cancelled"))
        except TaskError as exc:
            if live.cancel.is_set():
                self._end(live, "cancelled", message=Message("task.message.cancelled"))
            else:
                self._end(live, exc.status, error=_error(exc.message, exc.details))
        except Exception as exc:
            if live.cancel.is_set():
                self._end(live, "cancelled", message=Message("task.message.cancelled"))
            else:
                log.exception("task %s (%s) crashed", record["id"], record["kind"])
                self._end(
                    live,
                    "failed",
                    error=_error(Message("task.error.unexpected", error=type(exc).__name__), {"exception": str(exc)}),
                )
        else:
            self._end(live, "succeeded", message=Message("task.message.done"))

    def _end(self, live: _Live, status: str, message: str | None = None, error: dict | None = None) -> None:
        with self._lock:
            if live.record["id"] not in self._live:
                return
            if live.stopping_panel:
                snapshot = self._finish(live, "interrupted", error=_panel_stopped_error(), resume=True)
            else:
                snapshot = self._finish(live, status, message=message, error=error)
        self._emit(snapshot["id"], final=True, snapshot=snapshot)

    def _finish(
        self, live: _Live, status: str, message: str | None = None, error: dict | None = None, resume: bool = False
    ) -> dict[str, Any]:
        """Record a final status and drop the task from the live set; the caller holds the
        lock and publishes the returned snapshot after releasing it."""
        record = live.record
        record.update(
            status=status, bytes_per_second=None, eta_seconds=None, resume_on_start=int(resume), updated_at=timestamp()
        )
        if message is not None:
            _set_message(record, message)
        record["error"] = json.dumps(error) if error else None
        if status == "succeeded" and record["total"] is not None:
            record["completed"] = record["total"]
            record["percent"] = 100.0
        self._persist(live)
        del self._live[record["id"]]
        return self._public(record)

    def _progress(self, live: _Live, completed: int | None, total: int | None, message: str | None) -> None:
        now = time.monotonic()
        with self._lock:
            record = live.record
            if record["status"] != "running":
                return
            if total is not None:
                record["total"] = total
            if completed is not None:
                record["completed"] = completed
            if message is not None:
                _set_message(record, message)
            done, whole = record["completed"], record["total"]
            if done is not None and whole:
                percent = round(min(100.0, 100.0 * done / whole), 1)
                record["percent"] = max(percent, record["percent"] or 0.0)
            if done is not None:
                live.samples.append((now, done))
                while live.samples and now - live.samples[0][0] > SPEED_WINDOW:
                    live.samples.popleft()
                first_t, first_done = live.samples[0]
                if now - first_t >= 0.2 and done >= first_done:
                    speed = (done - first_done) / (now - first_t)
                    record["bytes_per_second"] = round(speed, 1)
                    record["eta_seconds"] = round((whole - done) / speed, 1) if whole and speed > 0 else None
            record["updated_at"] = timestamp()
            due = now - live.persisted_at >= PERSIST_INTERVAL
            if due:
                live.persisted_at = now
                snapshot, version = self._snapshot(live)
        if due:
            # Written after the lock is released: the store may be busy with other writers,
            # and listing tasks or another task's progress must not wait for that.
            self._persist(live, snapshot, version)
        self._emit(record["id"], final=False)

    @staticmethod
    def _snapshot(live: _Live) -> tuple[dict[str, Any], int]:
        """The task's record as it is now, and its version; the caller holds the lock."""
        live.version += 1
        return dict(live.record), live.version

    def _persist(self, live: _Live, snapshot: dict[str, Any] | None = None, version: int = 0) -> None:
        """Write the task's record to the store: ``snapshot`` (of ``version``), or, by default,
        the record as it is now (the caller then holds the lock). A task's writes land in the
        order their snapshots were taken: one older than the last written is dropped, so a
        late progress write never undoes a final status."""
        if snapshot is None:
            snapshot, version = self._snapshot(live)
        columns = [c for c in snapshot if c != "id"]
        assignments = ", ".join(f"{c} = ?" for c in columns)
        with live.write_lock:
            if version <= live.written:
                return
            self._store.execute(
                f"UPDATE tasks SET {assignments} WHERE id = ?",
                [snapshot[c] for c in columns] + [snapshot["id"]],
            )
            live.written = version
        self._wrote()

    def _wrote(self) -> None:
        """Count a write to the tasks table, after it landed: the listings read before it are
        read again (see :meth:`list`)."""
        self._written = next(self._writes)

    def _emit(self, task_id: str, final: bool, snapshot: dict | None = None) -> None:
        """Publish a task's state now, or within 1/MAX_EVENTS_PER_SECOND s if one went out
        more recently than that. A final state is always published at once."""
        interval = 1.0 / MAX_EVENTS_PER_SECOND
        with self._emit_lock:
            now = time.monotonic()
            wait = interval - (now - self._emitted_at.get(task_id, -interval))
            if not final and wait > 0:
                if task_id not in self._emit_timers:
                    timer = threading.Timer(wait, self._flush, args=(task_id,))
                    timer.daemon = True
                    self._emit_timers[task_id] = timer
                    timer.start()
                return
            pending = self._emit_timers.pop(task_id, None)
            if pending is not None:
                pending.cancel()
            if snapshot is None:
                snapshot = self.get(task_id)
            self._emitted_at[task_id] = now
            if final:
                self._emitted_at.pop(task_id, None)
            self._send(snapshot)

    def _flush(self, task_id: str) -> None:
        with self._emit_lock:
            if self._emit_timers.pop(task_id, None) is None:
                return  # a final state went out meanwhile
            self._emitted_at[task_id] = time.monotonic()
            try:
                snapshot = self.get(task_id)
            except Exception:  # the store closed under a late timer: nothing left to tell
                log.debug("no state to publish for task %s", task_id, exc_info=True)
                return
            self._send(snapshot)

    def _send(self, snapshot: dict | None) -> None:
        if snapshot is None:
            return
        try:
            self._publish(snapshot)
        except Exception:
            log.exception("publishing task %s failed", snapshot.get("id"))

    @staticmethod
    def _public(record: Mapping[str, Any]) -> dict[str, Any]:
        task = {name: record[name] for name in _PUBLIC_FIELDS}
        task["error"] = json.loads(task["error"]) if task["error"] else None
        task["message_i18n"] = json.loads(task["message_i18n"]) if task["message_i18n"] else None
        return task


def _set_message(record: dict[str, Any], message: str) -> None:
    """Set a task record's message, with its key and values when it is a Message."""
    record["message"] = str(message)
    translatable = i18n.public(message)
    record["message_i18n"] = json.dumps(translatable) if translatable else None


def _error(message: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """A task's error: ``{"message", "details"}``, and ``"i18n"`` when the message is a Message."""
    error = {"message": str(message), "details": dict(details)}
    translatable = i18n.public(message)
    if translatable:
        error["i18n"] = translatable
    return error


def _panel_stopped_error() -> dict:
    return _error(Message("task.error.panel_stopped"), {})
