"""Issue 19, finding 3: no secrets in Caddy's open admin API.

Caddy's admin API has no authentication, and the config it serves holds every binding's bearer
token and password hash. On its default loopback port any local user could read them, or
rewrite the routes. The panel now talks to an admin API on a unix socket (``unix//path``, as
Caddy writes it), which docs/domains.md and the tests' Caddy use, and it warns, on the Domains
page (``GET /domains/proxy``) and on the status page (the overview), while the API is on TCP or
on a socket other users may open.
"""

from __future__ import annotations

import pwd
import subprocess

import pytest

from hookspecs.ai import ProviderUnavailable
from open1panel_ai.domain.caddy import CaddyProvider
from tests.domain.conftest import CaddyServer, _panel, caddy, ollama  # noqa: F401  (fixtures)

DOMAIN = "ollama.example.test"


def read_config_as_nobody(server: CaddyServer) -> subprocess.CompletedProcess:
    """``GET /config/`` of Caddy's admin API as the user ``nobody``, with curl."""
    nobody = pwd.getpwnam("nobody")
    if server.admin_socket is not None:
        where = ["--unix-socket", str(server.admin_socket), "-H", "Host;", "http://localhost/config/"]
    else:
        where = [server.admin + "/config/"]
    return subprocess.run(
        ["curl", "-sS", "--fail", "--max-time", "5", *where],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        capture_output=True,
        text=True,
        timeout=20,
    )


def bind(panel):
    status, created = panel.api(
        "post", "/domains", json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}}
    )
    assert status == 201 and created["state"] == "online", created
    answer = panel.proxy.get(DOMAIN, "/api/version", headers={"Authorization": f"Bearer {created['token']}"})
    assert answer.status_code == 200 and answer.json() == {"version": "0.12.6"}
    return created


@pytest.fixture
def tcp_caddy(tmp_path):
    server = CaddyServer(tmp_path / "tcp-caddy").start()
    yield server
    server.stop()


def test_the_panel_publishes_through_an_admin_api_on_a_unix_socket_no_other_user_can_open(
    caddy,  # noqa: F811
    panel_env,
    make_host,
    ollama,  # noqa: F811
    data_dir,
):
    assert caddy.admin.startswith("unix//") and caddy.admin_socket.is_socket()
    panel = _panel(caddy, "caddy", panel_env, make_host, ollama, data_dir)
    created = bind(panel)

    status, proxy = panel.api("get", "/domains/proxy")
    assert status == 200 and (proxy["usable"], proxy["provider"]) == (True, "caddy")
    assert proxy["warnings"] == []
    assert panel.api("get", "/overview")[1]["domain"]["state"] == "ready"

    refused = read_config_as_nobody(caddy)
    assert refused.returncode != 0 and created["token"] not in refused.stdout


def test_an_admin_api_on_tcp_is_a_warning_on_the_domains_and_status_pages(
    tcp_caddy,
    panel_env,
    make_host,
    ollama,  # noqa: F811
    data_dir,
):
    panel = _panel(tcp_caddy, "caddy", panel_env, make_host, ollama, data_dir)
    created = bind(panel)
    # The hole the warning is about: another local user reads the token.
    assert created["token"] in read_config_as_nobody(tcp_caddy).stdout

    status, proxy = panel.api("get", "/domains/proxy")
    assert status == 200 and proxy["usable"]
    [warning] = proxy["warnings"]
    assert warning["warning"] == (
        f"Caddy's admin API is on TCP ({tcp_caddy.admin}) and has no authentication: every local "
        "user can read the bindings' bearer tokens and password hashes in its config, or change its routes."
    )
    assert "unix//run/caddy/admin.sock" in warning["fix"] and "OPEN1PANEL_AI_CADDY_ADMIN" in warning["fix"]
    chinese = panel.api("get", "/domains/proxy", headers={"Accept-Language": "zh-CN"})[1]
    assert chinese["warnings"][0]["warning"].startswith("Caddy 的管理 API 使用 TCP")

    overview = panel.api("get", "/overview")[1]["domain"]
    assert overview["state"] == "attention" and overview["error"] == 0  # the warning alone
    [warning] = overview["warnings"]  # and the card says why
    assert "TCP" in warning["warning"] and warning["fix"]


def test_a_socket_other_users_may_open_is_a_warning_too(caddy, tmp_path):  # noqa: F811
    provider = CaddyProvider(caddy.settings(tmp_path / "data"))
    provider.probe()
    assert provider.warnings() == []
    folder = caddy.admin_socket.parent
    caddy.admin_socket.chmod(0o777)
    assert provider.warnings() == []  # its folder keeps others out
    folder.chmod(0o755)
    try:
        [warning] = provider.warnings()
        assert warning["warning"].key == "domain.caddy.warning.open_socket"
        assert warning["warning"].params == {"socket": str(caddy.admin_socket), "mode": "0777"}
        assert read_config_as_nobody(caddy).returncode == 0  # the hole the warning is about
        caddy.admin_socket.chmod(0o600)
        assert provider.warnings() == []
        assert read_config_as_nobody(caddy).returncode != 0
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("admin", ["unix/relative/admin.sock", "unix/", "ftp://127.0.0.1:2019"])
def test_an_admin_address_that_is_neither_a_socket_nor_http_is_explained(admin, tmp_path):
    provider = CaddyProvider({"data_dir": str(tmp_path), "caddy_admin": admin})
    with pytest.raises(ProviderUnavailable) as refused:
        provider.probe()
    assert refused.value.reason.key == "domain.caddy.bad_admin"
    assert "unix//run/caddy/admin.sock" in refused.value.fix
