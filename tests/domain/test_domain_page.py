"""The Domains page and DomainConfigDialog in real Chromium, opened from an Ollama endpoint
row, an MCP server row and the Domains page, publishing through a real nginx."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.domain.certificates import self_signed
from tests.domain.conftest import CaddyServer
from tests.test_pages import sign_in

pytestmark = pytest.mark.browser

DOMAIN = "ollama.example.test"
PAGE_TOKEN = "page-test-token-0123456789abcdefghij"


@pytest.fixture
def panel_with_nginx(served, nginx, ollama, tmp_path):
    env = {"OPEN1PANEL_AI_TOKEN": PAGE_TOKEN, "OLLAMA_HOST": ollama.url, "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx"}
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
    assert nginx.get(DOMAIN, "/api/version", headers={"Authorization": f"Bearer {token}"}).json() == {
        "version": "0.12.6"
    }
    page.screenshot(path=str(tmp_path / "domain-dialog.png"), full_page=True)

    # Opened again from the row, it shows the binding, without the token.
    dialog.get_by_role("button", name="Close").click()
    page.locator("#ollama-endpoints button[data-action=domain]").first.click()
    expect(page.locator("#domain-dialog .domain-state")).to_have_text("Online")
    expect(page.locator("#domain-dialog #domain-field-domains")).to_have_value(DOMAIN)
    expect(page.locator("#domain-dialog .domain-token")).to_be_hidden()

    # A new token nginx does not take (another site's certificate became unloadable): the
    # dialog says the old token is still valid and why, and it is.
    certificate, key = self_signed(tmp_path / "tls", "other.example.test")
    other = panel.api(
        "POST",
        "/domains",
        json={
            "domains": ["other.example.test"],
            "target": {"kind": "ollama", "name": "local"},
            "auth": {"mode": "none"},
            "tls": {"mode": "existing", "certificate": str(certificate), "key": str(key)},
        },
    )
    assert other.status_code == 201, other.text
    certificate.write_text("not a certificate\n")
    page.locator("#domain-dialog").get_by_role("button", name="New token").click()
    expect(page.locator("#domain-dialog .domain-form-error")).to_contain_text(
        "The token was not changed: the old token is still valid, because nginx did not take the new one:"
    )
    expect(page.locator("#domain-dialog .domain-state")).to_have_text("Online")
    expect(page.locator("#domain-dialog .domain-token")).to_be_hidden()
    assert nginx.get(DOMAIN, "/api/version", headers={"Authorization": f"Bearer {token}"}).status_code == 200


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
    # A file that does not exist is refused beside its field, and nothing is saved.
    expect(dialog.locator('[data-field="tls.key"] .domain-field-error')).to_have_text(f"{missing} does not exist.")
    expect(dialog.locator(".domain-form-error")).to_contain_text("Key file (PEM)")
    expect(dialog.locator(".domain-state")).to_have_text("Online")

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    dialog.locator("#domain-field-tls-certificate").fill(str(garbage))
    dialog.locator("#domain-field-tls-key").fill(str(garbage))
    dialog.get_by_role("button", name="Save and apply").click()
    # One nginx refuses: saved in error, and the page says the proxy serves what it served.
    expect(dialog.locator(".domain-state")).to_have_text("Error")
    expect(dialog.locator(".domain-error")).to_contain_text(str(garbage))
    expect(dialog.locator(".domain-form-error")).to_contain_text("serves the binding as it was before")
    expect(page.locator("#domain-bindings tbody tr")).to_have_attribute("data-state", "error")
    assert nginx.get(DOMAIN, "/api/version").status_code == 200  # the previous site serves

    page.once("dialog", lambda confirm: confirm.accept())
    dialog.get_by_role("button", name="Remove binding").click()
    expect(page.locator("#domain-empty")).to_be_visible()
    assert nginx.get(DOMAIN, "/api/version").status_code == 421


def test_the_domains_page_follows_bindings_made_elsewhere_without_a_reload(panel_with_nginx, page):
    panel = panel_with_nginx
    sign_in(page, panel)
    page.goto(panel.url + "/ai/domains/")
    expect(page.locator("#domain-empty")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("data-connection", "up")

    created = panel.api(
        "POST",
        "/domains",
        json={"domains": [DOMAIN], "auth": {"mode": "none"}, "target": {"kind": "ollama", "name": "local"}},
    )
    assert created.status_code == 201, created.text
    row = page.locator(f'#domain-bindings tr[data-binding="{created.json()["id"]}"]')
    expect(row).to_have_attribute("data-state", "online")
    expect(row).to_contain_text(DOMAIN)

    assert panel.api("DELETE", f"/domains/{created.json()['id']}").status_code == 204
    expect(row).to_have_count(0)
    expect(page.locator("#domain-empty")).to_be_visible()


def test_subscribers_of_the_domain_topic_hear_of_a_binding_by_its_id_only(nginx_panel):
    client = nginx_panel.host.socketio.test_client(nginx_panel.host.app, namespace="/ai", auth={"token": TOKEN})
    reply = client.emit("subscribe", {"topic": "domain"}, namespace="/ai", callback=True)
    assert reply == {"ok": True, "topic": "domain"}

    status, created = nginx_panel.api(
        "post",
        "/domains",
        json={"domains": [DOMAIN], "auth": {"mode": "bearer"}, "target": {"kind": "ollama", "name": "local"}},
    )
    assert status == 201, created
    events = [e["args"][0] for e in client.get_received("/ai") if e["name"] == "domain"]
    assert events and all(e == {"type": "changed", "id": created["id"]} for e in events)
    assert created["token"] not in repr(events)

    assert nginx_panel.api("delete", f"/domains/{created['id']}")[0] == 204
    events = [e["args"][0] for e in client.get_received("/ai") if e["name"] == "domain"]
    assert events == [{"type": "removed", "id": created["id"]}]


def test_a_stopped_nginx_is_a_warning_that_says_what_to_check_and_the_preview_still_works(
    panel_with_nginx, nginx, page
):
    panel = panel_with_nginx
    created = panel.api(
        "POST",
        "/domains",
        json={"domains": [DOMAIN], "auth": {"mode": "none"}, "target": {"kind": "ollama", "name": "local"}},
    ).json()
    nginx.stop()
    sign_in(page, panel)
    page.goto(panel.url + "/ai/domains/")
    pid_file = str(nginx.root / "nginx.pid")
    reason = f"nginx is not running: no live nginx process has the pid written in {pid_file}."
    expect(page.locator("#domain-provider")).to_have_text(f"No reverse proxy can be used: {reason}")
    warning = page.locator("#domain-proxy")
    expect(warning).to_be_visible()
    expect(warning.get_by_role("heading", level=2)).to_have_text(
        "No reverse proxy can apply changes now, so bindings cannot be created or changed; removing one still works."
    )
    expect(warning.locator(".domain-proxy-reason")).to_have_text(f"nginx: {reason}")
    expect(warning.locator(".domain-proxy-fix")).to_contain_text("Start nginx")
    # Which config and pid file the panel checks, and the setting that changes each.
    rows = warning.locator(".domain-proxy-settings tbody tr")
    expect(rows.filter(has_text="tested with nginx -t")).to_contain_text(str(nginx.conf))
    expect(rows.filter(has_text="tested with nginx -t")).to_contain_text("OPEN1PANEL_AI_NGINX_CONF")
    expect(rows.filter(has_text="pid file")).to_contain_text(pid_file)
    expect(rows.filter(has_text="pid file")).to_contain_text("the pid directive of the main config")
    expect(rows.filter(has_text="Sites folder")).to_contain_text("OPEN1PANEL_AI_NGINX_SITES_DIR")
    expect(warning).to_contain_text("docs/standalone.md")
    # "Bind a domain" is disabled, and says why.
    bind = page.get_by_role("button", name="Bind a domain")
    expect(bind).to_be_disabled()
    expect(bind).to_have_accessible_description(
        "Binding a domain needs a reverse proxy that can apply changes; see the warning above."
    )
    row = page.locator(f'tr[data-binding="{created["id"]}"]')
    expect(row).to_have_attribute("data-state", "online")

    # The dialog says so too and Save waits; the preview needs no running nginx.
    row.get_by_role("button", name="Edit").click()
    dialog = page.locator("#domain-dialog")
    expect(dialog.locator(".domain-proxy-down")).to_have_text(f"The reverse proxy cannot apply changes now: {reason}")
    expect(dialog.get_by_role("button", name="Save and apply")).to_be_disabled()
    expect(dialog.locator(".domain-preview")).to_contain_text(f"server_name {DOMAIN};")
    dialog.locator("#domain-field-domains").fill(f"{DOMAIN}\nmore.example.test")
    expect(dialog.locator(".domain-preview")).to_contain_text(f"server_name {DOMAIN} more.example.test;")
    dialog.get_by_role("button", name="Close").click()

    nginx.start()
    page.get_by_role("button", name="Check again").click()
    expect(warning).to_be_hidden()
    expect(bind).to_be_enabled()
    expect(page.locator("#domain-provider")).to_have_text("Published through nginx.")


@pytest.fixture
def tcp_caddy(tmp_path):
    """A Caddy whose admin API is on a loopback port, where every local user reaches it."""
    server = CaddyServer(tmp_path / "tcp-caddy").start()
    yield server
    server.stop()


def test_a_caddy_admin_api_on_tcp_is_a_warning_and_a_removal_while_caddy_is_down_shows_its_note(
    served, tcp_caddy, ollama, page
):
    caddy = tcp_caddy
    panel = served(
        env={
            "OPEN1PANEL_AI_TOKEN": PAGE_TOKEN,
            "OLLAMA_HOST": ollama.url,
            "OPEN1PANEL_AI_DOMAIN_PROVIDER": "caddy",
            "OPEN1PANEL_AI_CADDY_ADMIN": caddy.admin,
        }
    )
    headers = {"Authorization": f"Bearer {panel.token}"}
    created = httpx.post(
        panel.url + "/api/v2/ai/domains",
        headers=headers,
        json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "auth": {"mode": "none"}},
    )
    assert created.status_code == 201, created.text
    sign_in(page, panel)
    page.goto(panel.url + "/ai/domains/")
    expect(page.locator("#domain-provider")).to_have_text("Published through caddy.")
    warnings = page.locator("#domain-warnings")
    expect(warnings.get_by_role("heading", level=2)).to_have_text("Warning about caddy")
    expect(warnings.locator(".domain-warning-text")).to_have_text(
        f"Caddy's admin API is on TCP ({caddy.admin}) and has no authentication: every local user "
        "can read the bindings' bearer tokens and password hashes in its config, or change its routes."
    )
    expect(warnings.locator(".domain-warning-fix")).to_contain_text("unix//run/caddy/admin.sock")
    expect(warnings.locator(".domain-warning-fix")).to_contain_text("OPEN1PANEL_AI_CADDY_ADMIN")
    expect(page.get_by_role("button", name="Bind a domain")).to_be_enabled()  # a warning only

    caddy.stop()
    page.reload()
    expect(page.locator("#domain-provider")).to_contain_text("does not answer")
    expect(warnings).to_be_hidden()  # about the proxy in use: none is now
    page.locator("#domain-bindings tbody tr").get_by_role("button", name="Edit").click()
    page.once("dialog", lambda confirm: confirm.accept())
    page.locator("#domain-dialog").get_by_role("button", name="Remove binding").click()
    expect(page.locator("#domain-empty")).to_be_visible()
    banner = page.locator("#domain-banner")
    expect(banner).to_contain_text(f"{DOMAIN}: caddy could not take this binding out while it is down")
    expect(banner).to_contain_text("taken out once caddy answers again")

    route = f"/id/open1panel-ai-{created.json()['id']}"
    # Caddy comes back on the config it saved, which still has the route; the panel may take it
    # out the moment Caddy answers, so the route is looked for in the saved config, not asked.
    autosave = caddy.root / "config" / "caddy" / "autosave.json"
    assert f'"open1panel-ai-{created.json()["id"]}"' in autosave.read_text()
    caddy.start(resume=True)
    assert httpx.get(panel.url + "/api/v2/ai/status", headers=headers).status_code == 200
    page.reload()
    expect(page.locator("#domain-empty")).to_be_visible()  # the list has loaded
    expect(banner).to_be_hidden()
    assert caddy.admin_request("GET", route).status_code == 404


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
    unauthenticated = httpx.post(
        f"http://127.0.0.1:{nginx.http_port}/mcp", headers={"Host": "time.example.test"}, json={}, timeout=10
    )
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
