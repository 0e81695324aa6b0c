"""The plugin mounted into a third-party admin framework (examples/flask-admin-host, on
Flask-Admin) with open1panel_ai.host.mount: its menu entries, pages, API and Socket.IO work
under that host's own login, driven in Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "flask-admin-host"
PASSWORD = "example-password-for-the-test"
SOCKET_IO_CLIENT = (
    Path(__file__).parent.parent.parent / "open1panel_ai" / "static" / "vendor" / "socket.io" / "socket.io.min.js"
)


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory):
    """The example app, started as its README says."""
    root = tmp_path_factory.mktemp("flask-admin")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPEN1PANEL_AI_")}
    env.update(
        EXAMPLE_ADMIN_PASSWORD=PASSWORD,
        OLLAMA_HOST=f"127.0.0.1:{free_port()}",
        OPEN1PANEL_AI_GPU_PROVIDER="cpu",
        OPEN1PANEL_AI_DOMAIN_PROVIDER="none",
        OPEN1PANEL_AI_MCP_HOMES=str(root / "mcp-homes"),
    )
    log = open(root / "app.log", "wb")
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "app.py"), "--port", str(port), "--data-dir", str(root / "data")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (root / "app.log").read_text()
        try:
            httpx.get(url + "/login", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(20)
    log.close()


def sign_in(page, url):
    page.goto(url + "/admin/")
    assert page.url.startswith(url + "/login")  # Flask-Admin sends strangers to the host's login
    page.fill("input[name=user]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/admin/")


def test_signed_in_the_ai_pages_are_in_flask_admins_menu_and_work(admin_app, page):
    sign_in(page, admin_app)
    menu = page.locator(".navbar a.dropdown-item, .navbar .dropdown-menu a")
    hrefs = [menu.nth(i).get_attribute("href") for i in range(menu.count())]
    assert {"/ai/", "/ai/ollama/", "/ai/mcp/", "/ai/gpu/", "/ai/domains/"} <= set(hrefs)

    page.goto(admin_app + "/ai/")  # the plugin's landing page, in the host's layout
    assert page.title().endswith("· Example admin")
    page.wait_for_selector('.ai-card[data-kind="gpu"]:not([data-state="loading"])')  # API answered
    page.wait_for_selector('#ai-tasks .ai-live[data-live="on"]')  # Socket.IO connected
    status = page.evaluate("AI.api('/status')")
    assert {p["kind"]: p["provider"] for p in status["providers"]}["gpu"] == "cpu"
    # A change sent the way the pages send it (the host's CSRF token from the layout) reaches
    # the plugin: an unknown task is the plugin's 404, not the host's 403.
    answered = page.evaluate("""() => fetch('/api/v2/ai/tasks/no-such-task/cancel', {method: 'POST',
        headers: {'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content}})
        .then(r => r.json().then(body => [r.status, body.error.code]))""")
    assert answered == [404, "not_found"]

    page.goto(admin_app + "/ai/gpu/")
    assert page.locator("main").inner_text().strip()


def test_a_change_without_the_hosts_csrf_token_is_refused(admin_app, page):
    sign_in(page, admin_app)
    refused = page.request.post(admin_app + "/api/v2/ai/mcp/servers", data={"name": "x"})
    assert refused.status == 403


def test_without_the_hosts_login_pages_api_and_sockets_are_closed(admin_app, page):
    page.goto(admin_app + "/ai/")
    assert "Sign in" in page.locator("body").inner_text()
    assert page.request.get(admin_app + "/api/v2/ai/status").status == 401
    page.goto(admin_app + "/login")
    page.add_script_tag(content=SOCKET_IO_CLIENT.read_text())  # its static files need a login too
    refused = page.evaluate("""() => new Promise(resolve => {
        const socket = io('/ai', {transports: ['websocket'], reconnection: false});
        socket.on('connect', () => resolve('connected'));
        socket.on('connect_error', () => resolve('refused'));
    })""")
    assert refused == "refused"
