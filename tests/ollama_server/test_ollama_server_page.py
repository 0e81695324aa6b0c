"""The server page in real Chromium, and a local server that is not managed here."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN, free_port


@pytest.fixture
def remote_api(panel_env, make_host, auth_headers):
    panel_env.setenv("OLLAMA_HOST", "10.20.30.40:11434")
    panel_env.setenv("OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER", "supervised")
    client = make_host().app.test_client()

    def call(method, path, **kwargs):
        response = getattr(client, method)("/api/v2/ai" + path, headers=auth_headers, **kwargs)
        return response.status_code, response.get_json()

    return call


def test_a_remote_local_endpoint_is_not_managed_here_and_says_why(remote_api):
    api = remote_api
    status, body = api("get", "/ollama/server")
    assert status == 200 and body["mode"] == "unmanaged" and body["managed"] is False
    assert "10.20.30.40" in body["reason"] and body["state"] is None
    status, error = api("post", "/ollama/server/start")
    assert status == 409 and error["error"]["code"] == "server_not_managed"
    status, error = api("put", "/ollama/server/settings", json={"settings": {}})
    assert status == 409


def test_without_systemd_or_a_choice_the_reasons_are_given(panel_env, api):
    status, body = api("get", "/ollama/server")
    assert status == 200 and body["mode"] == "unmanaged"
    assert [c["name"] for c in body["candidates"]] == ["systemd", "supervised"]
    assert "systemd" in body["reason"] and "chosen by setting" in body["reason"]
    assert "OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER=supervised" in body["fix"]


@pytest.mark.browser
@pytest.mark.server
def test_the_page_shows_the_server_applies_a_setting_and_its_log(served, ollama_program, page, tmp_path):
    panel = served(
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
            "OLLAMA_MODELS": str(tmp_path / "models"),
            "OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER": "supervised",
            "OPEN1PANEL_AI_OLLAMA_SERVER_BIN": str(ollama_program),
            "OLLAMA_STANDIN_VERSION": "0.5.1",
        }
    )
    page.goto(panel.url + "/ai/ollama/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.goto(panel.url + "/ai/ollama/")
    reads = []
    page.on("request", lambda request: "/api/v2/ai/" in request.url and reads.append(request.url))
    page.click("#ollama-server-link")
    expect(page.locator("#server-mode")).to_have_text("this panel (supervised ollama serve)")
    expect(page.locator("#server-state")).to_contain_text("Running", timeout=30_000)
    expect(page.locator("html")).to_have_attribute("data-connection", "up")
    # A line written to the log shows up by itself.
    expect(page.locator("#server-log")).to_contain_text("supervisor: starting")
    log_file = panel.data_dir / "ollama-server" / "ollama.log"
    with log_file.open("a", encoding="utf-8") as log:
        log.write('time=now level=INFO msg="a line written just now"\n')
    expect(page.locator("#server-log")).to_contain_text("a line written just now", timeout=10_000)
    expect(page.locator("#server-version")).to_have_text("0.5.1")
    expect(page.locator("#server-warnings li").first).to_be_visible()  # the version check's warnings
    row = page.locator('tr[data-setting="OLLAMA_NUM_PARALLEL"]')
    expect(row).to_contain_text("How many requests each model answers at the same time.")
    row.locator("input").fill("0")
    page.click("#server-settings-form button[type=submit]")
    expect(page.locator("#server-settings-form [data-form-error]")).to_be_visible()
    expect(row.locator(".ai-field-error")).to_contain_text("from 1 to 256")
    row.locator("input").fill("2")
    page.locator('tr[data-setting="OLLAMA_FLASH_ATTENTION"] select').select_option("1")
    page.click("#server-settings-form button[type=submit]")
    expect(page.locator("#server-apply-status")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("#server-log")).to_contain_text("OLLAMA_NUM_PARALLEL:2", timeout=15_000)
    expect(page.locator("#server-log")).to_contain_text("OLLAMA_FLASH_ATTENTION:1")
    # The restart's state, the task and the log were all pushed: the log was read once, at
    # the start, and no task was ever asked for.
    expect(page.locator("#server-state")).to_have_attribute("data-status", "running", timeout=15_000)
    assert len([url for url in reads if "/ollama/server/logs" in url]) == 1
    assert not [url for url in reads if "/tasks/" in url]
    page.screenshot(path=str(tmp_path / "ollama-server-page.png"), full_page=True)
