"""MCPServersPage in real Chromium against a served panel: the list with live status, URL copy
and actions; the form with secret env; logs, tools, client configs, import, the Domain button."""

import json
import shlex

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import FAST

pytestmark = pytest.mark.browser

#: Stands in for the domain feature's dialog script, to see what the page asks of it.
DOMAIN_DIALOG = "window.AI.openDomainDialog = function (o) { window.domainCalls = (window.domainCalls || []).concat([o]); };"


@pytest.fixture
def panel(served):
    return served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, **FAST})


@pytest.fixture
def page(browser, panel):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.route("**/ai/static/domain-dialog.js",
               lambda route: route.fulfill(status=200, content_type="text/javascript", body=DOMAIN_DIALOG))
    page.goto(panel.url + "/ai/mcp/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.goto(panel.url + "/ai/mcp/")
    yield page
    context.close()


def test_create_a_server_watch_it_run_and_use_every_view(panel, page, tmp_path):
    expect(page.get_by_role("heading", level=1)).to_have_text("MCP servers")
    expect(page.locator(".mcp-empty")).to_be_visible()
    expect(page.locator(".ai-live")).to_have_text("Live")

    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    form.locator('input[name="name"]').fill("clock")
    form.locator('input[name="command"]').fill(shlex.join(TIME_SERVER))
    page.click("#mcp-env-add")
    row = page.locator(".mcp-env-row").first
    row.locator(".mcp-env-key").fill("API_KEY")
    row.locator(".mcp-env-secret").check()
    expect(row.locator(".mcp-env-value")).to_have_attribute("type", "password")
    row.locator(".mcp-env-value").fill("sk-page-secret")
    form.locator('button[type="submit"]').click()

    server_row = page.locator("#mcp-rows tr").first
    expect(server_row.locator("strong")).to_have_text("clock")
    page.locator('#mcp-rows button[data-action="start"]').click()
    expect(server_row.locator(".mcp-status")).to_have_text("Running", timeout=30000)
    [server] = panel.api("GET", "/mcp/servers").json()["servers"]
    expect(server_row.locator(".mcp-url").first).to_have_text(server["endpoints"]["streamable_http"])
    assert "sk-page-secret" not in page.content()

    # Edit: the secret is masked, never filled in.
    page.locator('#mcp-rows button[data-action="edit"]').click()
    value = page.locator(".mcp-env-row .mcp-env-value").first
    expect(value).to_have_value("")
    expect(value).to_have_attribute("placeholder", "(kept, hidden)")
    page.locator("#mcp-form-dialog .mcp-close").click()

    page.locator('#mcp-rows button[data-action="tools"]').click()
    expect(page.locator("#mcp-tools-dialog .mcp-tool strong").first).to_have_text("get_current_time")
    expect(page.locator("#mcp-tools-dialog .mcp-tools-state")).to_have_text("2 tools")
    page.locator("#mcp-tools-dialog .mcp-close").click()

    page.locator('#mcp-rows button[data-action="config"]').click()
    snippet = page.locator(".mcp-config-snippet")
    expect(snippet).to_contain_text('"mcpServers"')
    page.select_option("#mcp-config-client", "claude-desktop")
    expect(snippet).to_contain_text("mcp-remote")
    page.select_option("#mcp-config-client", "claude-code")
    expect(snippet).to_contain_text("claude mcp add --transport http clock")
    page.locator("#mcp-config-dialog .mcp-close").click()

    page.locator('#mcp-rows button[data-action="logs"]').click()
    expect(page.locator(".mcp-log-lines")).to_contain_text("serving on 127.0.0.1")
    # New lines arrive live: a restart (asked for elsewhere) writes more.
    assert panel.api("POST", f"/mcp/servers/{server['id']}/restart").status_code == 200
    expect(page.locator(".mcp-log-lines")).to_contain_text("supervisor: stopped", timeout=15000)
    page.locator("#mcp-logs .mcp-close").click()
    expect(server_row.locator(".mcp-status")).to_have_text("Running", timeout=30000)

    page.locator('#mcp-rows button[data-action="domain"]').click()
    assert page.evaluate("window.domainCalls") == [{"kind": "mcp", "target": server["id"]}]

    page.locator('#mcp-rows button[data-action="stop"]').click()
    expect(server_row.locator(".mcp-status")).to_have_text("Stopped", timeout=15000)
    page.screenshot(path=str(tmp_path / "mcp-page.png"), full_page=True)


def test_import_reports_each_entry_and_adds_the_good_ones(panel, page):
    page.click("#mcp-import-open")
    document = {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]},
                               "remote": {"url": "https://mcp.example.test/mcp"},
                               "bad": {"args": ["x"]}}}
    page.fill('#mcp-import-form textarea[name="document"]', json.dumps(document))
    page.click('#mcp-import-form button[type="submit"]')
    results = page.locator(".mcp-import-results li")
    expect(results).to_have_count(3)
    expect(page.locator(".mcp-import-ok")).to_have_count(2)
    expect(page.locator(".mcp-import-bad")).to_contain_text("bad:")
    page.locator("#mcp-import-dialog .mcp-close").click()
    expect(page.locator("#mcp-rows tr")).to_have_count(2)

    page.click("#mcp-import-open")
    page.fill('#mcp-import-form textarea[name="document"]', "{not json")
    page.click('#mcp-import-form button[type="submit"]')
    expect(page.locator(".mcp-import-bad")).to_have_text("That is not valid JSON.")


def test_a_bad_form_shows_the_field_error_and_keeps_the_dialog_open(panel, page):
    page.click("#mcp-add")
    page.locator('#mcp-form input[name="name"]').fill("ok-name")
    page.locator('#mcp-form input[name="command"]').fill("'unbalanced")
    page.locator('#mcp-form button[type="submit"]').click()
    expect(page.locator(".mcp-form-error")).to_contain_text("command")
    expect(page.locator("#mcp-form-dialog")).to_be_visible()
    assert panel.api("GET", "/mcp/servers").json() == {"servers": []}


def test_editing_keeps_arguments_with_spaces_and_quotes(panel, page):
    argv = [TIME_SERVER[0], "--local-timezone", "UTC", "a b", "it's", 'say "hi"', ""]
    made = panel.api("POST", "/mcp/servers", json={"name": "spaced", "command": argv}).json()
    page.reload()
    page.locator('#mcp-rows button[data-action="edit"]').click()
    expect(page.locator('#mcp-form input[name="command"]')).to_have_value(shlex.join(argv))
    page.locator('#mcp-form button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).to_be_hidden()
    assert panel.api("GET", f"/mcp/servers/{made['id']}").json()["command"] == argv


def test_the_page_speaks_chinese(panel, page):
    page.click('a[data-lang="zh-CN"]')
    expect(page.get_by_role("heading", level=1)).to_have_text("MCP 服务器管理")
    expect(page.locator("#mcp-add")).to_have_text("添加服务器")
