"""Client configs name the address clients will really use: a server bound to a domain gets
snippets for ``https://<domain>/mcp`` (or ``/sse``) by default, and the user may pick any of
the addresses the server is reachable at, through the API and in the page's dialog. The
domain is bound by the domain feature through a real nginx."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from open1panel_ai.errors import BadRequest
from tests.conftest import TOKEN, free_port
from tests.domain.certificates import self_signed
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import FAST
from tests.test_pages import sign_in

DOMAIN = "time.example.test"


def nginx_env(nginx, folder) -> dict[str, str]:
    env = {"OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx"}
    for key, value in nginx.settings(folder).items():
        if key != "data_dir":
            env["OPEN1PANEL_AI_" + key.upper()] = value
    return env


@pytest.fixture
def host(mcp_env, make_host, nginx, tmp_path):
    for key, value in nginx_env(nginx, tmp_path / "unused").items():
        mcp_env.setenv(key, value)
    return make_host()


@pytest.fixture
def api(host, auth_headers):
    client = host.app.test_client()

    def call(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    return call


def snippet_url(config) -> str:
    return json.loads(config["snippet"])["mcpServers"]["time"]["url"]


def test_a_bound_domain_is_the_default_address_and_every_address_can_be_chosen(api, host, nginx, tmp_path):
    status, server = api("post", "/mcp/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()})
    assert status == 201, server
    local = f"http://127.0.0.1:{server['port']}"
    config_path = f"/mcp/servers/{server['id']}/client-config?client=cursor"
    status, config = api("get", config_path)
    assert status == 200, config
    assert (config["address"], snippet_url(config)) == (local, local + "/mcp")
    assert config["addresses"] == [{"url": local, "kind": "local"}]

    status, binding = api(
        "post", "/domains", json={"domains": [DOMAIN], "target": {"kind": "mcp", "name": server["id"]}}
    )
    assert status == 201 and binding["state"] == "online", binding
    domain = f"http://{DOMAIN}:{nginx.http_port}"
    config = api("get", config_path)[1]
    assert config["address"] == domain and snippet_url(config) == domain + "/mcp"
    assert config["addresses"] == [{"url": domain, "kind": "domain"}, {"url": local, "kind": "local"}]
    sse = api("get", config_path + "&transport=sse")[1]
    assert snippet_url(sse) == domain + "/sse"
    chosen = api("get", config_path + f"&address={local}")[1]
    assert snippet_url(chosen) == local + "/mcp"

    # With a certificate the domain is served over https, on the proxy's https port.
    certificate, key = self_signed(tmp_path / "tls", DOMAIN)
    status, changed = api(
        "put",
        f"/domains/{binding['id']}",
        json={"tls": {"mode": "existing", "certificate": str(certificate), "key": str(key), "force_https": True}},
    )
    assert status == 200 and changed["state"] == "online", changed
    secure = f"https://{DOMAIN}:{nginx.https_port}"
    config = api("get", config_path)[1]
    assert snippet_url(config) == secure + "/mcp" and config["addresses"][0] == {"url": secure, "kind": "domain"}

    status, refused = api("get", config_path + "&address=http://elsewhere.test")
    assert status == 400 and "address" in refused["error"]["details"]["fields"]

    # Unbound, the domain is no address any more.
    assert api("delete", f"/domains/{binding['id']}")[0] in (200, 202, 204)
    assert api("get", config_path)[1]["addresses"] == [{"url": local, "kind": "local"}]


def test_bindings_made_before_addresses_were_recorded_share_them_when_the_panel_starts(
    api, host, make_host, nginx, auth_headers
):
    status, server = api("post", "/mcp/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()})
    assert status == 201, server
    status, binding = api(
        "post", "/domains", json={"domains": [DOMAIN], "target": {"kind": "mcp", "name": server["id"]}}
    )
    assert status == 201 and binding["state"] == "online", binding
    domain = f"http://{DOMAIN}:{nginx.http_port}"
    row = api("get", f"/mcp/servers/{server['id']}")[1]
    assert row["endpoints"]["public"] == [{"streamable_http": domain + "/mcp", "sse": domain + "/sse"}]
    # As a panel that did not record public addresses left the server:
    store = host.app.extensions["open1panel_ai"].services["mcp"].store
    store.execute(
        "UPDATE mcp_servers SET definition = json_remove(definition, '$.public_addresses') WHERE id = ?",
        (server["id"],),
    )
    local = f"http://127.0.0.1:{server['port']}"
    config_path = f"/mcp/servers/{server['id']}/client-config?client=cursor"
    assert api("get", config_path)[1]["addresses"] == [{"url": local, "kind": "local"}]
    assert api("get", f"/mcp/servers/{server['id']}")[1]["endpoints"]["public"] == []
    host.shutdown()

    again = make_host().app.test_client()
    config = again.get("/api/v2/ai" + config_path, headers=auth_headers).get_json()
    assert config["addresses"] == [{"url": domain, "kind": "domain"}, {"url": local, "kind": "local"}]
    assert snippet_url(config) == domain + "/mcp"
    row = again.get(f"/api/v2/ai/mcp/servers/{server['id']}", headers=auth_headers).get_json()
    assert row["endpoints"]["public"] == [{"streamable_http": domain + "/mcp", "sse": domain + "/sse"}]


def test_addresses_from_another_feature_are_parsed_and_bad_ones_change_nothing(api, host):
    server = api("post", "/mcp/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()})[1]
    service = host.app.extensions["open1panel_ai"].services["mcp"]
    service.set_public_addresses(
        server["id"], [{"scheme": "https", "host": "MCP.Example.test", "port": 443, "path_prefix": "/tools/time/"}]
    )
    assert service.addresses(server["id"])[0] == {"url": "https://mcp.example.test/tools/time", "kind": "domain"}
    assert service.server(server["id"])["extra_hosts"] == ["mcp.example.test"]
    for bad in (
        {"scheme": "ftp", "host": "a.test"},
        {"scheme": "https", "host": "a.test/x"},
        {"scheme": "https", "host": "a.test", "port": 70000},
        {"scheme": "https", "host": "a.test", "port": True},
        {"scheme": "https", "host": "a.test", "path_prefix": "/../x"},
        {"scheme": "https", "host": "a.test", "path_prefix": "/a b"},
        "https://a.test",
    ):
        with pytest.raises(BadRequest):
            service.set_public_addresses(server["id"], [bad])
    assert service.addresses(server["id"])[0]["url"] == "https://mcp.example.test/tools/time"


@pytest.mark.browser
def test_the_dialog_defaults_to_the_domain_and_lets_the_user_pick_another_address(
    served,
    nginx,
    browser,
    tmp_path,
):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, **FAST, **nginx_env(nginx, tmp_path / "unused")})
    server = panel.api(
        "POST", "/mcp/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()}
    ).json()
    binding = panel.api(
        "POST", "/domains", json={"domains": [DOMAIN], "target": {"kind": "mcp", "name": server["id"]}}
    ).json()
    assert binding["state"] == "online", binding
    domain, local = f"http://{DOMAIN}:{nginx.http_port}", f"http://127.0.0.1:{server['port']}"

    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        sign_in(page, panel, TOKEN)
        page.goto(panel.url + "/ai/mcp/")
        page.locator(f'tr[data-id="{server["id"]}"] button[data-action=config]').click()
        snippet, address = page.locator(".mcp-config-snippet"), page.locator("#mcp-config-address")
        expect(snippet).to_contain_text(f'"url": "{domain}/mcp"')
        expect(address).to_have_value(domain)
        expect(address.locator("option")).to_have_text([f"{domain} (domain)", f"{local} (this machine)"])
        address.select_option(local)
        expect(snippet).to_contain_text(f'"url": "{local}/mcp"')
        page.select_option("#mcp-config-transport", "sse")  # the choice holds for another transport
        expect(snippet).to_contain_text(f'"url": "{local}/sse"')
        page.locator("#mcp-config-dialog .mcp-close").click()
        # Opened again, it starts at the default: the domain.
        page.locator(f'tr[data-id="{server["id"]}"] button[data-action=config]').click()
        expect(snippet).to_contain_text(f'"url": "{domain}/mcp"')
    finally:
        context.close()
