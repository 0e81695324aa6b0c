"""Issue 11, finding 5: write-only secrets could be read back.

``PUT {"env": [{"key": "K", "secret": false}]}`` kept the stored secret value and answered it
in plain text. Now a stored secret value is kept only while its entry stays secret: turning it
non-secret without a value is a 400 naming the field, and nothing changes. A remote server's
header values are kept only while its URL keeps its origin (scheme, host and port): a change
of host without the values again is a 400 naming the field, so values meant for one host are
never sent to another.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN

SECRET = "sk-stored-secret-value"
HEADER = "hdr-stored-secret-value"


def stored(data_dir, server_id):
    db = sqlite3.connect(data_dir / "open1panel-ai.sqlite3")
    try:
        row = db.execute("SELECT definition FROM mcp_servers WHERE id = ?", (server_id,)).fetchone()
    finally:
        db.close()
    return json.loads(row[0])


def test_a_secret_turned_non_secret_without_its_value_is_refused_and_never_shown(api, data_dir):
    status, server = api(
        "post",
        "/mcp/servers",
        json={
            "name": "keyed",
            "command": ["true"],
            "autostart": False,
            "env": [{"key": "K", "value": SECRET, "secret": True}, {"key": "PLAIN", "value": "p"}],
        },
    )
    assert status == 201, server
    path = f"/mcp/servers/{server['id']}"

    status, body = api("put", path, json={"env": [{"key": "K", "secret": False}]})
    assert status == 400, body
    assert SECRET not in json.dumps(body)
    assert list(body["error"]["details"]["fields"]) == ["env.0.value"]
    assert "K" in body["error"]["details"]["fields"]["env.0.value"][0]
    # Nothing changed: still secret, still stored, still not shown anywhere.
    assert stored(data_dir, server["id"])["env"][0] == {"key": "K", "value": SECRET, "secret": True}
    for answer in (api("get", path)[1], api("get", "/mcp/servers")[1]):
        assert SECRET not in json.dumps(answer)
    assert api("get", path)[1]["env"][0] == {"key": "K", "value": None, "secret": True}

    # Left out while it stays secret: kept. A non-secret entry left out keeps its (public) value.
    status, body = api("put", path, json={"env": [{"key": "K", "secret": True}, {"key": "PLAIN"}]})
    assert status == 200, body
    assert body["env"] == [{"key": "K", "value": None, "secret": True}, {"key": "PLAIN", "value": "p", "secret": False}]
    assert stored(data_dir, server["id"])["env"][0]["value"] == SECRET

    # Made non-secret with a value given again: the new value, shown; the old one is gone.
    status, body = api("put", path, json={"env": [{"key": "K", "value": "now-public", "secret": False}]})
    assert status == 200, body
    assert body["env"] == [{"key": "K", "value": "now-public", "secret": False}]
    assert SECRET not in json.dumps(stored(data_dir, server["id"]))


def test_header_values_must_be_entered_again_when_the_url_changes_host(api, data_dir):
    status, server = api(
        "post",
        "/mcp/servers",
        json={
            "name": "remote",
            "url": "https://mcp.example.test/mcp",
            "autostart": False,
            "headers": [{"name": "Authorization", "value": HEADER}, {"name": "X-Team", "value": "t1"}],
        },
    )
    assert status == 201, server
    path = f"/mcp/servers/{server['id']}"

    for url in (
        "https://attacker.example.test/mcp",
        "http://mcp.example.test/mcp",
        "https://mcp.example.test:8443/mcp",
        "https://user@other.example.test/mcp",
    ):
        # The headers left out: the field is named.
        status, body = api("put", path, json={"url": url})
        assert status == 400, (url, body)
        assert list(body["error"]["details"]["fields"]) == ["headers"]
        # Sent without their values: each value is named.
        status, body = api(
            "put", path, json={"url": url, "headers": [{"name": "Authorization"}, {"name": "X-Team", "value": "t2"}]}
        )
        assert status == 400, (url, body)
        assert list(body["error"]["details"]["fields"]) == ["headers.0.value"]
        assert HEADER not in json.dumps(body)
        definition = stored(data_dir, server["id"])
        assert definition["url"] == "https://mcp.example.test/mcp"
        assert definition["headers"][0] == {"name": "Authorization", "value": HEADER}

    # The same origin keeps the stored values (another path, the host in capitals, port 443 written).
    for url in ("https://mcp.example.test/v2/mcp", "https://MCP.example.test:443/mcp"):
        status, body = api("put", path, json={"url": url})
        assert status == 200, (url, body)
        assert stored(data_dir, server["id"])["headers"][0]["value"] == HEADER

    # Another host with the values entered again, or with no headers at all, is taken.
    status, body = api(
        "put",
        path,
        json={"url": "https://new.example.test/mcp", "headers": [{"name": "Authorization", "value": "Bearer new"}]},
    )
    assert status == 200, body
    assert stored(data_dir, server["id"])["headers"] == [{"name": "Authorization", "value": "Bearer new"}]
    status, body = api("put", path, json={"url": "https://third.example.test/mcp", "headers": []})
    assert status == 200 and body["headers"] == []


@pytest.mark.browser
def test_the_page_asks_for_the_header_values_again_when_the_url_changes_host(served, browser):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN})
    server = panel.api(
        "POST",
        "/mcp/servers",
        json={
            "name": "remote",
            "url": "https://mcp.example.test/mcp",
            "autostart": False,
            "headers": [{"name": "Authorization", "value": HEADER}],
        },
    ).json()
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    try:
        page.goto(panel.url + "/ai/mcp/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.goto(panel.url + "/ai/mcp/")
        page.locator(f'#mcp-rows tr[data-id="{server["id"]}"] button[data-action="edit"]').click()
        form = page.locator("#mcp-form")
        # The stored header is listed by name; its value is never shown.
        name = form.locator(".mcp-header-name")
        value = form.locator(".mcp-header-value")
        expect(name).to_have_value("Authorization")
        expect(value).to_have_value("")
        expect(value).to_have_attribute("type", "password")
        assert HEADER not in page.content()
        # Saved unchanged, the value is kept.
        form.locator('button[type="submit"]').click()
        expect(page.locator("#mcp-form-dialog")).to_be_hidden()
        assert stored_of(panel, server["id"])["headers"] == [{"name": "Authorization", "value": HEADER}]

        # Pointed at another host, the value must be entered again: named beside its field.
        page.locator(f'#mcp-rows tr[data-id="{server["id"]}"] button[data-action="edit"]').click()
        form.locator('input[name="url"]').fill("https://elsewhere.example.test/mcp")
        form.locator('button[type="submit"]').click()
        expect(value).to_have_attribute("aria-invalid", "true")
        expect(form.locator(".ai-field-error")).to_contain_text("enter this header's value again")
        expect(form.locator("[data-form-error]")).to_contain_text("Header value")
        assert stored_of(panel, server["id"])["url"] == "https://mcp.example.test/mcp"
        value.fill("Bearer for-elsewhere")
        form.locator('button[type="submit"]').click()
        expect(page.locator("#mcp-form-dialog")).to_be_hidden()
        definition = stored_of(panel, server["id"])
        assert definition["url"] == "https://elsewhere.example.test/mcp"
        assert definition["headers"] == [{"name": "Authorization", "value": "Bearer for-elsewhere"}]
    finally:
        context.close()


def stored_of(panel, server_id):
    return stored(panel.data_dir, server_id)
