"""Live status and log events over Socket.IO, and runtimes chosen by setting or replaced by a
third-party plugin."""

import time
from typing import ClassVar

from hookspecs import hookimpl
from tests.conftest import TOKEN
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import wait_status


def events(client, name):
    return [e["args"][0] for e in client.get_received("/ai") if e["name"] == name]


def connect(host, topic):
    client = host.socketio.test_client(host.app, namespace="/ai", auth={"token": TOKEN})
    assert client.emit("subscribe", {"topic": topic}, namespace="/ai", callback=True)["ok"]
    return client


def test_status_changes_and_log_lines_are_pushed_live(mcp_host, mcp_api):
    server = mcp_api("post", "/servers", json={"name": "time", "command": TIME_SERVER})[1]
    status_client = connect(mcp_host, "mcp")
    log_client = connect(mcp_host, f"mcp:{server['id']}:logs")
    other_logs = connect(mcp_host, "mcp:someone-else:logs")
    mcp_api("post", f"/servers/{server['id']}/start")
    wait_status(mcp_api, server["id"], "running")

    seen, lines = [], []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        "running" in [s["status"] for s in seen] and any("serving on" in line for line in lines)
    ):
        seen += [e for e in events(status_client, "mcp") if e.get("id") == server["id"]]
        lines += [line for e in events(log_client, "mcp_log") for line in e["lines"]]
        time.sleep(0.1)
    statuses = [s["status"] for s in seen]
    assert "running" in statuses, statuses
    assert statuses.index("starting") < statuses.index("running")
    assert any("serving on" in line for line in lines), lines
    running = next(s for s in seen if s["status"] == "running")
    assert running == {**mcp_api("get", f"/servers/{server['id']}")[1], "since": running["since"]}
    assert events(other_logs, "mcp_log") == []

    mcp_api("post", f"/servers/{server['id']}/stop")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "stopped" not in statuses:
        statuses += [e["status"] for e in events(status_client, "mcp") if e.get("id") == server["id"]]
        time.sleep(0.05)
    assert "stopped" in statuses
    mcp_api("delete", f"/servers/{server['id']}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if {"id": server["id"], "deleted": True} in events(status_client, "mcp"):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("no deletion event")


def test_a_follower_that_ended_does_not_keep_later_subscribers_from_log_lines(mcp_host, mcp_api, data_dir):
    server = mcp_api("post", "/servers", json={"name": "time", "command": TIME_SERVER})[1]
    log_path = data_dir / "mcp" / "logs" / f"{server['id']}.log"
    log_path.mkdir(parents=True)
    first = connect(mcp_host, f"mcp:{server['id']}:logs")
    time.sleep(0.8)
    log_path.rmdir()
    log_path.mkdir()  # a new "log" that cannot be read: the first follower ends
    time.sleep(1.5)
    log_path.rmdir()
    log_path.write_text("")
    second = connect(mcp_host, f"mcp:{server['id']}:logs")
    time.sleep(0.6)
    with log_path.open("a") as log:
        log.write("a line for the second subscriber\n")
    lines = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not lines:
        lines = [line for e in events(second, "mcp_log") for line in e["lines"]]
        time.sleep(0.1)
    assert lines == ["a line for the second subscriber"]
    first.disconnect(namespace="/ai")
    second.disconnect(namespace="/ai")


class RecordingRuntime:
    """A third-party runtime: it keeps servers in memory and records what it was asked."""

    name = "recording"
    calls: ClassVar[list] = []

    def __init__(self, settings):
        self.running = {}

    def probe(self):
        pass

    def start(self, server):
        self.calls.append(("start", server["name"], server["env_values"]))
        self.running[server["id"]] = server

    def stop(self, server_id):
        self.calls.append(("stop", server_id))
        self.running.pop(server_id, None)

    def state(self, server_id):
        status = "running" if server_id in self.running else "stopped"
        return {"status": status, "pid": None, "since": None, "restarts": 0, "last_error": None}

    def logs(self, server_id, tail):
        return [f"recorded {server_id}"][-tail:]

    def tools(self, server_id):
        return [{"name": "echo", "description": "Says it back.", "input_schema": {"type": "object"}}]

    def set_hosts(self, server_id, hosts):
        self.calls.append(("hosts", server_id, hosts))


class RuntimePlugin:
    @hookimpl
    def ai_mcp_providers(self):
        return [RecordingRuntime]


def test_a_third_party_runtime_replaces_the_built_in_one(mcp_env, make_host, auth_headers):
    RecordingRuntime.calls.clear()
    host = make_host(("vendor-runtime", RuntimePlugin()))
    client = host.app.test_client()
    status = client.get("/api/v2/ai/status", headers=auth_headers).get_json()
    mcp = next(p for p in status["providers"] if p["kind"] == "mcp")
    assert mcp["provider"] == "recording"
    assert [c["name"] for c in mcp["candidates"]] == ["recording", "process", "supergateway"]

    made = client.post(
        "/api/v2/ai/mcp/servers",
        headers=auth_headers,
        json={"name": "t", "command": TIME_SERVER, "env": [{"key": "K", "value": "v", "secret": True}]},
    ).get_json()
    started = client.post(f"/api/v2/ai/mcp/servers/{made['id']}/start", headers=auth_headers).get_json()
    assert started["status"] == "running" and started["pid"] is None
    assert RecordingRuntime.calls == [("start", "t", {"K": "v"})]
    tools = client.get(f"/api/v2/ai/mcp/servers/{made['id']}/tools", headers=auth_headers).get_json()
    assert tools == {"tools": [{"name": "echo", "description": "Says it back.", "input_schema": {"type": "object"}}]}
    assert client.get(f"/api/v2/ai/mcp/servers/{made['id']}/logs", headers=auth_headers).get_json() == {
        "lines": [f"recorded {made['id']}"]
    }
    host.app.extensions["open1panel_ai"].services["mcp"].set_extra_hosts(made["id"], ["a.example.test"])
    assert RecordingRuntime.calls[-1] == ("hosts", made["id"], ["a.example.test"])


def test_the_runtime_is_chosen_by_setting_and_supergateway_says_what_it_needs(
    mcp_env, make_host, auth_headers, tmp_path
):
    mcp_env.setenv("OPEN1PANEL_AI_MCP_PROVIDER", "supergateway")
    mcp_env.setenv("OPEN1PANEL_AI_MCP_NODE_PATH", str(tmp_path))  # a folder without npx
    client = make_host().app.test_client()
    status = client.get("/api/v2/ai/status", headers=auth_headers).get_json()
    mcp = next(p for p in status["providers"] if p["kind"] == "mcp")
    assert mcp["setting"] == "supergateway" and mcp["usable"] is False
    assert mcp["reason"] == "Node.js is not installed: the supergateway runtime needs npx."
    assert "Install Node.js" in mcp["fix"]


def test_auto_picks_the_process_runtime(mcp_host, auth_headers):
    status = mcp_host.app.test_client().get("/api/v2/ai/status", headers=auth_headers).get_json()
    mcp = next(p for p in status["providers"] if p["kind"] == "mcp")
    assert mcp["provider"] == "process" and mcp["usable"] is True
