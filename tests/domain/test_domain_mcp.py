"""MCP servers bound one by one: each server gets its own domain, reached through the real
proxy with the official MCP client; binding one touches no other server and restarts none."""

from __future__ import annotations

import anyio
import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import free_port
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import _session_call, wait_status


def mcp_api(panel):
    return lambda method, path, **kwargs: panel.api(method, "/mcp" + path, **kwargs)


def start_time_server(panel, name):
    api = mcp_api(panel)
    # A free port of its own: the default range may be in use by other panels on this machine.
    status, server = api("post", "/servers", json={"name": name, "command": TIME_SERVER, "port": free_port()})
    assert status == 201, server
    assert api("post", f"/servers/{server['id']}/start")[0] == 200
    return wait_status(api, server["id"], "running")


def bridge_token(panel, server_id):
    config = panel.api("get", f"/mcp/servers/{server_id}/client-config?client=cursor")[1]
    return config["snippet"].split("Bearer ")[1].split('"')[0]


def current_time_through(panel, domain, token, transport="streamable-http"):
    """Call ``get_current_time`` through the proxy as a client of ``domain`` would."""
    return anyio.run(_call, f"http://127.0.0.1:{panel.proxy.http_port}", domain, token, transport)


async def _call(base, domain, token, transport):
    headers = {"Host": domain, "Authorization": f"Bearer {token}"}
    with anyio.fail_after(20):
        if transport == "sse":
            async with sse_client(base + "/sse", headers=headers) as (read, write):
                return await _session_call(read, write, "get_current_time", {"timezone": "UTC"})
        async with httpx2.AsyncClient(headers=headers) as http:
            async with streamable_http_client(base + "/mcp", http_client=http) as (read, write):
                return await _session_call(read, write, "get_current_time", {"timezone": "UTC"})


def test_each_mcp_server_gets_its_own_domain_without_restarting_any(panel):
    first, second = start_time_server(panel, "time-a"), start_time_server(panel, "time-b")
    pids = {s["id"]: s["pid"] for s in (first, second)}

    status, binding = panel.api(
        "post", "/domains", json={"domains": ["time-a.example.test"], "target": {"kind": "mcp", "name": first["id"]}}
    )
    assert status == 201, binding
    assert binding["auth"]["mode"] == "none"  # the bridge's own token guards it
    assert binding["url"].endswith("/mcp") and binding["state"] == "online"

    token = bridge_token(panel, first["id"])
    assert '"UTC"' in current_time_through(panel, "time-a.example.test", token)
    assert '"UTC"' in current_time_through(panel, "time-a.example.test", token, "sse")

    status, other = panel.api(
        "post", "/domains", json={"domains": ["time-b.example.test"], "target": {"kind": "mcp", "name": second["id"]}}
    )
    assert status == 201
    assert '"UTC"' in current_time_through(panel, "time-b.example.test", bridge_token(panel, second["id"]))

    servers = {s["id"]: s for s in panel.api("get", "/mcp/servers")[1]["servers"]}
    assert {sid: servers[sid]["pid"] for sid in pids} == pids  # nobody restarted
    assert panel.context.services["mcp"].server(first["id"])["extra_hosts"] == ["time-a.example.test"]
    assert panel.context.services["mcp"].server(second["id"])["extra_hosts"] == ["time-b.example.test"]

    assert panel.api("delete", f"/domains/{binding['id']}")[0] == 204
    assert panel.context.services["mcp"].server(first["id"])["extra_hosts"] == []
    assert panel.context.services["mcp"].server(second["id"])["extra_hosts"] == ["time-b.example.test"]


def test_auth_at_the_proxy_is_refused_for_mcp_targets_and_nothing_changes(nginx_panel):
    panel = nginx_panel
    status, server = mcp_api(panel)("post", "/servers", json={"name": "time", "command": TIME_SERVER})
    assert status == 201, server
    target = {"kind": "mcp", "name": server["id"]}
    basic = {"mode": "basic", "username": "ops", "password": "a long enough secret"}

    for auth in ({"mode": "bearer"}, basic):
        for path in ("/domains", "/domains/preview"):
            status, reply = panel.api(
                "post", path, json={"domains": ["time.example.test"], "target": target, "auth": auth}
            )
            assert status == 400, reply
            assert reply["error"]["code"] == "auth_not_for_mcp"
            assert reply["error"]["details"]["fields"]["auth"]["mode"]
    assert panel.api("get", "/domains")[1]["bindings"] == []
    assert list(panel.proxy.sites.iterdir()) == []

    # An Ollama binding with its bearer token cannot be moved onto an MCP server either.
    status, created = panel.api(
        "post", "/domains", json={"domains": ["llm.example.test"], "target": {"kind": "ollama", "name": "local"}}
    )
    assert status == 201, created
    site = (panel.proxy.sites / f"open1panel-ai-{created['id']}.conf").read_text()
    status, reply = panel.api("put", f"/domains/{created['id']}", json={"target": target})
    assert status == 400 and reply["error"]["code"] == "auth_not_for_mcp"
    kept = panel.api("get", f"/domains/{created['id']}")[1]
    assert kept["target"] == {"kind": "ollama", "name": "local"} and kept["auth"]["mode"] == "bearer"
    assert (panel.proxy.sites / f"open1panel-ai-{created['id']}.conf").read_text() == site

    status, moved = panel.api("put", f"/domains/{created['id']}", json={"target": target, "auth": {"mode": "none"}})
    assert status == 200 and moved["auth"]["mode"] == "none", moved
