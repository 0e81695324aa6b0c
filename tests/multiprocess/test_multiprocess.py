"""More than one panel process on one data dir, with Redis as the Socket.IO message queue.

Every process serves pages, the API and Socket.IO; one of them, the owner, runs the tasks and
supervises the MCP servers, and the others relay the API to it. These tests start real
``open1panel-ai serve`` processes, a real ``redis-server`` and real MCP servers, and prove that
events cross processes, that work runs once, and that ownership moves when the owner dies.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis
import socketio

from open1panel_ai import cli
from open1panel_ai.standalone.host import message_channel
from tests.helpers import TIME_SERVER, bridge_pids, wait_for

pytestmark = pytest.mark.server


# -- helpers ------------------------------------------------------------------------------


def owner_pid(data_dir: Path) -> int | None:
    """The process id in the data dir's owner lock file (the owner's, or the last one's)."""
    try:
        return int((data_dir / "owner.lock").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return int(stat_file.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and parent_pid(int(entry)) == pid]


class Listener:
    """A Socket.IO client of one panel process that records the events it receives."""

    def __init__(self, url: str, token: str, *topics: str) -> None:
        self.events: dict[str, list] = {"task": [], "gpu": []}
        self.gpu_arrivals: list[float] = []
        self._lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        for name in self.events:
            self.client.on(name, lambda data, name=name: self._record(name, data), namespace="/ai")
        self.client.connect(url, namespaces=["/ai"], transports=["websocket"], auth={"token": token})
        for topic in topics:
            assert self.client.call("subscribe", {"topic": topic}, namespace="/ai", timeout=5)["ok"]

    def _record(self, name: str, data) -> None:
        with self._lock:
            self.events[name].append(data)
            if name == "gpu":
                self.gpu_arrivals.append(time.monotonic())

    def task_events(self, task_id: str, status: str | None = None) -> list[dict]:
        with self._lock:
            return [e for e in self.events["task"] if e["id"] == task_id and (status is None or e["status"] == status)]

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture
def listeners():
    made = []

    def listen(panel, *topics):
        listener = Listener(panel.url, panel.token, *topics)
        made.append(listener)
        return listener

    yield listen
    for listener in made:
        listener.close()


def start_together(served, env, data_dir):
    """Start two panel processes on one data dir at the same time; return them as (owner,
    other), the owner being the one whose worker holds the lock."""
    panels = [None, None]

    def start(index):
        panels[index] = served(env=env, data_dir=data_dir)

    threads = [threading.Thread(target=start, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(panels), "a panel did not start; see the panel logs"
    owner = wait_for(
        lambda: next((p for p in panels if parent_pid(owner_pid(data_dir) or 0) == p.process.pid), None),
        what="one process owning the data dir",
    )
    return owner, next(p for p in panels if p is not owner)


def running(panel, server) -> dict | None:
    """The server as ``panel`` reports it, when it is running."""
    found = panel.api("GET", f"/mcp/servers/{server['id']}").json()
    return found if found.get("status") == "running" else None


def gpu_rate_ok(listener, interval=0.5) -> bool:
    """Whether the listener got GPU samples at the pace of one sampler (not of two)."""
    arrivals = listener.gpu_arrivals
    if len(arrivals) < 3:
        return False
    span = arrivals[-1] - arrivals[0]
    return len(arrivals) - 1 <= span / interval + 2


@pytest.fixture
def autostart_server(make_host, data_dir, mcp_port):
    """An MCP server marked autostart, defined in ``data_dir`` before any served panel starts."""
    host = make_host()
    response = host.app.test_client().post(
        "/api/v2/ai/mcp/servers",
        headers={"Authorization": f"Bearer {host.token}"},
        json={"name": "clock", "command": TIME_SERVER, "autostart": True, "port": mcp_port},
    )
    assert response.status_code == 201, response.get_json()
    host.shutdown()
    return response.get_json()


# -- two processes on two ports -----------------------------------------------------------


def test_two_processes_share_events_run_work_once_and_hand_over_ownership(
    served, shared_env, standin, data_dir, listeners, redis_url, autostart_server
):
    standin.publish("llama3.2", [1_000_000])
    standin.publish("qwen3", [3_000_000])
    queue = redis.Redis.from_url(redis_url).pubsub()
    queue.subscribe(message_channel(data_dir), "flask-socketio")
    owner, other = start_together(served, shared_env, data_dir)
    socket_path = data_dir / "run" / "owner.sock"
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700

    on_owner = listeners(owner, "tasks", "gpu")
    on_other = listeners(other, "tasks", "gpu")
    accepted = other.api("POST", "/ollama/pulls", json={"name": "llama3.2"})  # relayed
    assert accepted.status_code == 202, accepted.text
    task = accepted.json()
    for listener in (on_owner, on_other):
        wait_for(lambda listener=listener: listener.task_events(task["id"], "succeeded"), what="the task's final event")
    assert other.api("GET", f"/tasks/{task['id']}").json() == owner.api("GET", f"/tasks/{task['id']}").json()

    # Answers come back through the relay unchanged, errors included; credentials are checked
    # before anything is relayed.
    missing = other.api("GET", "/tasks/no-such-task")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert missing.headers["content-type"] == "application/json"
    assert httpx.get(other.url + "/api/v2/ai/tasks").status_code == 401
    # An upload streams through the relay, query string and content type intact.
    gguf = b"GGUF" + bytes(range(256)) * (3 << 12)
    upload = other.api(
        "POST",
        "/ollama/imports?name=uploaded&filename=tiny.gguf",
        content=gguf,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 202, upload.text
    imported = other.wait_task(upload.json()["id"], lambda t: t["status"] not in ("queued", "running"))
    assert imported["status"] == "succeeded", imported
    assert standin.blob_path("sha256:" + hashlib.sha256(gguf).hexdigest()).read_bytes() == gguf

    # Live GPU samples: each process samples for its own subscriber and pushes to it alone,
    # so each client gets one sampler's pace, not two.
    wait_for(
        lambda: gpu_rate_ok(on_owner) and gpu_rate_ok(on_other), timeout=10, what="GPU samples at one sampler's pace"
    )
    assert gpu_rate_ok(on_owner) and gpu_rate_ok(on_other)

    # Each client got every event of the pull once; one pull reached Ollama.
    for listener in (on_owner, on_other):
        assert len(listener.task_events(task["id"], "succeeded")) == 1
        assert len(listener.task_events(task["id"], "running")) >= 1
    assert [pull["name"] for pull in standin.pull_log] == ["llama3.2:latest"]
    # The events went through Redis on this data dir's own channel, not the shared default.
    channels = set()
    while (message := queue.get_message(timeout=0.1)) is not None:
        if message["type"] == "message":
            channels.add(message["channel"].decode())
    assert channels == {message_channel(data_dir)}
    queue.close()

    # The autostart server runs once, under the owner, and either process reports it.
    server = wait_for(lambda: running(other, autostart_server), what="the autostart server running")
    assert running(owner, autostart_server)["pid"] == server["pid"]
    assert bridge_pids(str(data_dir)) == [server["pid"]]
    assert parent_pid(server["pid"]) == owner_pid(data_dir)

    # The owner dies in the middle of a pull: the other process takes the lock and resumes it.
    slow = other.api("POST", "/ollama/pulls", json={"name": "qwen3"}).json()
    other.wait_task(slow["id"], lambda t: (t["completed"] or 0) > 500_000)
    os.killpg(owner.process.pid, signal.SIGKILL)  # the owner's whole process group, at once
    owner.process.wait()
    wait_for(
        lambda: parent_pid(owner_pid(data_dir) or 0) == other.process.pid, what="the other process taking the lock"
    )
    # While it takes over, its API answers 503 (try again), then it answers itself.
    wait_for(lambda: other.api("GET", f"/tasks/{slow['id']}").status_code == 200, what="the API back")
    done = other.wait_task(slow["id"], lambda t: t["status"] == "succeeded", timeout=30)
    assert done["percent"] == 100.0
    # It picked the pull up where it stopped instead of starting over.
    qwen = [pull for pull in standin.pull_log if pull["name"] == "qwen3:latest"]
    assert len(qwen) == 2 and max(qwen[1]["first_completed"].values()) >= 500_000
    wait_for(lambda: on_other.task_events(slow["id"], "succeeded"), what="the final event")
    # It started the autostart server as a fresh start would; the dead owner's bridge is gone.
    again = wait_for(
        lambda: (s := running(other, autostart_server)) and s["pid"] != server["pid"] and s,
        what="the autostart server running under the new owner",
    )
    assert parent_pid(again["pid"]) == owner_pid(data_dir)
    assert wait_for(lambda: bridge_pids(str(data_dir)) == [again["pid"]], what="one bridge left")


# -- several workers on one port --------------------------------------------------------------


def worker_of(listener, workers: list[int]) -> int | None:
    """Which of the ``workers`` holds ``listener``'s WebSocket connection."""
    port = listener.client.eio.ws.sock.getsockname()[1]
    for pid in workers:
        for connection in psutil.Process(pid).net_connections(kind="tcp"):
            if connection.raddr and connection.raddr.port == port:
                return pid
    return None


def test_workers_on_one_port_start_the_work_once_and_share_events(
    served, shared_env, standin, data_dir, autostart_server, listeners
):
    standin.publish("llama3.2", [500_000])
    panel = served(env={**shared_env, "OPEN1PANEL_AI_WORKERS": "2"}, data_dir=data_dir)
    workers = wait_for(lambda: len(found := children(panel.process.pid)) == 2 and found, what="two workers")

    # Connections land on either worker as the kernel hands them out, mostly on one: connect
    # until each worker holds one (closing the extra ones), so that events must cross workers.
    clients: dict[int, Listener] = {}
    for _ in range(100):
        client = listeners(panel, "tasks")
        worker = wait_for(lambda client=client: worker_of(client, workers), what="a worker holding the connection")
        if worker in clients:
            client.close()
        else:
            clients[worker] = client
        if len(clients) == 2:
            break
    assert len(clients) == 2, "100 connections in a row all went to one worker"
    clients = list(clients.values())
    task = panel.api("POST", "/ollama/pulls", json={"name": "llama3.2"}).json()
    for client in clients:
        wait_for(lambda client=client: client.task_events(task["id"], "succeeded"), what="the final event")
    server = wait_for(lambda: running(panel, autostart_server), what="the autostart server running")
    assert bridge_pids(str(data_dir)) == [server["pid"]]
    assert parent_pid(owner_pid(data_dir)) == panel.process.pid
    assert [len(c.task_events(task["id"], "succeeded")) for c in clients] == [1] * len(clients)
    assert len(standin.pull_log) == 1
    assert "autostart of MCP server" not in panel.log()


def test_more_workers_need_a_redis_url(panel_env, capsys):
    panel_env.setenv("OPEN1PANEL_AI_WORKERS", "2")
    for name in ("HOST", "PORT"):  # serve sets them; the fixture puts them back afterwards
        panel_env.setenv(f"OPEN1PANEL_AI_{name}", "")
    assert cli.main(["serve", "--host", "127.0.0.1", "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert "OPEN1PANEL_AI_WORKERS=2 needs OPEN1PANEL_AI_REDIS_URL" in error


@pytest.mark.parametrize("name", ["WORKERS", "THREADS"])
@pytest.mark.parametrize("count", ["0", "-3"])
def test_workers_and_threads_below_one_are_refused_with_the_reason(panel_env, capsys, name, count):
    panel_env.setenv(f"OPEN1PANEL_AI_{name}", count)
    for setting in ("HOST", "PORT"):
        panel_env.setenv(f"OPEN1PANEL_AI_{setting}", "")
    assert cli.main(["serve", "--host", "127.0.0.1", "--port", "1"]) == 2
    assert f"OPEN1PANEL_AI_{name} must be 1 or more, not {count}." in capsys.readouterr().err
