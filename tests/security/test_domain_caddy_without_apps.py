"""Issue 19, finding 9: Caddy without an ``apps`` section.

Creating the first binding on a Caddy started without ``apps`` (or with ``apps`` but no
``http`` app, or an ``http`` app without ``servers``) failed with Caddy's ``key does not exist:
apps``: the panel patched a path Caddy did not have. Now the path is created. Each case runs a
real Caddy started on such a config, its admin API on a unix socket, and proves the binding
with a request through Caddy.
"""

from __future__ import annotations

import socket

import pytest

from tests.conftest import free_port
from tests.domain.conftest import CaddyServer, _panel, ollama  # noqa: F401  (fixtures)

DOMAIN = "ollama.example.test"


def free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("apps", ["none", "no http app", "no servers"])
def test_the_first_binding_creates_what_caddys_config_lacks(apps, tmp_path, panel_env, make_host, ollama, data_dir):  # noqa: F811
    http_port, https_port = free_port(), free_port()
    config = {
        "none": None,
        "no http app": {"tls": {}},
        "no servers": {"http": {"http_port": http_port, "https_port": https_port}},
    }[apps]
    if apps != "no servers":
        # Without an http app, the server the panel creates listens on Caddy's own ports.
        http_port, https_port = 80, 443
        if not (free(80) and free(443)):
            pytest.skip("ports 80 and 443 are taken here; the case 'no servers' covers the rest")
    caddy = CaddyServer(tmp_path / "caddy", admin_socket=True)
    caddy.http_port = http_port
    caddy.start(apps=config)
    try:
        panel = _panel(caddy, "caddy", panel_env, make_host, ollama, data_dir)
        status, created = panel.api(
            "post",
            "/domains",
            json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "auth": {"mode": "none"}},
        )
        assert status == 201, created
        assert created["state"] == "online" and created["error"] is None
        assert created["url"] == f"http://{DOMAIN}" + ("" if http_port == 80 else f":{http_port}")

        server = caddy.config("/config/apps/http/servers/open1panel_ai")
        assert server["listen"] == [f":{http_port}", f":{https_port}"]
        assert [route["@id"] for route in server["routes"]] == [f"open1panel-ai-{created['id']}"]
        answer = caddy.get(DOMAIN, "/api/version")
        assert answer.status_code == 200 and answer.json() == {"version": "0.12.6"}

        assert panel.api("delete", f"/domains/{created['id']}")[0] == 204
        assert caddy.config("/config/apps/http/servers/open1panel_ai")["routes"] == []
    finally:
        caddy.close()
