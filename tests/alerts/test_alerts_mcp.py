"""The MCP rules with real ``mcp-server-time`` servers: one killed into ``error`` raises
``mcp_failing`` once it has been in error for the rule's duration; one running outside the
sandbox raises ``mcp_sandbox``; both resolve when the cause goes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.alerts.conftest import alerts_of, channel, wait_alerts
from tests.helpers import TIME_SERVER, wait_for
from tests.mcp.conftest import FAST as MCP_FAST
from tests.mcp.conftest import wait_status


@pytest.fixture
def host(alerts_env, make_host):
    for key, value in MCP_FAST.items():
        alerts_env.setenv(key, value)
    alerts_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "cpu")
    return make_host()


def mcp(api):
    return lambda method, path, **kwargs: api(method, "/mcp" + path, **kwargs)


def start(api, name, **fields):
    status, server = api("post", "/mcp/servers", json={"name": name, "command": TIME_SERVER, **fields})
    assert status == 201, server
    assert api("post", f"/mcp/servers/{server['id']}/start")[0] == 200
    return wait_status(mcp(api), server["id"], "running")


def test_a_server_killed_into_error_and_one_outside_its_sandbox(api, only, receiver):
    channel(api, receiver)
    only("mcp_failing", "mcp_sandbox", for_seconds=0.5)
    dying = start(api, "dying", restart_policy="never")
    bare = start(api, "bare", profile={"isolation": "none"})

    unboxed = wait_for(
        lambda: next((a for a in alerts_of(api, "mcp_sandbox") if a["subject_key"] == bare["id"]), None),
        15,
        what="the alert of the server outside its sandbox",
    )
    assert unboxed["subject"] == "bare" and unboxed["severity"] == "warning"
    assert "MCP server bare is not wholly sandboxed (none)" in unboxed["summary"]

    with open(f"/proc/{dying['pid']}/task/{dying['pid']}/children") as file:
        child = int(file.read().split()[0])
    os.kill(child, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_status(mcp(api), dying["id"], "error")
    [failing] = wait_alerts(api, "mcp_failing")
    assert time.monotonic() - killed_at >= 0.5
    assert failing["subject_key"] == dying["id"] and failing["severity"] == "critical"
    assert failing["summary"].startswith("MCP server dying is error.")
    assert [a["subject"] for a in alerts_of(api, "mcp_failing")] == ["dying"]  # bare runs fine

    # Started again it runs: resolved, and the channel is told.
    assert api("post", f"/mcp/servers/{dying['id']}/start")[0] == 200
    wait_status(mcp(api), dying["id"], "running")
    wait_alerts(api, "mcp_failing", status="resolved")
    events = [(r.json["alert"]["rule"], r.json["event"]) for r in receiver.wait("/webhook", 3)]
    assert ("mcp_failing", "firing") in events and ("mcp_failing", "resolved") in events
    # Stopped, the bare server runs nothing outside a sandbox any more.
    assert api("post", f"/mcp/servers/{bare['id']}/stop")[0] == 200
    resolved = wait_alerts(api, "mcp_sandbox", status="resolved")
    assert bare["id"] in {a["subject_key"] for a in resolved}
