"""The Domains page and DomainConfigDialog in real Chromium, opened from an Ollama endpoint
row, an MCP server row and the Domains page, publishing through a real nginx."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.test_pages import sign_in

pytestmark = pytest.mark.browser

DOMAIN = "ollama.example.test"


@pytest.fixture
def panel_with_nginx(served, nginx, ollama, tmp_path):
    env = {"OPEN1PANEL_AI_TOKEN": "page-test-token-0123456789", "OLLAMA_HOST": ollama.url,
           "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx"}
    for key, value in nginx.settings(tmp_path / "unused").items():
        if key != "data_dir":
            env["OPEN1PANEL_AI_" + key.upper()] = value
    return served(env=env)


def test_the_dialog_binds_an_ollama_endpoint_from_its_row(panel_with_nginx, nginx, page, tmp_path):
    panel = panel_with_nginx
    sign_in(page, panel)
    page.goto(panel.url + "/ai/ollama/")
    page.locator("#ollama-endpoints button[data-action=domain]").first.click()

    dialog = page.locator("#domain-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#domain-field-target-name")).to_have_value("local")
    expect(dialog.locator("#domain-field-auth-mode")).to_have_value("bearer")
    expect(dialog.locator(".domain-state")).to_have_text("Not saved")
    dialog.locator("#domain-field-domains").fill(DOMAIN)
    expect(dialog.locator(".domain-preview")).to_contain_text(f"server_name {DOMAIN};")
    expect(dialog.locator(".domain-preview")).to_contain_text("proxy_buffering off;")
    expect(dialog.locator(".domain-preview")).to_contain_text("Bearer <token>")
    expect(dialog.locator(".domain-url")).to_have_text(f"http://{DOMAIN}:{nginx.http_port}")

    dialog.get_by_role("button", name="Save and apply").click()
    expect(dialog.locator(".domain-state")).to_have_text("Online")
    token = dialog.locator(".domain-token-value").inner_text()
    assert len(token) > 30
    assert nginx.get(DOMAIN, "/api/version").status_code == 401
    assert nginx.get(DOMAIN, "/api/version", headers={"Authorization": f"Bearer {token}"}).json() == \
        {"version": "0.12.6"}
    page.screenshot(path=str(tmp_path / "domain-dialog.png"), full_page=True)

    # Opened again from the row, it shows the binding, without the token.
    dialog.get_by_role("button", name="Close").click()
    page.locator("#ollama-endpoints button[data-action=domain]").first.click()
    expect(page.locator("#domain-dialog .domain-state")).to_have_text("Online")
    expect(page.locator("#domain-dialog #domain-field-domains")).to_have_value(DOMAIN)
    expect(page.locator("#domain-dialog .domain-token")).to_be_hidden()


def test_the_domains_page_lists_bindings_and_shows_a_rejected_change(panel_with_nginx, nginx, page, tmp_path):
    panel = panel_with_nginx
    sign_in(page, panel)
    page.goto(panel.url + "/ai/domains")
    expect(page.locator("#domain-empty")).to_be_visible()
    expect(page.locator("#domain-provider")).to_have_text("Published through nginx.")

    page.get_by_role("button", name="Bind a domain").click()
    dialog = page.locator("#domain-dialog")
    expect(dialog.locator("#domain-field-target-name option")).not_to_have_count(0)
    dialog.locator("#domain-field-domains").fill("bad domain;")
    expect(dialog.locator(".domain-auth-mcp")).to_be_hidden()  # Ollama: the proxy asks for auth
    dialog.locator("#domain-field-auth-mode").select_option("none")
    dialog.get_by_role("button", name="Save and apply").click()
    expect(dialog.locator('[data-field="domains"] .domain-field-error')).to_contain_text("not a domain name")

    dialog.locator("#domain-field-domains").fill(DOMAIN)
    dialog.get_by_role("button", name="Save and apply").click()
    expect(dialog.locator(".domain-state")).to_have_text("Online")
    row = page.locator("#domain-bindings tbody tr")
    expect(row).to_have_attribute("data-state", "online")
    expect(row).to_contain_text(DOMAIN)
    dialog.get_by_role("button", name="Close").click()

    row.get_by_role("button", name="Edit").click()
    dialog = page.locator("#domain-dialog")
    expect(dialog.locator("#domain-field-domains")).to_have_value(DOMAIN)
    dialog.locator("#domain-field-tls-mode").select_option("existing")
    missing = str(tmp_path / "missing.pem")
    dialog.locator("#domain-field-tls-certificate").fill(missing)
    dialog.locator("#domain-field-tls-key").fill(missing)
    expect(dialog.locator(".domain-preview")).to_contain_text(f'ssl_certificate "{missing}";')
    dialog.get_by_role("button", name="Save and apply").click()
    expect(dialog.locator(".domain-state")).to_have_text("Error")
    expect(dialog.locator(".domain-error")).to_contain_text(missing)
    expect(page.locator("#domain-bindings tbody tr")).to_have_attribute("data-state", "error")
    assert nginx.get(DOMAIN, "/api/version").status_code == 200  # the previous site serves

    page.once("dialog", lambda confirm: confirm.accept())
    dialog.get_by_role("button", name="Remove binding").click()
    expect(page.locator("#domain-empty")).to_be_visible()
    assert nginx.get(DOMAIN, "/api/version").status_code == 421


def test_a_binding_removed_while_caddy_is_down_shows_its_note_until_caddy_took_it_out(
        served, caddy, ollama, page, tmp_path):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": "page-test-token-0123456789", "OLLAMA_HOST": ollama.url,
                        "OPEN1PANEL_AI_DOMAIN_PROVIDER": "caddy", "OPEN1PANEL_AI_CADDY_ADMIN": caddy.admin})
    headers = {"Authorization": f"Bearer {panel.token}"}
    created = httpx.post(panel.url + "/api/v2/ai/domains", headers=headers, json={
        "domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "auth": {"mode": "none"}})
    assert created.status_code == 201, created.text
    caddy.stop()
    sign_in(page, panel)
    page.goto(panel.url + "/ai/domains")
    expect(page.locator("#domain-provider")).to_contain_text("does not answer")
    page.locator("#domain-bindings tbody tr").get_by_role("button", name="Edit").click()
    page.once("dialog", lambda confirm: confirm.accept())
    page.locator("#domain-dialog").get_by_role("button", name="Remove binding").click()
    expect(page.locator("#domain-empty")).to_be_visible()
    banner = page.locator("#domain-banner")
    expect(banner).to_contain_text(f"{DOMAIN}: caddy could not take this binding out while it is down")
    expect(banner).to_contain_text("taken out once caddy answers again")

    route = f"{caddy.admin}/id/open1panel-ai-{created.json()['id']}"
    caddy.start(resume=True)
    assert httpx.get(route).status_code == 200  # Caddy resumed on the config with the route
    assert httpx.get(panel.url + "/api/v2/ai/status", headers=headers).status_code == 200
    page.reload()
    expect(page.locator("#domain-empty")).to_be_visible()  # the list has loaded
    expect(banner).to_be_hidden()
    assert httpx.get(route).status_code == 404


def test_the_dialog_binds_an_mcp_server_from_its_row(panel_with_nginx, nginx, page):
    panel = panel_with_nginx

    def api(method, path, **kwargs):
        response = panel.api(method, "/mcp" + path, **kwargs)
        return response.status_code, response.json()

    server = start_time_server_via(api)
    sign_in(page, panel)
    page.goto(panel.url + "/ai/mcp/")
    page.locator(f'tr[data-id="{server["id"]}"] button[data-action=domain]').click()
    dialog = page.locator("#domain-dialog")
    expect(dialog.locator("#domain-field-target-name")).to_have_value(server["id"])
    expect(dialog.locator("#domain-field-auth-mode")).to_have_value("none")
    expect(dialog.locator("#domain-field-auth-mode option:not([disabled])")).to_have_count(1)
    expect(dialog.locator(".domain-auth-mcp")).to_be_visible()
    dialog.locator("#domain-field-domains").fill("time.example.test")
    expect(dialog.locator(".domain-url")).to_have_text(f"http://time.example.test:{nginx.http_port}/mcp")
    dialog.get_by_role("button", name="Save and apply").click()
    expect(dialog.locator(".domain-state")).to_have_text("Online")
    assert panel.api("get", f"/mcp/servers/{server['id']}").json()["extra_hosts"] == ["time.example.test"]
    unauthenticated = httpx.post(f"http://127.0.0.1:{nginx.http_port}/mcp", headers={"Host": "time.example.test"},
                                 json={}, timeout=10)
    assert unauthenticated.status_code == 401  # the bridge's own token guards it, not a 421


def start_time_server_via(api):
    from tests.conftest import free_port
    from tests.helpers import TIME_SERVER
    from tests.mcp.conftest import wait_status

    status, server = api("post", "/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()})
    assert status == 201, server
    assert api("post", f"/servers/{server['id']}/start")[0] == 200
    return wait_status(api, server["id"], "running")


def test_the_dialog_speaks_chinese(panel_with_nginx, browser):  # noqa: F811
    panel = panel_with_nginx
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    sign_in(page, panel)
    page.goto(panel.url + "/ai/domains")
    expect(page.get_by_role("heading", level=1)).to_have_text("域名绑定")
    page.get_by_role("button", name="绑定域名").click()
    dialog = page.locator("#domain-dialog")
    expect(dialog.get_by_role("heading", level=2)).to_have_text("域名绑定设置")
    expect(dialog.locator(".domain-state")).to_have_text("未保存")
    expect(dialog.get_by_role("button", name="保存并应用")).to_be_visible()
    context.close()
