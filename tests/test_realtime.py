"""The /ai Socket.IO namespace: topics, task pushes, listener counts."""

import time

import pytest

from open1panel_ai.tasks import TaskKind
from tests.conftest import TOKEN


@pytest.fixture
def context(host):
    return host.app.extensions["open1panel_ai"]


def connect(host):
    client = host.socketio.test_client(host.app, namespace="/ai", auth={"token": TOKEN})
    assert client.is_connected("/ai")
    return client


def task_events(client):
    return [e["args"][0] for e in client.get_received("/ai") if e["name"] == "task"]


def wait_final(client, task_id, timeout=5):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += [e for e in task_events(client) if e["id"] == task_id]
        if seen and seen[-1]["status"] == "succeeded":
            return seen
        time.sleep(0.02)
    raise AssertionError(f"no final event for {task_id}: {seen}")


def test_subscribe_acknowledges_known_topics_and_refuses_others(host):
    client = connect(host)
    for topic in ("tasks", "task:abc", "gpu", "mcp", "mcp:srv-1:logs"):
        assert client.emit("subscribe", {"topic": topic}, namespace="/ai", callback=True) == {
            "ok": True,
            "topic": topic,
        }
    for bad in ({"topic": "everything"}, {"topic": "task:../x"}, {}, "tasks"):
        reply = client.emit("subscribe", bad, namespace="/ai", callback=True)
        assert reply["ok"] is False and reply["error"]["code"] == "bad_topic"


def test_task_events_reach_subscribers_of_tasks_and_of_that_task_only(host, context):
    everything, this_one, other, silent = (connect(host) for _ in range(4))
    everything.emit("subscribe", {"topic": "tasks"}, namespace="/ai")
    other.emit("subscribe", {"topic": "task:someone-else"}, namespace="/ai")
    # The task waits a little, so its own topic can be subscribed to before it finishes.
    context.tasks.register(TaskKind("slow", lambda task: task.wait(0.3)))
    task_id = context.tasks.submit("slow", "x")["id"]
    this_one.emit("subscribe", {"topic": f"task:{task_id}"}, namespace="/ai")

    final_all = wait_final(everything, task_id)
    final_one = wait_final(this_one, task_id)
    assert final_all[-1] == final_one[-1] == context.tasks.get(task_id)
    assert task_events(other) == [] and task_events(silent) == []


def test_listener_counts_follow_subscriptions_and_disconnects(host, context):
    changes = []
    context.realtime.watch("gpu", lambda topic, count: changes.append((topic, count)))
    first, second = connect(host), connect(host)
    first.emit("subscribe", {"topic": "gpu"}, namespace="/ai")
    first.emit("subscribe", {"topic": "gpu"}, namespace="/ai")  # twice counts once
    second.emit("subscribe", {"topic": "gpu"}, namespace="/ai")
    assert context.realtime.listeners("gpu") == 2
    second.emit("unsubscribe", {"topic": "gpu"}, namespace="/ai")
    first.disconnect(namespace="/ai")
    assert context.realtime.listeners("gpu") == 0
    assert changes == [("gpu", 1), ("gpu", 2), ("gpu", 1), ("gpu", 0)]
