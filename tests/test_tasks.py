"""The task runner: persisted state, progress, cancel, retry, dedup and recovery."""

import json
import threading
import time

import pytest

from open1panel_ai.store import Store
from open1panel_ai.tasks import (
    MAX_EVENTS_PER_SECOND,
    TaskConflict,
    TaskError,
    TaskInterrupted,
    TaskKind,
    TaskRunner,
)


class Events(list):
    """Collects published task snapshots."""

    def __call__(self, task):
        self.append((time.monotonic(), task))

    def of(self, task_id):
        return [task for _, task in self if task["id"] == task_id]


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    yield store
    store.close()


@pytest.fixture
def make_runner(store):
    runners = []

    def make(*kinds, events=None):
        runner = TaskRunner(store, events if events is not None else Events(), workers=4)
        for kind in kinds:
            runner.register(kind)
        runner.start()
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.shutdown(timeout=2)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def wait_status(runner, task_id, *statuses):
    return wait_for(lambda: (t := runner.get(task_id)) and t["status"] in statuses and t)


def steps(total, delay=0.0):
    def run(task):
        for step in range(1, total + 1):
            if delay and task.wait(delay):
                task.raise_if_cancelled()
            task.progress(completed=step * 1000, total=total * 1000, message=f"step {step}")

    return run


def blocked_until_cancelled(started: threading.Event):
    def run(task):
        started.set()
        while not task.wait(0.01):
            pass
        task.raise_if_cancelled()

    return run


def test_a_task_runs_to_success_with_the_documented_shape(make_runner):
    runner = make_runner(TaskKind("demo", steps(5)))
    task = runner.submit("demo", "thing", {"a": 1})
    assert task["status"] == "queued"
    done = wait_status(runner, task["id"], "succeeded")
    assert set(done) == {
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
    }
    assert (done["completed"], done["total"], done["percent"]) == (5000, 5000, 100.0)
    assert done["error"] is None and done["created_at"].endswith("Z")
    # The page shows "Done" in the reader's language from the message's key.
    assert done["message"] == "Done"
    assert done["message_i18n"] == {"key": "task.message.done", "params": {}}


def test_state_is_persisted_and_read_back_by_a_new_runner(make_runner, store):
    runner = make_runner(TaskKind("demo", steps(2)))
    task = runner.submit("demo", "thing")
    wait_status(runner, task["id"], "succeeded")
    fresh = TaskRunner(store, Events())
    assert fresh.get(task["id"])["status"] == "succeeded"
    assert [t["id"] for t in fresh.list(kind="demo")] == [task["id"]]
    fresh.shutdown()


def test_progress_events_are_coalesced_and_the_final_state_is_always_sent(make_runner):
    events = Events()
    runner = make_runner(TaskKind("fast", steps(2000)), events=events)
    task = runner.submit("fast", "x")
    wait_status(runner, task["id"], "succeeded")
    wait_for(lambda: events.of(task["id"]) and events.of(task["id"])[-1]["status"] == "succeeded")
    times = [t for t, snap in events if snap["id"] == task["id"]]
    duration = max(times[-1] - times[0], 0.001)
    assert len(times) <= MAX_EVENTS_PER_SECOND * duration + 3
    assert events.of(task["id"])[-1]["percent"] == 100.0


def test_rate_limit_holds_per_task_over_a_longer_run(make_runner):
    events = Events()
    runner = make_runner(TaskKind("slow", steps(60, delay=0.02)), events=events)
    task = runner.submit("slow", "x")
    wait_status(runner, task["id"], "succeeded")
    wait_for(lambda: events.of(task["id"])[-1]["status"] == "succeeded")
    times = [t for t, snap in events if snap["id"] == task["id"] and snap["status"] == "running"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) >= 3  # progress did flow while it ran
    assert min(gaps) >= 1 / MAX_EVENTS_PER_SECOND - 0.02


def test_speed_eta_and_a_percent_that_never_goes_back(make_runner):
    seen = []

    def run(task):
        task.progress(completed=0, total=1000)
        for done in (200, 400, 300, 600):  # a report that went backwards
            task.wait(0.15)
            task.progress(completed=done, total=1000)
            seen.append(runner.get(task.id))

    runner = make_runner(TaskKind("dl", run))
    task = runner.submit("dl", "x")
    wait_status(runner, task["id"], "succeeded")
    percents = [s["percent"] for s in seen]
    assert percents == sorted(percents) and percents[-1] == 60.0
    assert seen[1]["bytes_per_second"] > 0 and seen[1]["eta_seconds"] > 0


