"""Real MCP servers from PyPI started through the panel and reached with the official client:
both transports with the token, 401 without, measured status, crash restarts, a crash loop
ending in ``error``, isolation, bound Host names, autostart, and a clean stop."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from open1panel_ai.mcp import supervisor
from open1panel_ai.mcp.runtime import ProcessRuntime
from open1panel_ai.mcp.supervisor import BRIDGE_MODULES
from tests.conftest import free_port
from tests.helpers import TIME_SERVER, bridge_pids, wait_for
from tests.mcp.conftest import (
    GIT_SERVER,
    call_tool,
    group_members,
    pid_alive,
    wait_status,
)


def token_of(api, server_id, transport="streamable-http"):
    config = api("get", f"/servers/{server_id}/client-config?client=cursor&transport={transport}")[1]
    return config["snippet"].split("Bearer ")[1].split('"')[0]


def start_time_server(api, name="time", **fields):
    status, server = api("post", "/servers", json={"name": name, "command": TIME_SERVER, **fields})
    assert status == 201, server
    status, started = api("post", f"/servers/{server['id']}/start")
    assert status == 200, started
    assert started["status"] in ("starting", "running")
    return wait_status(api, server["id"], "running")


def now_in_utc(server, token, transport="streamable-http"):
    url = server["endpoints"]["sse" if transport == "sse" else "streamable_http"]
    return call_tool(url, token, "get_current_time", {"timezone": "UTC"}, transport)


def child_pids(bridge_pid):
    with open(f"/proc/{bridge_pid}/task/{bridge_pid}/children") as file:
        return [int(pid) for pid in file.read().split()]


def test_a_real_server_serves_both_transports_with_the_token_and_refuses_without(mcp_api):
    server = start_time_server(mcp_api)
    token = token_of(mcp_api, server["id"])
    assert '"timezone": "UTC"' in now_in_utc(server, token)
    assert '"timezone": "UTC"' in now_in_utc(server, token, "sse")

    base = server["endpoints"]["streamable_http"].removesuffix("/mcp")
    for method, path in [("POST", "/mcp"), ("GET", "/sse"), ("POST", "/messages/?session_id=x")]:
        response = httpx.request(method, base + path, json={}, timeout=5)
        assert response.status_code == 401, (path, response.text)
        wrong = httpx.request(method, base + path, json={}, headers={"Authorization": "Bearer wrong"}, timeout=5)
        assert wrong.status_code == 401
    health = httpx.get(base + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"ok": True}

    status, tools = mcp_api("get", f"/servers/{server['id']}/tools")
    assert status == 200
    by_name = {tool["name"]: tool for tool in tools["tools"]}
    assert set(by_name) == {"get_current_time", "convert_time"}
    assert "timezone" in by_name["get_current_time"]["input_schema"]["properties"]

    status, logs = mcp_api("get", f"/servers/{server['id']}/logs?tail=50")
    assert status == 200 and any("serving on 127.0.0.1" in line for line in logs["lines"])
    assert token not in "\n".join(logs["lines"])
    assert mcp_api("get", f"/servers/{server['id']}/logs?tail=0")[0] == 400


def test_secret_env_reaches_the_child_and_never_the_log(mcp_api, tmp_path):
    scripts = tmp_path / "scripts"  # granted to the sandbox (tmp_path holds the data dir)
    scripts.mkdir()
    script = scripts / "env_server.py"
    # A stdio server that reports its environment through a tool.
    script.write_text(
        "import os\n"
        "from mcp.server.mcpserver import MCPServer\n"
        "app = MCPServer('env')\n"
        "@app.tool()\n"
        "def env(name: str) -> str:\n"
        "    return os.environ.get(name, '<unset>')\n"
        "app.run()\n"
    )
    status, server = mcp_api(
        "post",
        "/servers",
        json={
            "name": "env",
            "command": [sys.executable, str(script)],
            "profile": {"read": [str(scripts)]},
            "env": [{"key": "API_KEY", "value": "sk-child-only", "secret": True}],
        },
    )
    assert status == 201, server
    mcp_api("post", f"/servers/{server['id']}/start")
    server = wait_status(mcp_api, server["id"], "running")
    token = token_of(mcp_api, server["id"])
    url = server["endpoints"]["streamable_http"]
    assert call_tool(url, token, "env", {"name": "API_KEY"}) == "sk-child-only"
    assert call_tool(url, token, "env", {"name": "HOME"}) == server["isolation"]["home"]
    assert call_tool(url, token, "env", {"name": "PATH"}) == os.environ["PATH"]
    assert call_tool(url, token, "env", {"name": "OPEN1PANEL_AI_TOKEN"}) == "<unset>"
    assert "sk-child-only" not in "\n".join(mcp_api("get", f"/servers/{server['id']}/logs?tail=500")[1]["lines"])


def test_a_killed_child_is_restarted_while_another_server_keeps_serving(mcp_api, tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    # This test is about supervision: the git server runs as the panel's user, as the
    # repository's owner (test_mcp_sandbox.py grants one to a sandboxed git server).
    status, git = mcp_api(
        "post",
        "/servers",
        json={"name": "git", "command": [GIT_SERVER, "--repository", str(repo)], "profile": {"isolation": "none"}},
    )
    assert status == 201
    mcp_api("post", f"/servers/{git['id']}/start")
    git = wait_status(mcp_api, git["id"], "running")
    git_token = token_of(mcp_api, git["id"])
    git_pid = git["pid"]

    time_server = start_time_server(mcp_api)
    token = token_of(mcp_api, time_server["id"])
    [child] = child_pids(time_server["pid"])
    os.kill(child, signal.SIGKILL)

    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # The healthy server answers throughout.
        assert "On branch" in call_tool(
            git["endpoints"]["sse"], git_token, "git_status", {"repo_path": str(repo)}, "sse"
        )
        server = mcp_api("get", f"/servers/{time_server['id']}")[1]
        seen.add(server["status"])
        if server["status"] == "running" and server["restarts"] == 1:
            break
    else:
        raise AssertionError(f"not restarted: {server}")
    assert "restarting" in seen or "starting" in seen
    assert server["pid"] != time_server["pid"] and not pid_alive(child)
    assert '"timezone": "UTC"' in now_in_utc(server, token)
    assert mcp_api("get", f"/servers/{git['id']}")[1]["pid"] == git_pid


def test_a_command_that_exits_at_once_says_why_while_it_backs_off(mcp_env, make_host, auth_headers):
    # Long enough a backoff to read the row while it waits.
    mcp_env.setenv("OPEN1PANEL_AI_MCP_BACKOFF", "2")
    client = make_host().app.test_client()

    def api(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai/mcp" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    noise = "\\n".join(f"noise line {n}" for n in range(10))
    status, server = api(
        "post",
        "/servers",
        json={
            "name": "broken",
            "command": [
                sys.executable,
                "-c",
                f"import sys; sys.stderr.write('{noise}\\n\\x1b[31mmissing API key: set FOO_KEY\\x1b[0m\\n"
                f"{'x' * 400}\\n'); sys.exit(3)",
            ],
        },
    )
    assert status == 201
    api("post", f"/servers/{server['id']}/start")
    backing_off = wait_status(api, server["id"], "restarting")
    reason = backing_off["last_error"]
    # A readable reason: the last few lines the child wrote, without stamps, colours or the
    # bridge's and supervisor's own lines, each cut to a readable width.
    lines = reason.splitlines()
    assert lines[0] == "It stopped. Its last output:"
    assert lines[1:-2] == ["noise line 8", "noise line 9"] and lines[-2] == "missing API key: set FOO_KEY"
    assert lines[-1].startswith("xxx") and lines[-1].endswith("…") and len(lines[-1]) == 160
    assert "supervisor" not in reason and "\x1b" not in reason and "2026-" not in reason
    assert backing_off["last_error_i18n"]["key"] == "mcp.reason.output"

    server = wait_status(api, server["id"], "error")
    assert server["restarts"] == 3  # OPEN1PANEL_AI_MCP_TRIES in these tests
    assert "missing API key: set FOO_KEY" in server["last_error"]
    log_lines = api("get", f"/servers/{server['id']}/logs?tail=200")[1]["lines"]
    assert sum("missing API key" in line for line in log_lines) == 4
    assert any("restarting in" in line for line in log_lines)


def test_a_silent_crash_still_gives_a_reason(mcp_api):
    _, server = mcp_api(
        "post",
        "/servers",
        json={"name": "silent", "restart_policy": "never", "command": [sys.executable, "-c", "raise SystemExit(3)"]},
    )
    mcp_api("post", f"/servers/{server['id']}/start")
    server = wait_status(mcp_api, server["id"], "error")
    assert server["restarts"] == 0
    reported = server["last_error"].splitlines()
    assert reported[0] == "It stopped. What the panel's bridge reported:"
    assert "exited (status 3) before it answered" in reported[1]
    assert server["last_error_i18n"]["key"] == "mcp.reason.reported"


@pytest.mark.parametrize(
    "command, advice",
    [
        ("no-such-mcp-server --x", "Check the command"),
        ("uvx mcp-server-time", "Install uv, which brings uvx"),
        ("npx -y @modelcontextprotocol/server-filesystem /tmp", "Install Node.js"),
    ],
)
def test_a_missing_program_is_an_error_at_once_naming_it_and_how_to_install_it(mcp_api, tmp_path, command, advice):
    # The server's PATH is a folder without uvx or npx, whatever this machine has installed.
    _, server = mcp_api(
        "post",
        "/servers",
        json={"name": "nothing", "command": command, "env": [{"key": "PATH", "value": str(tmp_path)}]},
    )
    status, started = mcp_api("post", f"/servers/{server['id']}/start")
    assert status == 200 and started["status"] == "error" and started["restarts"] == 0
    program = command.split()[0]
    assert started["last_error"].startswith(program) and advice in started["last_error"]
    assert str(tmp_path) in started["last_error"]
    assert started["last_error_i18n"]["params"]["program"] == program
    time.sleep(0.5)
    assert mcp_api("get", f"/servers/{server['id']}")[1]["status"] == "error"
    lines = mcp_api("get", f"/servers/{server['id']}/logs?tail=50")[1]["lines"]
    assert any("not started" in line for line in lines)
    assert not any("bridge" in line for line in lines)  # nothing was spawned
    # Stop and start again work as for any server.
    assert mcp_api("post", f"/servers/{server['id']}/stop")[1]["status"] == "stopped"
    assert mcp_api("post", f"/servers/{server['id']}/start")[1]["status"] == "error"


def test_stop_and_delete_leave_no_process_behind(mcp_api, data_dir):
    server = start_time_server(mcp_api)
    group = server["pid"]
    members = group_members(group)
    assert len(members) >= 2 and group in members  # the bridge and its child, one group
    status, stopped = mcp_api("post", f"/servers/{server['id']}/stop")
    assert status == 200 and stopped["status"] == "stopped" and stopped["pid"] is None
    assert group_members(group) == [] and not any(pid_alive(pid) for pid in members)
    assert not (data_dir / "mcp" / "run" / f"{server['id']}.json").exists()

    started = mcp_api("post", f"/servers/{server['id']}/start")[1]
    server = wait_status(mcp_api, server["id"], "running")
    members = group_members(server["pid"])
    assert mcp_api("delete", f"/servers/{server['id']}")[0] == 204
    assert not any(pid_alive(pid) for pid in members)
    assert mcp_api("get", f"/servers/{started['id']}")[0] == 404


def test_a_bound_domain_is_accepted_without_restarting_anything(mcp_host, mcp_api):
    server = start_time_server(mcp_api)
    other = start_time_server(mcp_api, name="other")
    token = token_of(mcp_api, server["id"])
    url = server["endpoints"]["streamable_http"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Host": "mcp.example.test",
        "Accept": "application/json, text/event-stream",
    }
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    assert httpx.post(url, json=initialize, headers=headers, timeout=5).status_code == 421

    service = mcp_host.app.extensions["open1panel_ai"].services["mcp"]
    service.set_extra_hosts(server["id"], ["mcp.example.test"])
    deadline = time.monotonic() + 5
    while httpx.post(url, json=initialize, headers=headers, timeout=5).status_code == 421:
        assert time.monotonic() < deadline, "the new host was never accepted"
        time.sleep(0.05)
    assert httpx.post(url, json=initialize, headers=headers, timeout=5).status_code == 200
    evil = {**headers, "Host": "evil.test"}
    assert httpx.post(url, json=initialize, headers=evil, timeout=5).status_code == 421
    # A page on another site cannot drive the server from a browser either.
    foreign = {**headers, "Origin": "https://evil.test"}
    assert httpx.post(url, json=initialize, headers=foreign, timeout=5).status_code == 403
    own = {**headers, "Origin": "https://mcp.example.test"}
    assert httpx.post(url, json=initialize, headers=own, timeout=5).status_code == 200
    assert mcp_api("get", f"/servers/{server['id']}")[1]["pid"] == server["pid"]
    assert mcp_api("get", f"/servers/{other['id']}")[1]["pid"] == other["pid"]
    assert mcp_api("get", f"/servers/{server['id']}")[1]["extra_hosts"] == ["mcp.example.test"]


def test_hosts_bound_while_the_bridge_starts_neither_kill_it_nor_get_lost(mcp_host, mcp_api):
    status, server = mcp_api("post", "/servers", json={"name": "time", "command": TIME_SERVER})
    assert status == 201, server
    assert mcp_api("post", f"/servers/{server['id']}/start")[0] == 200
    service = mcp_host.app.extensions["open1panel_ai"].services["mcp"]
    hosts = []
    while mcp_api("get", f"/servers/{server['id']}")[1]["status"] == "starting" and len(hosts) < 400:
        hosts.append(f"h{len(hosts)}.example.test")
        service.set_extra_hosts(server["id"], hosts[-1:])
        time.sleep(0.02)
    server = wait_status(mcp_api, server["id"], "running")
    assert server["restarts"] == 0, mcp_api("get", f"/servers/{server['id']}/logs?tail=50")[1]
    headers = {
        "Authorization": f"Bearer {token_of(mcp_api, server['id'])}",
        "Host": hosts[-1],
        "Accept": "application/json, text/event-stream",
    }
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    response = httpx.post(server["endpoints"]["streamable_http"], json=initialize, headers=headers, timeout=5)
    assert response.status_code == 200, response.text


def unrecorded_bridge(config_path, log_path):
    """A real bridge for ``config_path`` started outside the panel, as one whose panel was killed
    right after starting it: nothing recorded it, and its server never answers, so it waits."""
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        json.dumps(
            {
                "id": config_path.stem,
                "name": "orphan",
                "command": [sys.executable, "-c", "import time; time.sleep(120)"],
                "bind_host": "127.0.0.1",
                "port": free_port(),
                "token": "t" * 32,
                "transports": ["streamable-http"],
                "log_file": str(log_path),
            }
        )
    )
    bridge = subprocess.Popen(
        [sys.executable, "-m", "open1panel_ai.mcp.bridge", str(config_path)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: child_pids(bridge.pid), what="the bridge to start its server")
    return bridge


def test_a_bridge_left_without_a_record_is_stopped_before_its_server_starts(mcp_api, data_dir, tmp_path):
    status, server = mcp_api("post", "/servers", json={"name": "time", "command": TIME_SERVER})
    assert status == 201, server
    orphan = unrecorded_bridge(data_dir / "mcp" / "run" / f"{server['id']}.json", tmp_path / "orphan.log")
    orphan_group = group_members(orphan.pid)
    # Bridges of another server and of another data dir are not this server's to stop.
    others = [
        unrecorded_bridge(tmp_path / "elsewhere" / "mcp" / "run" / f"{server['id']}.json", tmp_path / "elsewhere.log"),
        unrecorded_bridge(data_dir / "mcp" / "run" / "other.json", tmp_path / "other.log"),
    ]
    try:
        assert mcp_api("post", f"/servers/{server['id']}/start")[0] == 200
        running = wait_status(mcp_api, server["id"], "running")
        assert orphan.wait(5) == -signal.SIGKILL
        assert not any(pid_alive(pid) for pid in orphan_group)  # its server went with it
        assert bridge_pids(f"{data_dir}/mcp/run/{server['id']}.json") == [running["pid"]]
        assert all(other.poll() is None for other in others)
    finally:
        for bridge in (orphan, *others):
            if bridge.poll() is None:
                os.killpg(bridge.pid, signal.SIGKILL)
                bridge.wait()


def test_a_bridge_of_another_user_is_left_running_without_delaying_the_start(data_dir, tmp_path, monkeypatch, caplog):
    """The kernel refuses to kill another user's process. The tests run as one user, so that
    refusal is what ``killpg`` answers here for the one real leftover bridge."""
    config_path = data_dir / "mcp" / "run" / "theirs.json"
    bridge = unrecorded_bridge(config_path, tmp_path / "theirs.log")
    real_killpg = os.killpg

    def refused_for_theirs(pgid, sig):
        if pgid == bridge.pid:
            raise PermissionError(1, "Operation not permitted")
        real_killpg(pgid, sig)

    monkeypatch.setattr(supervisor.os, "killpg", refused_for_theirs)
    log_path = tmp_path / "server.log"
    try:
        started = time.monotonic()
        supervisor.reap_leftover(config_path, log_path)
        assert time.monotonic() - started < 2  # not the 5 s wait for a group that never goes
        assert bridge.poll() is None
        assert f"pid {bridge.pid}" in caplog.text and "another user" in caplog.text
        assert "belongs to another user" in log_path.read_text()
    finally:
        monkeypatch.undo()
        os.killpg(bridge.pid, signal.SIGKILL)
        bridge.wait()


def test_a_deleted_server_leaves_no_lock_behind(tmp_path):
    """Each server has a lock that orders its starts and stops; deleting the server (a stop,
    then ``forget``, as the service does) drops it, so a panel where servers come and go does
    not hold one per server it ever had."""
    runtime = ProcessRuntime({"data_dir": str(tmp_path)})
    kept = runtime._server_lock("kept")
    for index in range(200):
        runtime.stop(f"gone{index}")
        runtime.forget(f"gone{index}")
    assert runtime._server_locks == {"kept": kept}


def test_pid_files_of_earlier_versions_are_removed_when_the_runtime_starts(tmp_path):
    run_dir = tmp_path / "mcp" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "old.pid").write_text("12345\n")
    (run_dir / "old.json").write_text("{}")
    ProcessRuntime({"data_dir": str(tmp_path)})
    assert sorted(path.name for path in run_dir.iterdir()) == ["old.json"]
    ProcessRuntime({"data_dir": str(tmp_path / "fresh")})  # no run folder yet: nothing to do


def test_autostart_servers_come_back_when_the_panel_starts(mcp_env, make_host, auth_headers):
    first = make_host()
    client = first.app.test_client()
    made = client.post(
        "/api/v2/ai/mcp/servers", headers=auth_headers, json={"name": "auto", "command": TIME_SERVER, "autostart": True}
    ).get_json()
    client.post(
        "/api/v2/ai/mcp/servers",
        headers=auth_headers,
        json={"name": "manual", "command": TIME_SERVER, "autostart": False},
    )
    first.shutdown()
    assert not pid_alive(made["pid"]) if made["pid"] else True

    second = make_host()
    client = second.app.test_client()

    def api(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai/mcp" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    server = wait_status(api, made["id"], "running")
    members = group_members(server["pid"])
    statuses = {s["name"]: s["status"] for s in api("get", "/servers")[1]["servers"]}
    assert statuses == {"auto": "running", "manual": "stopped"}
    second.shutdown()
    assert not any(pid_alive(pid) for pid in members)


def test_without_a_usable_runtime_lifecycle_is_a_503_but_definitions_work(mcp_env, make_host, auth_headers, tmp_path):
    # The supergateway runtime looks for npx on OPEN1PANEL_AI_MCP_NODE_PATH: here, a folder without it.
    mcp_env.setenv("OPEN1PANEL_AI_MCP_PROVIDER", "supergateway")
    mcp_env.setenv("OPEN1PANEL_AI_MCP_NODE_PATH", str(tmp_path))
    client = make_host().app.test_client()
    made = client.post("/api/v2/ai/mcp/servers", headers=auth_headers, json={"name": "t", "command": TIME_SERVER})
    assert made.status_code == 201
    response = client.post(f"/api/v2/ai/mcp/servers/{made.get_json()['id']}/start", headers=auth_headers)
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "provider_unavailable" and "Node.js" in error["message"]


@pytest.mark.parametrize("transport", ["sse"])
def test_a_server_serving_only_one_transport_refuses_the_other(mcp_api, transport):
    server = start_time_server(mcp_api, transports=[transport])
    token = token_of(mcp_api, server["id"], transport)
    assert '"UTC"' in now_in_utc(server, token, transport)
    base = server["endpoints"]["sse"].removesuffix("/sse")
    response = httpx.post(base + "/mcp", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 404


def test_a_remote_server_is_served_through_the_same_bridge_and_token(mcp_api):
    upstream = start_time_server(mcp_api, name="upstream")
    upstream_token = token_of(mcp_api, upstream["id"])
    status, remote = mcp_api(
        "post",
        "/servers",
        json={
            "name": "remote",
            "url": upstream["endpoints"]["streamable_http"],
            "headers": [{"name": "Authorization", "value": f"Bearer {upstream_token}"}],
        },
    )
    assert status == 201, remote
    mcp_api("post", f"/servers/{remote['id']}/start")
    remote = wait_status(mcp_api, remote["id"], "running")
    token = token_of(mcp_api, remote["id"])
    assert token != upstream_token
    assert '"timezone": "UTC"' in now_in_utc(remote, token, "sse")
    assert '"timezone": "UTC"' in now_in_utc(remote, token)
    assert httpx.post(remote["endpoints"]["streamable_http"], json={}, timeout=5).status_code == 401

    # Wrong upstream credentials: the bridge cannot connect, and the server ends in error.
    mcp_api(
        "put",
        f"/servers/{remote['id']}",
        json={"headers": [{"name": "Authorization", "value": "Bearer wrong"}], "restart_policy": "never"},
    )
    failed = wait_status(mcp_api, remote["id"], "error")
    assert "401" in failed["last_error"]


def test_a_remote_urls_credentials_never_show_in_routes_or_logs(mcp_api):
    upstream = start_time_server(mcp_api, name="upstream")
    secret_url = f"http://user:pw-s3cret@127.0.0.1:{upstream['port']}/mcp?api_key=k3y-s3cret"
    status, remote = mcp_api(
        "post",
        "/servers",
        json={
            "name": "remote",
            "url": secret_url,
            "restart_policy": "never",
            "headers": [{"name": "Authorization", "value": "Bearer wrong"}],
        },
    )
    assert status == 201, remote
    shown = f"http://***@127.0.0.1:{upstream['port']}/mcp?***"
    assert remote["url"] == shown
    assert [s["url"] for s in mcp_api("get", "/servers")[1]["servers"] if s["id"] == remote["id"]] == [shown]
    # Saving the form unchanged sends the masked URL back: the stored one is kept.
    assert mcp_api("put", f"/servers/{remote['id']}", json={"url": shown})[0] == 200
    mcp_api("post", f"/servers/{remote['id']}/start")
    failed = wait_status(mcp_api, remote["id"], "error")  # the upstream refuses the wrong token
    assert "401" in failed["last_error"] and shown in failed["last_error"]
    logs = mcp_api("get", f"/servers/{remote['id']}/logs?tail=500")[1]["lines"]
    assert not any("s3cret" in line for line in logs), logs
    assert "s3cret" not in failed["last_error"]


HANGING_SERVER = """
import sys
from pathlib import Path

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

