"""Bindings follow their targets: a removed Ollama endpoint marks its bindings ``error`` with a
clear text, an MCP server's new address is applied again, and a deleted server's bindings leave
the proxy and are marked ``error``; nothing else is touched."""

from __future__ import annotations

from tests.domain.conftest import _panel
from tests.domain.test_domain_mcp import mcp_api
from tests.mcp.conftest import TIME_SERVER


def site(panel, binding_id):
    return (panel.proxy.sites / f"open1panel-ai-{binding_id}.conf")


def test_a_removed_ollama_endpoint_marks_its_bindings_error(nginx_panel, ollama):
    panel = nginx_panel
    status, endpoint = panel.api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": ollama.url})
    assert status == 201, endpoint
    status, gone = panel.api("post", "/domains", json={
        "domains": ["gpu.example.test"], "target": {"kind": "ollama", "name": "gpu-box"}})
    assert status == 201 and gone["state"] == "online", gone
    kept = panel.api("post", "/domains", json={
        "domains": ["local.example.test"], "target": {"kind": "ollama", "name": "local"}})[1]

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
        nginx, panel_env, make_host, ollama, data_dir):
    first = _panel(nginx, "nginx", panel_env, make_host, ollama, data_dir)
    first.api("post", "/ollama/endpoints", json={"name": "gpu-box", "url": ollama.url})
    created = first.api("post", "/domains", json={
        "domains": ["gpu.example.test"], "target": {"kind": "ollama", "name": "gpu-box"}})[1]
    first.context.store.execute("DELETE FROM ollama_endpoints WHERE name = ?", ("gpu-box",))
    first.host.shutdown()

    second = _panel(nginx, "nginx", panel_env, make_host, ollama, data_dir)
    row = second.context.store.query_one("SELECT state, error FROM domain_bindings WHERE id = ?",
                                         (created["id"],))
    assert row["state"] == "error" and "'gpu-box'" in row["error"]
