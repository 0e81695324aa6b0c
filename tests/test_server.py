"""``open1panel-ai serve`` as a user runs it: gunicorn, WebSocket Socket.IO, entry-point plugins,
a token printed once, a clean stop on SIGTERM, and resumed work after a crash."""

import os
import signal
import sqlite3
import time

import httpx
import pytest
import socketio

pytestmark = pytest.mark.server


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0): look at its state
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def submit(panel, kind, target, **params):
    response = httpx.post(
        panel.url + "/testkit/tasks",
        json={"kind": kind, "target": target, "params": params},
        headers={"Authorization": f"Bearer {panel.token}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return response.json()


def child_pid(task) -> int:
    return int(task["message"].rsplit(" ", 1)[1])


def read_task(data_dir, task_id):
    db = sqlite3.connect(data_dir / "open1panel-ai.sqlite3")
    try:
        return db.execute("SELECT status, resume_on_start FROM tasks WHERE id = ?", (task_id,)).fetchone()
    finally:
        db.close()


def test_it_runs_on_gunicorn_bound_to_loopback(served):
    panel = served()
    log = panel.log()
    assert "Using worker: open1panel_ai.standalone.server.PanelWorker" in log
    assert f"Listening at: http://127.0.0.1:{panel.port}" in log
    assert panel.api("GET", "/status").status_code == 200
    assert httpx.get(panel.url + "/api/v2/ai/status").status_code == 401


def test_a_generated_token_is_printed_at_first_start_only(served, tmp_path):
    data_dir = tmp_path / "fresh"
    first = served(data_dir=data_dir, env={})
    token = (data_dir / "admin-token").read_text().strip()
    assert token in first.log()
    first.stop()
    first.log_path.unlink()
    second = served(data_dir=data_dir, env={})
    assert token not in second.log() and "Admin token" not in second.log()
    assert second.api("GET", "/status").status_code == 200


def test_socketio_pushes_task_progress_over_a_websocket(served):
    panel = served()
    client = socketio.Client(reconnection=False)
    events = []
    client.on("task", events.append, namespace="/ai")
    client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": panel.token})
    try:
        assert client.transport() == "websocket"
        assert client.call("subscribe", {"topic": "tasks"}, namespace="/ai", timeout=5)["ok"] is True
        task = submit(panel, "testkit.steps", "ws", steps=20, delay=0.05)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            e["id"] == task["id"] and e["status"] == "succeeded" for e in events
        ):
            time.sleep(0.05)
        mine = [e for e in events if e["id"] == task["id"]]
        assert mine[-1]["status"] == "succeeded" and mine[-1]["percent"] == 100.0
        assert any(e["status"] == "running" for e in mine)
    finally:
        client.disconnect()


def test_socketio_refuses_a_websocket_without_credentials(served):
    panel = served()
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], wait_timeout=5)


def test_sigterm_stops_work_reaps_children_and_saves_state(served):
    panel = served()
    client = socketio.Client(reconnection=False)
    client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": panel.token})
    task = submit(panel, "testkit.child", "keeps-a-child")
    running = panel.wait_task(task["id"], lambda t: t["status"] == "running" and t["message"])
    pid = child_pid(running)
    assert pid_alive(pid)

    started = time.monotonic()
    assert panel.stop(signal.SIGTERM, timeout=30) == 0
    assert time.monotonic() - started < GRACE_SECONDS
    assert not pid_alive(pid)
    assert read_task(panel.data_dir, task["id"]) == ("interrupted", 1)
    assert "Traceback" not in panel.log()
    client.disconnect()


#: A stop takes the plugins' few seconds plus gunicorn's ten-second grace at most; on a loaded
#: machine allow some slack, but never as long as the 30 s after which the test would kill it.
GRACE_SECONDS = 25


def test_after_a_kill_9_resumable_work_continues_by_itself(served, tmp_path):
    data_dir = tmp_path / "crashy"
    panel = served(data_dir=data_dir)
    task = submit(panel, "testkit.child", "survives")
    first_pid = child_pid(panel.wait_task(task["id"], lambda t: t["status"] == "running" and t["message"]))
    os.killpg(panel.process.pid, signal.SIGKILL)
    panel.process.wait()
    assert read_task(data_dir, task["id"])[0] == "running"  # what a crash leaves behind
    if pid_alive(first_pid):  # the orphan of the killed panel, if the group kill missed it
        os.kill(first_pid, signal.SIGTERM)

    again = served(data_dir=data_dir)
    resumed = again.wait_task(
        task["id"], lambda t: t["status"] == "running" and t["message"] and child_pid(t) != first_pid
    )
    assert resumed["id"] == task["id"]
    again.api("POST", f"/tasks/{task['id']}/cancel")
    assert again.wait_task(task["id"], lambda t: t["status"] == "cancelled")["status"] == "cancelled"