flag = Path(sys.argv[1])


async def list_tools(ctx, params):
    if flag.exists():  # from now on this server answers nothing
        await anyio.sleep(3600)
    return types.ListToolsResult(tools=[types.Tool(name="noop", input_schema={"type": "object"})])


async def main():
    server = Server("hanging", on_list_tools=list_tools)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""


def test_a_server_that_stops_answering_is_unhealthy_then_restarted(mcp_api, tmp_path):
    scripts = tmp_path / "scripts"  # granted to the sandbox, which sees the flag come and go
    scripts.mkdir()
    script, flag = scripts / "hanging.py", scripts / "hang"
    script.write_text(HANGING_SERVER)
    status, server = mcp_api(
        "post",
        "/servers",
        json={
            "name": "hanging",
            "profile": {"read": [str(scripts)]},
            "command": [sys.executable, str(script), str(flag)],
        },
    )
    assert status == 201, server
    mcp_api("post", f"/servers/{server['id']}/start")
    running = wait_status(mcp_api, server["id"], "running")
    flag.touch()
    unhealthy = wait_status(mcp_api, server["id"], "unhealthy", timeout=15)
    assert unhealthy["pid"] == running["pid"]  # the process lives; only the probe fails
    # Still no answer: after three failed probes in a row the process is restarted.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = mcp_api("get", f"/servers/{server['id']}")[1]
        if now["restarts"] >= 1:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not restarted after failing probes: {now}")
    flag.unlink()
    now = wait_status(mcp_api, server["id"], "running")
    assert now["pid"] != running["pid"] and not pid_alive(running["pid"])
    lines = mcp_api("get", f"/servers/{server['id']}/logs?tail=200")[1]["lines"]
    assert any("probe failed" in line for line in lines)