def test_cancel_stops_a_running_task_and_calls_its_closers(make_runner):
    started, closed = threading.Event(), threading.Event()

    def run(task):
        task.on_cancel(closed.set)
        blocked_until_cancelled(started)(task)

    runner = make_runner(TaskKind("block", run))
    task = runner.submit("block", "x")
    started.wait(5)
    runner.cancel(task["id"])
    assert wait_status(runner, task["id"], "cancelled")["message"] == "Cancelled"
    assert closed.is_set()
    with pytest.raises(TaskConflict):
        runner.cancel(task["id"])


def test_cancel_of_a_queued_task_ends_it_before_it_starts(store):
    started = threading.Event()
    runner = TaskRunner(store, Events(), workers=1)
    runner.register(TaskKind("block", blocked_until_cancelled(started)))
    runner.start()
    first = runner.submit("block", "one")
    second = runner.submit("block", "two")
    started.wait(5)
    assert runner.cancel(second["id"])["status"] == "cancelled"
    runner.cancel(first["id"])
    wait_status(runner, first["id"], "cancelled")
    runner.shutdown()


def test_a_second_submit_of_the_same_work_joins_the_first(make_runner):
    started = threading.Event()
    runner = make_runner(TaskKind("block", blocked_until_cancelled(started)))
    first = runner.submit("block", "same")
    assert runner.submit("block", "same")["id"] == first["id"]
    assert runner.submit("block", "other")["id"] != first["id"]


def test_errors_end_failed_or_interrupted_with_their_message(make_runner):
    def fails(task):
        raise TaskError("model 'x' was not found in the registry", {"upstream": "file does not exist"})

    def drops(task):
        raise TaskInterrupted("the connection dropped")

    def crashes(task):
        raise ZeroDivisionError("oops")

    runner = make_runner(TaskKind("fails", fails), TaskKind("drops", drops), TaskKind("crashes", crashes))
    failed = wait_status(runner, runner.submit("fails", "x")["id"], "failed")
    assert failed["error"] == {
        "message": "model 'x' was not found in the registry",
        "details": {"upstream": "file does not exist"},
    }
    assert (
        wait_status(runner, runner.submit("drops", "x")["id"], "interrupted")["error"]["message"]
        == "the connection dropped"
    )
    crashed = wait_status(runner, runner.submit("crashes", "x")["id"], "failed")
    assert "ZeroDivisionError" in crashed["error"]["message"]
    assert crashed["error"]["i18n"] == {"key": "task.error.unexpected", "params": {"error": "ZeroDivisionError"}}


def test_retry_runs_the_same_task_again(make_runner):
    attempts = []

    def flaky(task):
        attempts.append(task.attempt)
        if task.attempt == 1:
            raise TaskInterrupted("dropped")
        task.progress(completed=1, total=1)

    runner = make_runner(TaskKind("flaky", flaky))
    task = runner.submit("flaky", "x")
    wait_status(runner, task["id"], "interrupted")
    assert runner.retry(task["id"])["id"] == task["id"]
    wait_status(runner, task["id"], "succeeded")
    assert attempts == [1, 2]
    with pytest.raises(TaskConflict, match="Only a failed"):
        runner.retry(task["id"])


def test_startup_marks_unfinished_tasks_interrupted_and_resumes_resumable_kinds(store):
    # A panel that died (no shutdown) leaves rows 'running' and 'queued' behind.
    started = threading.Event()
    dead = TaskRunner(store, Events(), workers=1)
    dead.register(TaskKind("resumable", blocked_until_cancelled(started), resumable=True))
    dead.register(TaskKind("oneshot", blocked_until_cancelled(threading.Event())))
    dead.start()
    resumable = dead.submit("resumable", "a")
    started.wait(5)
    oneshot = dead.submit("oneshot", "b")  # stays queued: one worker only
    dead._executor.shutdown(wait=False, cancel_futures=True)  # the process "dies"

    runs = []
    fresh = TaskRunner(store, Events())
    fresh.register(TaskKind("resumable", lambda task: runs.append(task.attempt), resumable=True))
    fresh.register(TaskKind("oneshot", lambda task: runs.append("oneshot")))
    assert fresh.start() == [resumable["id"]]
    wait_status(fresh, resumable["id"], "succeeded")
    left = fresh.get(oneshot["id"])
    assert left["status"] == "interrupted"
    assert "panel stopped" in left["error"]["message"]
    assert runs == [2]
    fresh.shutdown()
    lost = list(dead._live.values())
    dead._live.clear()  # let the "dead" runner's thread end without touching the store
    for live in lost:
        live.cancel.set()


