"""``kill -9`` of the served panel in the middle of long work, then a start on the same data
dir: the pull goes on by itself, the autostart MCP servers come back exactly once, and the
SQLite file passes its integrity check after the crash and after the restart."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import free_port
from tests.faults.conftest import integrity, kill_panel, list_tools
from tests.helpers import TIME_SERVER, bridge_pids, wait_for
from tests.mcp.conftest import pid_alive

pytestmark = pytest.mark.server


def test_a_pull_killed_midway_goes_on_by_itself_and_a_cancelled_one_does_not(served, standin, panel_env, tmp_path):
    standin.pull_speed = 1_000_000
    standin.publish("llama3.2", [3_000_000])
    standin.publish("qwen2", [3_000_000])
    data_dir = tmp_path / "panel"
    panel = served(env=panel_env, data_dir=data_dir)
    cancelled = panel.api("POST", "/ollama/pulls", json={"name": "qwen2"}).json()
    panel.wait_task(cancelled["id"], lambda t: (t["completed"] or 0) > 0)
    panel.api("POST", f"/tasks/{cancelled['id']}/cancel")
    panel.wait_task(cancelled["id"], lambda t: t["status"] == "cancelled")
    cancelled_parts = set(standin.blobs.glob("*-partial-0"))
    task = panel.api("POST", "/ollama/pulls", json={"name": "llama3.2"}).json()
    panel.wait_task(task["id"], lambda t: (t["completed"] or 0) > 500_000)
    kill_panel(panel)
    assert integrity(data_dir) == "ok"
    [part] = set(standin.blobs.glob("*-partial-0")) - cancelled_parts
    done_before = json.loads(part.read_text())["Completed"]
    cancelled_asks = [entry["name"] for entry in standin.pull_log].count("qwen2:latest")

    standin.pull_speed = 30_000_000
    again = served(env=panel_env, data_dir=data_dir)
    finished = again.wait_task(task["id"], lambda t: t["status"] in ("succeeded", "failed", "cancelled"))
    assert finished["status"] == "succeeded", finished
    assert finished["percent"] == 100.0
    # The same task went on from what Ollama kept, not from zero.
    assert max(standin.pull_log[-1]["first_completed"].values()) >= done_before > 0
    assert "llama3.2:latest" in {m["name"] for m in again.api("GET", "/ollama/models").json()["models"]}
    # What its user cancelled stays cancelled: nobody asked Ollama for it again.
    assert again.api("GET", f"/tasks/{cancelled['id']}").json()["status"] == "cancelled"
    assert [entry["name"] for entry in standin.pull_log].count("qwen2:latest") == cancelled_asks
    assert integrity(data_dir) == "ok"


#: A stdio server that never answers when started while a flag file exists (a ``uvx`` download
#: that hangs, say), and is mcp-server-time otherwise.
SLOW_START = """
import os, sys, time
while os.path.exists(sys.argv[1]):
    time.sleep(3600)
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_mcp_servers_killed_while_starting_come_back_once_and_leave_no_orphans(
    served, panel_env, tmp_path, no_stray_bridges
):
    scripts = tmp_path / "scripts"  # granted to the servers' sandbox, which sees "hang" go
    scripts.mkdir()
    script, hang = scripts / "slow_start.py", scripts / "hang"
    script.write_text(SLOW_START)
    hang.touch()
    data_dir = tmp_path / "panel"
    panel = served(env=panel_env, data_dir=data_dir)
    slow = [sys.executable, str(script), str(hang), *TIME_SERVER]
    servers = {}
    for name, autostart in (("kept", True), ("manual", False)):
        made = panel.api(
            "POST",
            "/mcp/servers",
            json={
                "name": name,
                "command": slow,
                "autostart": autostart,
                "port": free_port(),
                "profile": {"read": [str(scripts)]},
            },
        )
        assert made.status_code == 201, made.text
        servers[name] = made.json()["id"]
        no_stray_bridges.append(made.json()["id"])
    kept, manual = servers["kept"], servers["manual"]
    token = panel.api("GET", f"/mcp/servers/{kept}/client-config?client=cursor").json()["snippet"]
    token = token.split("Bearer ")[1].split('"')[0]
    left_behind = []
    for server_id in (kept, manual):
        assert panel.api("POST", f"/mcp/servers/{server_id}/start").status_code == 200
        [bridge] = wait_for(lambda server_id=server_id: bridge_pids(f"{server_id}.json"), what="the bridge to start")
        left_behind += [bridge, *wait_for(lambda bridge=bridge: child_pids(bridge), what="the stdio server to start")]
    # Killed while starting: both bridges still wait for their server's first answer.
    assert panel.api("GET", f"/mcp/servers/{kept}").json()["status"] == "starting"
    kill_panel(panel)
    assert all(pid_alive(pid) for pid in left_behind)  # nothing of the panel stopped them
    assert integrity(data_dir) == "ok"

    hang.unlink()
    again = served(env=panel_env, data_dir=data_dir)
    server = wait_for(
        lambda: (s := again.api("GET", f"/mcp/servers/{kept}").json())["status"] == "running" and s,
        what="the autostart server to run",
    )
    assert bridge_pids(f"{kept}.json") == [server["pid"]]  # exactly once: the orphan was stopped
    assert "get_current_time" in list_tools(server["endpoints"]["streamable_http"], token)
    # The server not marked autostart stays stopped, and what was left of it is gone too.
    assert again.api("GET", f"/mcp/servers/{manual}").json()["status"] == "stopped"
    wait_for(lambda: not bridge_pids(f"{manual}.json"), timeout=5, what="the bridge left of the manual server to go")
    assert not any(pid_alive(pid) for pid in left_behind)
    assert integrity(data_dir) == "ok"


def child_pids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return [int(child) for child in file.read().split()]