@pytest.mark.server
def test_servers_come_back_after_a_panel_restart_unless_stopped_by_hand(served, tmp_path):
    """A real served panel, stopped and started again: what ran runs again (autostart is on
    by default), what was stopped by hand stays stopped; and a killed panel leaves nothing."""
    from tests.conftest import TOKEN
    from tests.mcp.conftest import FAST

    def status_of(panel, server_id, wanted):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            server = panel.api("GET", f"/mcp/servers/{server_id}").json()
            if server["status"] == wanted:
                return server
            time.sleep(0.2)
        raise AssertionError(server)

    env = {"OPEN1PANEL_AI_TOKEN": TOKEN, **FAST}
    data_dir = tmp_path / "served"
    panel = served(env=env, data_dir=data_dir)
    ids = {}
    for name in ("time", "by-hand"):
        made = panel.api("POST", "/mcp/servers", json={"name": name, "command": TIME_SERVER})
        assert made.status_code == 201 and made.json()["autostart"] is True
        ids[name] = made.json()["id"]
        panel.api("POST", f"/mcp/servers/{ids[name]}/start")
    members = group_members(status_of(panel, ids["time"], "running")["pid"])
    status_of(panel, ids["by-hand"], "running")
    stopped = panel.api("POST", f"/mcp/servers/{ids['by-hand']}/stop").json()
    assert stopped["status"] == "stopped" and stopped["stopped_by_hand"] is True
    assert panel.stop() == 0
    assert not any(pid_alive(pid) for pid in members)

    panel = served(env=env, data_dir=data_dir)
    server = status_of(panel, ids["time"], "running")  # nobody asked: the panel started it
    assert server["stopped_by_hand"] is False
    time.sleep(1)
    by_hand = panel.api("GET", f"/mcp/servers/{ids['by-hand']}").json()
    assert by_hand["status"] == "stopped" and by_hand["stopped_by_hand"] is True
    assert bridge_pids(f"{ids['by-hand']}.json") == []
    members = group_members(server["pid"])
    panel.stop(signal.SIGKILL)
    deadline = time.monotonic() + 15
    while any(pid_alive(pid) for pid in members):
        assert time.monotonic() < deadline, "a bridge outlived its killed panel"
        time.sleep(0.2)