def test_a_resumable_kind_registered_after_start_still_resumes(store):
    dead = TaskRunner(store, Events())
    store.execute(
        "INSERT INTO tasks (id, kind, target, status, created_at, updated_at) "
        "VALUES ('t1', 'late', 'x', 'running', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    )
    fresh = TaskRunner(store, Events())
    assert fresh.start() == []
    fresh.register(TaskKind("late", lambda task: None, resumable=True))
    wait_status(fresh, "t1", "succeeded")
    fresh.shutdown()
    dead.shutdown()


def test_shutdown_interrupts_running_work_and_saves_it_for_resume(store):
    started = threading.Event()
    runner = TaskRunner(store, Events())
    runner.register(TaskKind("block", blocked_until_cancelled(started), resumable=True))
    runner.start()
    task = runner.submit("block", "x")
    started.wait(5)
    runner.shutdown(timeout=5)
    row = store.query_one("SELECT status, resume_on_start FROM tasks WHERE id = ?", (task["id"],))
    assert tuple(row) == ("interrupted", 1)


def test_a_listed_task_is_dumped_again_only_when_it_changed(make_runner):
    """``GET /tasks`` dumps each task through ``TaskSchema`` and encodes it; a finished task
    never changes, so its JSON is kept, while a running task's every change is dumped afresh
    and replaces the one before."""
    from open1panel_ai.schemas import TaskDumps, TaskSchema

    proceed, stepped = threading.Event(), threading.Event()

    def two_steps(task):
        task.progress(completed=1, total=2, message="first")
        stepped.set()
        proceed.wait(10)
        task.progress(completed=2, total=2, message="second")

    runner = make_runner(TaskKind("demo", steps(3)), TaskKind("slow", two_steps))
    done = wait_status(runner, runner.submit("demo", "a")["id"], "succeeded")
    running = runner.submit("slow", "b")
    stepped.wait(10)
    dumps = TaskDumps()
    dumped = []
    dump = dumps._schema.dump
    dumps._schema.dump = lambda task: dumped.append(task["id"]) or dump(task)
    first = json.loads(dumps(runner.list()))["tasks"]
    assert sorted(dumped) == sorted([done["id"], running["id"]])
    assert first == [TaskSchema().dump(task) for task in runner.list()]
    dumped.clear()
    assert json.loads(dumps(runner.list()))["tasks"] == first and dumped == []
    proceed.set()
    wait_status(runner, running["id"], "succeeded")
    again = {task["id"]: task for task in json.loads(dumps(runner.list()))["tasks"]}
    assert dumped == [running["id"]]
    assert again[running["id"]]["status"] == "succeeded"
    assert again[done["id"]] == next(task for task in first if task["id"] == done["id"])
    assert len(dumps._kept) == 2  # one dump per task, its latest: a panel up for months keeps no old versions


def _counting_listings(store, monkeypatch):
    """The number of times the tasks table is listed from SQLite, counted as it happens."""
    listed = []
    query = store.query

    def counted(sql, params=()):
        if sql.startswith("SELECT * FROM tasks") and "ORDER BY created_at DESC" in sql:
            listed.append(sql)
        return query(sql, params)

    monkeypatch.setattr(store, "query", counted)
    return listed


def test_a_listing_is_read_from_sqlite_again_only_after_a_write(make_runner, store, monkeypatch):
    """Under load ``GET /tasks`` is asked for many times a second while a download runs, and a
    listing of a hundred rows is a hundred waits for the interpreter. The runner is the only
    writer of the table, so it reads a listing again only after it wrote to the table; a
    running task's progress, which it writes at most once a second, is taken from memory."""
    monkeypatch.setattr("open1panel_ai.tasks.PERSIST_INTERVAL", 3600.0)  # progress is never written here
    stepped, step_again, stepped_again, finish = (threading.Event() for _ in range(4))

    def two_steps(task):
        task.progress(completed=1, total=2)
        stepped.set()
        step_again.wait(10)
        task.progress(completed=2, total=2)
        stepped_again.set()
        finish.wait(10)

    runner = make_runner(TaskKind("demo", steps(3)), TaskKind("slow", two_steps))
    done = wait_status(runner, runner.submit("demo", "a")["id"], "succeeded")
    running = runner.submit("slow", "b")
    stepped.wait(10)
    listed = _counting_listings(store, monkeypatch)
    first = runner.list()
    assert [task["id"] for task in first] == [running["id"], done["id"]] and len(listed) == 1
    assert runner.list() == first and len(listed) == 1
    assert runner.list(status="succeeded") == [first[1]] and len(listed) == 2  # each filter its own listing

    step_again.set()
    stepped_again.wait(10)
    now = runner.list()
    assert now[0]["completed"] == 2 and now[1] == first[1] and len(listed) == 2

    finish.set()
    wait_status(runner, running["id"], "succeeded")
    assert runner.list()[0]["status"] == "succeeded" and len(listed) == 3
    added = runner.submit("demo", "c")
    assert runner.list()[0]["id"] == added["id"] and len(listed) == 4


def test_a_runner_that_does_not_run_the_tasks_reads_every_listing(store, monkeypatch):
    """A runner that was never started (a panel process that is not the owner) is not the
    only writer of the table, so it keeps no listing: another process's writes show at once."""
    runner = TaskRunner(store, Events())
    other = TaskRunner(store, Events())
    other.register(TaskKind("demo", steps(1)))
    other.start()
    try:
        listed = _counting_listings(store, monkeypatch)
        assert runner.list() == [] and runner.list() == [] and len(listed) == 2
        added = wait_status(other, other.submit("demo", "a")["id"], "succeeded")
        assert [task["id"] for task in runner.list()] == [added["id"]] and len(listed) == 3
    finally:
        other.shutdown(timeout=2)


def test_listing_does_not_wait_for_a_progress_write_the_store_holds_up(make_runner, store):
    """Under load the store's write lock is often taken (GPU history, other tasks, MCP
    changes). A running task's periodic progress write then waits for it, and it must wait
    without the runner's lock: listing tasks, and every other task's progress, go on."""
    started, proceed, writing = threading.Event(), threading.Event(), threading.Event()

    def one_step(task):
        started.set()
        proceed.wait(10)
        task.progress(completed=1, total=2, message="halfway")

    runner = make_runner(TaskKind("demo", one_step))
    task = runner.submit("demo", "a")
    started.wait(10)
    execute = store.execute

    def noted_execute(*args):
        writing.set()
        return execute(*args)

    store.execute = noted_execute
    listed = []
    with store.transaction():  # another writer holds the store
        proceed.set()
        assert writing.wait(10)  # the progress write is waiting for the store
        lister = threading.Thread(target=lambda: listed.append(runner.list()))
        lister.start()
        lister.join(5)
        assert not lister.is_alive(), "listing waited for the store's writer"
    assert listed[0][0]["id"] == task["id"] and listed[0][0]["message"] == "halfway"
    done = wait_status(runner, task["id"], "succeeded")
    assert done["completed"] == done["total"] == 2


def test_a_write_older_than_the_last_one_written_is_dropped(make_runner, store):
    """A task's progress snapshot that waited for the store while the task ended lands after
    the final state: it is older than what was written, so it is dropped."""
    from open1panel_ai.tasks import _Live

    runner = make_runner(TaskKind("demo", steps(1)))
    task = wait_status(runner, runner.submit("demo", "a")["id"], "succeeded")
    live = _Live(dict(store.query_one("SELECT * FROM tasks WHERE id = ?", (task["id"],))))
    late, version = runner._snapshot(live)  # taken first, written last
    live.record["message"] = "final"
    runner._persist(live)
    runner._persist(live, {**late, "status": "running"}, version)
    assert runner.get(task["id"])["status"] == "succeeded"
    assert runner.get(task["id"])["message"] == "final"
