"""MCPServersPage in real Chromium against a served panel: the list with live status, why a
server is down, URL copy and actions; the form (the command one argument per line, checked
before saving, secret env); logs, tools, client configs, import, the Domain button; dialogs
that open clean; rows that show an unknown state while the panel is down and come back."""

import json
import sqlite3
import sys

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.helpers import TIME_SERVER
from tests.mcp.conftest import FAST

pytestmark = pytest.mark.browser

#: Stands in for the domain feature's dialog script, to see what the page asks of it.
DOMAIN_DIALOG = (
    "window.AI.openDomainDialog = function (o) { window.domainCalls = (window.domainCalls || []).concat([o]); };"
)


@pytest.fixture
def panel(served):
    return served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, **FAST})


def signed_in(browser, panel):
    """A browser page signed in to ``panel`` on the MCP page; close its context afterwards."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.route(
        "**/ai/static/domain-dialog.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=DOMAIN_DIALOG),
    )
    page.goto(panel.url + "/ai/mcp/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.goto(panel.url + "/ai/mcp/")
    return context, page


@pytest.fixture
def page(browser, panel):
    context, page = signed_in(browser, panel)
    yield page
    context.close()


def fill_command(page, argv):
    page.locator('#mcp-form textarea[name="command"]').fill("\n".join(argv))


def test_create_a_server_watch_it_run_and_use_every_view(panel, page, tmp_path):
    expect(page.get_by_role("heading", level=1)).to_have_text("MCP servers")
    expect(page.locator(".mcp-empty")).to_be_visible()
    expect(page.locator(".ai-live")).to_have_text("Live")

    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    expect(form.locator('input[name="autostart"]')).to_be_checked()  # on by default
    form.locator('input[name="name"]').fill("clock")
    fill_command(page, TIME_SERVER)
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
    assert server["autostart"] is True and server["command"] == TIME_SERVER
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
    copy_button = page.locator("#mcp-config-copy")
    expect(snippet).to_contain_text('"mcpServers"')
    page.select_option("#mcp-config-client", "claude-desktop")
    expect(snippet).to_contain_text("mcp-remote")
    copy_button.click()
    expect(copy_button).to_have_text("Copied")
    # "Copied" was about the Claude Desktop snippet: another client's is not copied yet.
    page.select_option("#mcp-config-client", "claude-code")
    expect(copy_button).to_have_text("Copy")
    expect(snippet).to_contain_text("claude mcp add --transport http clock")
    page.locator("#mcp-config-dialog .mcp-close").click()
    # Opened again, the dialog starts clean: the first client, its own snippet.
    page.locator('#mcp-rows button[data-action="config"]').click()
    expect(page.locator("#mcp-config-client")).to_have_value("cursor")
    expect(snippet).to_contain_text('"mcpServers"')
    expect(snippet).not_to_contain_text("claude mcp add")
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
    expect(server_row.locator(".mcp-by-hand")).to_have_text(
        "Stopped by hand: it stays stopped when the panel restarts."
    )
    page.screenshot(path=str(tmp_path / "mcp-page.png"), full_page=True)


def test_import_reports_each_entry_and_adds_the_good_ones(panel, page):
    page.click("#mcp-import-open")
    document = {
        "mcpServers": {
            "time": {"command": "uvx", "args": ["mcp-server-time"]},
            "remote": {"url": "https://mcp.example.test/mcp"},
            "bad": {"args": ["x"]},
        }
    }
    page.fill('#mcp-import-form textarea[name="document"]', json.dumps(document))
    page.click('#mcp-import-form button[type="submit"]')
    results = page.locator(".mcp-import-results li")
    expect(results).to_have_count(3)
    expect(page.locator(".mcp-import-ok")).to_have_count(2)
    expect(page.locator(".mcp-import-bad")).to_contain_text("bad:")
    page.locator("#mcp-import-dialog .mcp-close").click()
    expect(page.locator("#mcp-rows tr")).to_have_count(2)

    # Opened again, the dialog starts clean: no document, no results of the last import.
    page.click("#mcp-import-open")
    expect(page.locator('#mcp-import-form textarea[name="document"]')).to_have_value("")
    expect(results).to_have_count(0)
    page.fill('#mcp-import-form textarea[name="document"]', "{not json")
    page.click('#mcp-import-form button[type="submit"]')
    field_error = page.locator("#mcp-import-form .ai-field-error")
    expect(field_error).to_have_text("That is not valid JSON.")
    expect(page.locator("#mcp-import-form [data-form-error]")).to_have_text("Check these fields: Configuration (JSON).")
    page.locator("#mcp-import-dialog .mcp-close").click()
    page.click("#mcp-import-open")
    expect(field_error).to_have_count(0)
    expect(page.locator("#mcp-import-form [data-form-error]")).to_be_hidden()


def test_a_bad_form_names_its_fields_and_opens_clean_the_next_time(panel, page):
    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    form.locator('button[type="submit"]').click()  # nothing filled in
    expect(form.locator("[data-form-error]")).to_contain_text("Name (lower-case letters, digits, dashes)")
    expect(form.locator('input[name="name"]')).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".ai-field-error").first).to_be_visible()
    expect(page.locator("#mcp-form-dialog")).to_be_visible()
    # A pasted command line that cannot be split: the error stands beside that field.
    form.locator('input[name="command_line"]').fill("uvx 'unbalanced")
    page.click("#mcp-split")
    expect(form.locator('input[name="command_line"]')).to_have_attribute("aria-invalid", "true")
    expect(form.locator('.ai-field-error[data-field="command_line"]')).to_contain_text("Cannot split the command")
    assert panel.api("GET", "/mcp/servers").json() == {"servers": []}
    page.locator("#mcp-form-dialog .mcp-close").click()

    page.click("#mcp-add")
    expect(form.locator(".ai-field-error")).to_have_count(0)
    expect(form.locator("[data-form-error]")).to_be_hidden()
    expect(form.locator('input[name="command_line"]')).to_have_value("")
    # A line that splits fills in one argument per line, exactly as it will be stored.
    form.locator('input[name="command_line"]').fill("""python3 -c "print('a b')" """)
    page.click("#mcp-split")
    expect(form.locator('textarea[name="command"]')).to_have_value("python3\n-c\nprint('a b')")
    expect(form.locator(".mcp-command-check")).to_contain_text("Found: /")


def test_the_command_round_trips_exactly_through_the_form(panel, page):
    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    form.locator('input[name="name"]').fill("script")
    fill_command(page, ["python3", "-c", "print('a b')"])
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).to_be_hidden()
    [made] = panel.api("GET", "/mcp/servers").json()["servers"]
    assert made["command"] == ["python3", "-c", "print('a b')"]
    # The row shows it as a shell would read it, without quoting soup.
    expect(page.locator("#mcp-rows .mcp-source")).to_have_text("python3 -c \"print('a b')\"")
    page.locator('#mcp-rows button[data-action="edit"]').click()
    expect(form.locator('textarea[name="command"]')).to_have_value("python3\n-c\nprint('a b')")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).to_be_hidden()
    assert panel.api("GET", f"/mcp/servers/{made['id']}").json()["command"] == made["command"]

    # Spaces, quotes, a dollar and an empty argument last: each line as it is, no quoting.
    argv = [TIME_SERVER[0], "--local-timezone", "UTC", "a b", "it's", 'say "hi"', "$HOME", ""]
    spaced = panel.api("POST", "/mcp/servers", json={"name": "spaced", "command": argv}).json()
    # An argument with a line break cannot be a line: shown read-only and kept as it is.
    multi = ["python3", "-c", "import sys\nprint(sys.argv)"]
    multiline = panel.api("POST", "/mcp/servers", json={"name": "zz-multi", "command": multi}).json()
    page.reload()
    page.locator(f'#mcp-rows tr[data-id="{spaced["id"]}"] button[data-action="edit"]').click()
    expect(form.locator('textarea[name="command"]')).to_have_value("\n".join(argv) + "\n")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).to_be_hidden()
    assert panel.api("GET", f"/mcp/servers/{spaced['id']}").json()["command"] == argv
    page.locator(f'#mcp-rows tr[data-id="{multiline["id"]}"] button[data-action="edit"]').click()
    expect(form.locator('textarea[name="command"]')).to_have_js_property("readOnly", True)
    expect(form.locator(".mcp-command-kept")).to_contain_text("line break")
    form.locator('input[name="cwd"]').fill("/tmp")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).to_be_hidden()
    kept = panel.api("GET", f"/mcp/servers/{multiline['id']}").json()
    assert kept["command"] == multi and kept["cwd"] == "/tmp"


def test_a_missing_program_is_a_warning_before_saving_and_an_error_at_once(panel, page, tmp_path):
    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    form.locator('input[name="name"]').fill("needs-uv")
    fill_command(page, ["uvx", "mcp-server-time"])
    page.click("#mcp-env-add")  # the server's own PATH, where uvx is not
    form.locator(".mcp-env-key").fill("PATH")
    form.locator(".mcp-env-value").fill(str(tmp_path))
    form.locator('button[type="submit"]').click()
    check = form.locator(".mcp-command-check")
    expect(check).to_contain_text("uvx is not installed")
    expect(check).to_contain_text("Install uv, which brings uvx")
    expect(page.locator("#mcp-save")).to_have_text("Save anyway")
    assert panel.api("GET", "/mcp/servers").json() == {"servers": []}  # not saved yet
    page.locator("#mcp-save").click()
    expect(page.locator("#mcp-form-dialog")).to_be_hidden()

    row = page.locator("#mcp-rows tr").first
    row.locator('button[data-action="start"]').click()
    expect(row.locator(".mcp-status")).to_have_text("Error")
    expect(row.locator(".mcp-reason")).to_contain_text("uvx is not installed")
    expect(row.locator(".mcp-restarts")).to_have_count(0)


def test_the_page_speaks_chinese(panel, page, tmp_path):
    made = panel.api(
        "POST",
        "/mcp/servers",
        json={"name": "needs-node", "command": ["npx", "-y", "x"], "env": [{"key": "PATH", "value": str(tmp_path)}]},
    ).json()
    panel.api("POST", f"/mcp/servers/{made['id']}/start")
    page.click('a[data-lang="zh-CN"]')
    expect(page.get_by_role("heading", level=1)).to_have_text("MCP 服务器管理")
    expect(page.locator("#mcp-add")).to_have_text("添加服务器")
    # What the server says about a server comes in Chinese too.
    expect(page.locator("#mcp-rows .mcp-status")).to_have_text("错误")
    expect(page.locator("#mcp-rows .mcp-reason")).to_contain_text("未安装 npx")
    expect(page.locator("#mcp-rows .mcp-reason")).to_contain_text("请安装 Node.js")
    page.click("#mcp-add")
    page.locator('#mcp-form button[type="submit"]').click()
    expect(page.locator("#mcp-form [data-form-error]")).to_contain_text("请检查这些字段")


@pytest.mark.server
def test_rows_say_why_a_server_is_down_and_are_unknown_while_the_panel_is(served, browser):
    """A panel with a backoff long enough to read the row; stopped and started again while the
    page stays open."""
    panel = served(
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            **FAST,
            "OPEN1PANEL_AI_MCP_BACKOFF": "2",
            "OPEN1PANEL_AI_MCP_BACKOFF_MAX": "2",
            "OPEN1PANEL_AI_MCP_TRIES": "2",
        }
    )
    clock = panel.api("POST", "/mcp/servers", json={"name": "clock", "command": TIME_SERVER}).json()
    broken = panel.api(
        "POST",
        "/mcp/servers",
        json={
            "name": "broken",
            "command": [
                sys.executable,
                "-c",
                "import sys; print('loading config', file=sys.stderr); sys.exit('missing API key: set FOO_KEY')",
            ],
        },
    ).json()
    context, page = signed_in(browser, panel)
    try:
        clock_row = page.locator(f'#mcp-rows tr[data-id="{clock["id"]}"]')
        broken_row = page.locator(f'#mcp-rows tr[data-id="{broken["id"]}"]')
        clock_row.locator('button[data-action="start"]').click()
        broken_row.locator('button[data-action="start"]').click()
        # While it backs off, the row says why in the child's own words, and counts in English.
        expect(broken_row.locator(".mcp-status")).to_have_text("Restarting", timeout=15000)
        expect(broken_row.locator(".mcp-restarts")).to_have_text("Restarted once")
        reason = broken_row.locator(".mcp-reason")
        expect(reason).to_have_text("It stopped. Its last output:\nloading config\nmissing API key: set FOO_KEY")
        expect(broken_row.locator(".mcp-restarts")).to_have_text("Restarted 2 times", timeout=15000)
        expect(broken_row.locator(".mcp-status")).to_have_text("Error", timeout=15000)
        expect(reason).to_contain_text("missing API key: set FOO_KEY")
        expect(clock_row.locator(".mcp-status")).to_have_text("Running", timeout=30000)

        panel.stop()
        # Nothing is known while the panel is down: no row claims to be running.
        expect(page.locator("#ai-connection")).to_be_visible(timeout=15000)
        expect(clock_row.locator(".mcp-status")).to_have_text("Unknown")
        expect(clock_row).to_have_attribute("data-status", "unknown")
        clock_row.locator('button[data-action="stop"]').click()
        expect(page.locator("#mcp-banner")).to_contain_text("cannot be reached")

        panel.start()
        # Back: the list is read again, the outage's error is gone, and the server that was
        # running when the panel stopped runs again without anyone starting it.
        expect(page.locator("#ai-connection")).to_be_hidden(timeout=30000)
        expect(page.locator("#mcp-banner")).to_be_hidden()
        expect(clock_row.locator(".mcp-status")).to_have_text("Running", timeout=30000)
        assert panel.api("GET", f"/mcp/servers/{clock['id']}").json()["stopped_by_hand"] is False
    finally:
        context.close()


def test_the_sandbox_profile_is_set_in_the_form_and_the_isolation_shown_on_the_row(panel, page, tmp_path):
    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    form.locator('input[name="name"]').fill("boxed")
    fill_command(page, TIME_SERVER)
    form.locator('textarea[name="profile.read"]').fill(str(panel.data_dir))
    form.locator('input[name="profile.memory_mb"]').fill("512")
    form.locator('select[name="sessions"]').select_option("per_client")
    form.locator('button[type="submit"]').click()
    # The panel's own folder cannot be granted: the field says so, and nothing is saved.
    expect(form.locator("[data-form-error]")).to_contain_text("May read (one path a line)")
    expect(form.locator('.ai-field-error[data-field="profile.read"]')).to_contain_text("data folder")
    assert panel.api("GET", "/mcp/servers").json()["servers"] == []

    granted = tmp_path / "granted"  # (tmp_path itself holds the panel's data folder)
    form.locator('textarea[name="profile.read"]').fill(f"{granted}\n{granted}/./docs/")
    form.locator('button[type="submit"]').click()
    row = page.locator('#mcp-rows tr:has(strong:text-is("boxed"))')
    row.get_by_role("button", name="Start").click()
    expect(row.locator(".mcp-status")).to_have_text("Running", timeout=30000)
    isolation = row.locator(".mcp-isolation")
    expect(isolation.locator("summary")).to_have_text("Sandboxed")
    isolation.locator("summary").click()
    expect(isolation.locator('li[data-layer="filesystem"]')).to_have_text("File system: in effect")

    row.get_by_role("button", name="Edit").click()
    expect(form.locator('textarea[name="profile.read"]')).to_have_value(f"{granted}\n{granted}/docs")
    expect(form.locator('input[name="profile.memory_mb"]')).to_have_value("512")
    expect(form.locator('select[name="sessions"]')).to_have_value("per_client")
    [server] = panel.api("GET", "/mcp/servers").json()["servers"]
    assert server["sessions"] == "per_client"
    config = json.loads((panel.data_dir / "mcp" / "run" / f"{server['id']}.json").read_text())
    assert config["sessions"] == "per_client"  # what the bridge runs by
    warning = form.locator(".mcp-isolation-warning")
    expect(warning).to_be_hidden()
    form.locator('select[name="profile.isolation"]').select_option("none")
    expect(warning).to_be_visible()
    page.locator("#mcp-form-dialog .mcp-close").click()
    # Opened again for a new server, the form is back to the defaults.
    page.click("#mcp-add")
    expect(form.locator('select[name="profile.isolation"]')).to_have_value("sandbox")
    expect(form.locator('textarea[name="profile.read"]')).to_have_value("")
    expect(warning).to_be_hidden()


def stored_headers(panel, name):
    """The headers the panel keeps for server `name`, values included (read from its database,
    as no API answer holds a value)."""
    db = sqlite3.connect(panel.data_dir / "open1panel-ai.sqlite3")
    try:
        [definition] = db.execute("SELECT definition FROM mcp_servers WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    return json.loads(definition)["headers"]


def test_a_remote_server_gets_headers_whose_values_are_write_only(panel, page):
    page.click("#mcp-add")
    form = page.locator("#mcp-form")
    headers = form.locator(".mcp-headers")
    expect(headers).to_be_hidden()  # a command server has no headers
    form.locator('input[name="name"]').fill("remote")
    form.locator('input[name="source"][value="url"]').check()
    expect(headers).to_be_visible()
    form.locator('input[name="url"]').fill("https://mcp.example.test/mcp")
    form.locator('input[name="autostart"]').uncheck()
    rows = headers.locator(".mcp-header-row")
    for name, value in (("X-Api-Key", "hdr-page-secret"), ("X-Team", "blue")):
        page.click("#mcp-header-add")
        rows.last.get_by_label("Header name").fill(name)
        expect(rows.last.get_by_label("Header value")).to_have_attribute("type", "password")
        rows.last.get_by_label("Header value").fill(value)
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).not_to_have_attribute("open", "")
    [server] = panel.api("GET", "/mcp/servers").json()["servers"]
    assert server["headers"] == [{"name": "X-Api-Key"}, {"name": "X-Team"}]
    assert stored_headers(panel, "remote") == [
        {"name": "X-Api-Key", "value": "hdr-page-secret"},
        {"name": "X-Team", "value": "blue"},
    ]

    # Edited, the names come back without their values; an empty value keeps the stored one.
    page.locator('#mcp-rows button[data-action="edit"]').click()
    expect(rows).to_have_count(2)
    expect(rows.first.get_by_label("Header name")).to_have_value("X-Api-Key")
    expect(rows.first.get_by_label("Header value")).to_have_value("")
    expect(rows.first.get_by_label("Header value")).to_have_attribute("placeholder", "(kept, hidden)")
    assert "hdr-page-secret" not in page.content()
    rows.nth(1).get_by_role("button", name="Remove header").click()
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).not_to_have_attribute("open", "")
    assert stored_headers(panel, "remote") == [{"name": "X-Api-Key", "value": "hdr-page-secret"}]

    # Pointed at another host, a stored value is not sent there: it must be entered again.
    page.locator('#mcp-rows button[data-action="edit"]').click()
    form.locator('input[name="url"]').fill("https://other.example.test/mcp")
    form.locator('button[type="submit"]').click()
    expect(form.locator('.ai-field-error[data-field="headers.0.value"]')).to_contain_text("other.example.test")
    assert stored_headers(panel, "remote") == [{"name": "X-Api-Key", "value": "hdr-page-secret"}]
    rows.first.get_by_label("Header value").fill("hdr-other-secret")
    form.locator('button[type="submit"]').click()
    expect(page.locator("#mcp-form-dialog")).not_to_have_attribute("open", "")
    assert stored_headers(panel, "remote") == [{"name": "X-Api-Key", "value": "hdr-other-secret"}]
    assert panel.api("GET", "/mcp/servers").json()["servers"][0]["url"] == "https://other.example.test/mcp"