def test_the_restart_count_starts_again_after_stable_running(mcp_env, make_host, auth_headers):
    # Three restarts in a row are allowed here; stable for a second, the count starts again.
    mcp_env.setenv("OPEN1PANEL_AI_MCP_STABLE", "1")
    client = make_host().app.test_client()

    def api(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai/mcp" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    # A port of its own, away from the range other panels on this machine hand out: a restart
    # that lost its port to someone else would count as one more restart.
    server = start_time_server(api, port=free_port())
    for kill in range(1, 6):
        time.sleep(1.2)  # longer than "stable"
        [child] = child_pids(server["pid"])
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            server = api("get", f"/servers/{server['id']}")[1]
            if server["status"] == "running" and server["restarts"] == kill:
                break
            assert server["status"] != "error", server
            time.sleep(0.1)
        else:
            raise AssertionError(f"not back after kill {kill}: {server}")


def bridges_of(server_id):
    """The pids of every bridge process running with this server's config."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    argv = cmdline.read().split(b"\0")
            except (FileNotFoundError, ProcessLookupError):
                continue
            mine = any(arg.endswith(f"{server_id}.json".encode()) for arg in argv)
            if any(module.encode() in argv for module in BRIDGE_MODULES) and mine and pid_alive(int(entry)):
                found.append(int(entry))
    return found


def test_concurrent_starts_and_changes_leave_one_tracked_bridge(mcp_host, mcp_api):
    status, server = mcp_api("post", "/servers", json={"name": "time", "command": TIME_SERVER})
    assert status == 201, server
    service = mcp_host.app.extensions["open1panel_ai"].services["mcp"]
    barrier = threading.Barrier(6)

    def start():
        barrier.wait()
        service.start_server(server["id"])

    def rotate():
        barrier.wait()
        service.rotate_token(server["id"])

    threads = [threading.Thread(target=start) for _ in range(4)] + [threading.Thread(target=rotate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    running = wait_status(mcp_api, server["id"], "running")
    assert bridges_of(server["id"]) == [running["pid"]]
    assert '"timezone": "UTC"' in now_in_utc(running, token_of(mcp_api, server["id"]))
    assert mcp_api("delete", f"/servers/{server['id']}")[0] == 204
    deadline = time.monotonic() + 10
    while bridges_of(server["id"]):
        assert time.monotonic() < deadline, f"bridges left behind: {bridges_of(server['id'])}"
        time.sleep(0.1)
