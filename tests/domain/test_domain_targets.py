"""Bindings follow their targets: a removed Ollama endpoint marks its bindings ``error`` with a
clear text, an MCP server's new address is applied again, and a deleted server's bindings leave
the proxy and are marked ``error``; nothing else is touched."""

from __future__ import annotations

from tests.conftest import free_port
from tests.domain.conftest import _panel
from tests.domain.test_domain_mcp import (
    bridge_token,
    current_time_through,
    mcp_api,
    start_time_server,
)
from tests.mcp.conftest import wait_status


def site(panel, binding_id):
    return panel.proxy.sites / f"open1panel-ai-{binding_id}.conf"


def test_a_removed_ollama_endpoint_marks_its_bindings_error(nginx_panel, ollama):
    panel = nginx_panel
    status, endpoint = panel.api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": ollama.url})
    assert status == 201, endpoint
    status, gone = panel.api(
        "post", "/domains", json={"domains": ["gpu.example.test"], "target": {"kind": "ollama", "name": "gpu-box"}}
    )
    assert status == 201 and gone["state"] == "online", gone
    kept = panel.api(
        "post", "/domains", json={"domains": ["local.example.test"], "target": {"kind": "ollama", "name": "local"}}
    )[1]

    assert panel.api("delete", "/ollama/endpoints/gpu-box")[0] == 204

    listed = {b["id"]: b for b in panel.api("get", "/domains")[1]["bindings"]}
    assert listed[gone["id"]]["state"] == "error"
    assert "'gpu-box'" in listed[gone["id"]]["error"] and "no longer resolves" in listed[gone["id"]]["error"]
    assert listed[kept["id"]]["state"] == "online" and listed[kept["id"]]["error"] is None
    shown = panel.api("get", f"/domains/{gone['id']}")[1]
    assert shown["state"] == "error" and shown["error"] == listed[gone["id"]]["error"]

    # Pointed at a target that exists, it is applied and online again.
    status, moved = panel.api("put", f"/domains/{gone['id']}", json={"target": {"kind": "ollama", "name": "local"}})
    assert status == 200 and moved["state"] == "online" and moved["error"] is None, moved


def test_a_panel_started_after_the_endpoint_went_marks_the_binding_at_start(
    nginx, panel_env, make_host, ollama, data_dir
):
    first = _panel(nginx, "nginx", panel_env, make_host, ollama, data_dir)
    first.api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": ollama.url})
    created = first.api(
        "post", "/domains", json={"domains": ["gpu.example.test"], "target": {"kind": "ollama", "name": "gpu-box"}}
    )[1]
    first.context.store.execute("DELETE FROM ollama_endpoints WHERE name = ?", ("gpu-box",))
    first.host.shutdown()

    second = _panel(nginx, "nginx", panel_env, make_host, ollama, data_dir)
    row = second.context.store.query_one("SELECT state, error FROM domain_bindings WHERE id = ?", (created["id"],))
    assert row["state"] == "error" and "'gpu-box'" in row["error"]


def test_an_mcp_servers_new_port_is_applied_and_its_deletion_retires_its_bindings(nginx_panel):
    panel = nginx_panel
    api = mcp_api(panel)
    moved, other = start_time_server(panel, "time-a"), start_time_server(panel, "time-b")
    bound = panel.api(
        "post", "/domains", json={"domains": ["time-a.example.test"], "target": {"kind": "mcp", "name": moved["id"]}}
    )[1]
    kept = panel.api(
        "post", "/domains", json={"domains": ["time-b.example.test"], "target": {"kind": "mcp", "name": other["id"]}}
    )[1]
    assert site(panel, bound["id"]).read_text().count(f":{moved['port']};") == 1
    kept_site = site(panel, kept["id"]).read_text()

    new_port = free_port()
    status, changed = api("put", f"/servers/{moved['id']}", json={"port": new_port})
    assert status == 200 and changed["port"] == new_port, changed
    wait_status(api, moved["id"], "running")
    assert f":{new_port};" in site(panel, bound["id"]).read_text()
    assert panel.api("get", f"/domains/{bound['id']}")[1]["state"] == "online"
    token = bridge_token(panel, moved["id"])
    assert '"UTC"' in current_time_through(panel, "time-a.example.test", token)

    assert api("delete", f"/servers/{moved['id']}")[0] == 204
    assert not site(panel, bound["id"]).exists()
    assert panel.proxy.get("time-a.example.test", "/mcp").status_code == 421  # nginx's default server
    shown = panel.api("get", f"/domains/{bound['id']}")[1]
    assert shown["state"] == "error" and "was deleted" in shown["error"] and moved["id"] in shown["error"]
    assert site(panel, kept["id"]).read_text() == kept_site
    assert panel.api("get", f"/domains/{kept['id']}")[1]["state"] == "online"
