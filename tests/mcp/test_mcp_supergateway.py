"""The supergateway runtime: chosen only by name, and never exposed itself: it listens on an
internal port while our bridge serves the server's port with the token and both transports."""

import json
import shutil
import socket
import time

import httpx
import pytest

from hookspecs.ai import ProviderUnavailable
from open1panel_ai.mcp.runtime import SupergatewayRuntime
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import call_tool, wait_status
from tests.mcp.test_mcp_supervision import token_of


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed")
def test_auto_never_chooses_supergateway_even_where_node_is(tmp_path):
    settings = {"data_dir": str(tmp_path), "mcp_provider": "auto"}
    with pytest.raises(ProviderUnavailable) as refused:
        SupergatewayRuntime(settings).probe()
    assert refused.value.reason == "The supergateway runtime is used only when chosen by name."
    SupergatewayRuntime({**settings, "mcp_provider": "supergateway"}).probe()


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed")
def test_supergateway_is_served_only_through_the_bridge(mcp_env, make_host, auth_headers, data_dir):
    mcp_env.setenv("OPEN1PANEL_AI_MCP_PROVIDER", "supergateway")
    mcp_env.setenv("OPEN1PANEL_AI_MCP_START_TIMEOUT", "180")  # npx may download supergateway first
    client = make_host().app.test_client()

    def api(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai/mcp" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    status, server = api("post", "/servers", json={"name": "time", "command": TIME_SERVER})
    assert status == 201, server
    assert api("post", f"/servers/{server['id']}/start")[0] == 200
    internal = None
    try:
        server = wait_status(api, server["id"], "running", timeout=200)
        token = token_of(api, server["id"])
        assert "UTC" in call_tool(
            server["endpoints"]["streamable_http"], token, "get_current_time", {"timezone": "UTC"}
        )
        assert "UTC" in call_tool(server["endpoints"]["sse"], token, "get_current_time", {"timezone": "UTC"}, "sse")
        for path in ("/mcp", "/sse"):
            url = f"http://127.0.0.1:{server['port']}{path}"
            assert httpx.post(url, json={}, timeout=5).status_code == 401

        config = json.loads((data_dir / "mcp" / "run" / f"{server['id']}.json").read_text())
        internal = config["gateway"]["port"]
        assert internal != server["port"] and "--port" in config["gateway"]["argv"]
        assert config["port"] == server["port"] and config["token"] == token
        # The server's own port is the bridge's, on loopback only.
        with pytest.raises(OSError), socket.create_connection(("::1", server["port"]), timeout=2):
            pass
    finally:
        api("delete", f"/servers/{server['id']}")
    assert internal is not None
    deadline = time.monotonic() + 10  # the group was killed; its last member may take a moment
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", internal), timeout=2).close()
        except OSError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"supergateway still listens on {internal} after delete")
