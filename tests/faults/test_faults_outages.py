"""Outages of the parts the panel relies on, one at a time, with the panel running: Ollama
stopped, nginx stopped, an MCP server's process killed. Each gives a clear state on its page,
the other features keep working, and each recovers once its part is back."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN, ServedPanel, free_port
from tests.domain.conftest import NginxServer
from tests.helpers import TIME_SERVER, wait_for
from tests.mcp.conftest import FAST
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.server, pytest.mark.browser]

DOMAIN = "open.example.test"


class Parts:
    """One panel and the parts it relies on, shared by the tests here: each test takes one part
    away and brings it back before it ends."""

    def __init__(self, root: Path) -> None:
        self.ollama = OllamaStandIn(root / "ollama").start()
        self.ollama.seed("tiny:latest", [4096])
        self.nginx = NginxServer(root / "nginx").start()
        env = {
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "OLLAMA_HOST": self.ollama.url,
            **FAST,
            # A restart waits long enough for a busy browser to show "restarting" first.
            "OPEN1PANEL_AI_MCP_BACKOFF": "6",
            "OPEN1PANEL_AI_MCP_BACKOFF_MAX": "6",
            "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx",
            **{
                "OPEN1PANEL_AI_" + key.upper(): value
                for key, value in self.nginx.settings(root).items()
                if key != "data_dir"
            },
        }
        self.panel = ServedPanel(root / "panel", env=env).start()

    def restart_ollama(self) -> None:
        self.ollama = OllamaStandIn(self.ollama.state_dir).start(port=self.ollama.port)

    def stop(self) -> None:
        self.panel.stop()
        self.nginx.stop()
        self.ollama.stop()


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    parts = Parts(tmp_path_factory.mktemp("outages"))
    try:
        panel = parts.panel
        made = panel.api("POST", "/mcp/servers", json={"name": "time", "command": TIME_SERVER, "port": free_port()})
        assert made.status_code == 201, made.text
        panel.server_id = made.json()["id"]
        panel.api("POST", f"/mcp/servers/{panel.server_id}/start")
        bound = panel.api(
            "POST",
            "/domains",
            json={"domains": [DOMAIN], "auth": {"mode": "none"}, "target": {"kind": "ollama", "name": "local"}},
        )
        assert bound.status_code == 201 and bound.json()["state"] == "online", bound.text
        wait_for(lambda: mcp_status(panel) == "running", what="the MCP server to run")
        yield parts
    finally:
        parts.stop()


@pytest.fixture
def panel(parts):
    return parts.panel


@pytest.fixture
def open_page(page, panel):
    """Log the browser in once; then ``open_page("/ai/ollama")`` shows that page."""
    page.goto(panel.url + "/ai/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    # The landing page has asked for /status (so a later stop of nginx is news to the panel).
    expect(page.locator('.ai-card[data-kind="domain"]')).to_have_attribute("data-state", "ready")

    def open_(path: str):
        page.goto(panel.url + path)
        return page

    return open_


def mcp_status(panel) -> str:
    return panel.api("GET", f"/mcp/servers/{panel.server_id}").json()["status"]


def others_work(panel, but: str) -> None:
    """The features other than ``but`` answer as before."""
    checks = {
        "ollama": lambda: panel.api("GET", "/ollama/models").json()["models"][0]["name"] == "tiny:latest",
        "mcp": lambda: mcp_status(panel) == "running",
        "gpu": lambda: panel.api("GET", "/gpu").status_code == 200,
        "domain": lambda: panel.api("GET", "/domains").json()["bindings"][0]["state"] == "online",
    }
    for name, check in checks.items():
        if name != but:
            assert check(), name


def test_ollama_stopped_says_where_it_cannot_be_reached_and_recovers(parts, panel, open_page):
    standin = parts.ollama
    standin.stop()
    answer = panel.api("GET", "/ollama/models?max_age=0")  # not the watcher's last state
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "ollama_unreachable"
    page = open_page("/ai/ollama/")
    banner = page.locator("#ollama-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(f"Ollama at {standin.url} cannot be reached")
    expect(page.locator('#ollama-endpoints tr[data-endpoint="local"]')).to_contain_text("Unreachable")
    expect(page.locator(".ollama-empty")).to_be_hidden()  # not "no models": we cannot know
    others_work(panel, but="ollama")

    parts.restart_ollama()
    page.reload()
    expect(page.locator('.ollama-model-table tr[data-model="tiny:latest"]')).to_be_visible()
    expect(banner).to_be_hidden()
    others_work(panel, but="none")


def test_nginx_stopped_is_said_on_the_domain_page_and_bindings_stay_listed(parts, panel, open_page):
    nginx = parts.nginx
    binding = panel.api("GET", "/domains").json()["bindings"][0]
    sites = {path.name: path.read_bytes() for path in nginx.sites.iterdir()}
    nginx.stop()
    # A change made while nginx is down is refused with the reason (never a 2xx); nothing is
    # left on disk for a later reload to pick up.
    changed = panel.api("PUT", f"/domains/{binding['id']}", json={"allowlist": ["10.0.0.0/8"]})
    assert changed.status_code == 502, changed.text
    assert "nginx is not running" in changed.json()["error"]["message"]
    assert changed.json()["error"]["details"]["binding"]["state"] == "error"
    assert {path.name: path.read_bytes() for path in nginx.sites.iterdir()} == sites
    page = open_page("/ai/domains")
    expect(page.locator("#domain-provider")).to_contain_text("nginx is not running")
    row = page.locator(f'tr[data-binding="{binding["id"]}"]')
    expect(row).to_contain_text(DOMAIN)
    expect(row.locator(".domain-row-error")).to_contain_text("nginx is not running")
    # Now that the page asked again, the API refuses changes at once, saying why.
    refused = panel.api("PUT", f"/domains/{binding['id']}", json={"allowlist": ["10.0.0.0/8"]})
    assert refused.status_code == 503 and "nginx is not running" in refused.json()["error"]["message"]
    others_work(panel, but="domain")

    nginx.start()
    assert nginx.get(DOMAIN, "/api/version").status_code == 200  # the sites it had
    page.reload()
    expect(page.locator("#domain-provider")).to_contain_text("Published through nginx")
    changed = panel.api("PUT", f"/domains/{binding['id']}", json={"allowlist": ["10.0.0.0/8"]})
    assert changed.status_code == 200 and changed.json()["state"] == "online", changed.text
    assert nginx.get(DOMAIN, "/api/version").status_code == 403
    panel.api("PUT", f"/domains/{binding['id']}", json={"allowlist": []})
    others_work(panel, but="none")


def test_a_killed_mcp_server_shows_restarting_then_runs_again(panel, open_page):
    page = open_page("/ai/mcp/")
    row = page.locator(f'tr[data-id="{panel.server_id}"]')
    expect(row).to_have_attribute("data-status", "running")
    bridge = panel.api("GET", f"/mcp/servers/{panel.server_id}").json()["pid"]
    with open(f"/proc/{bridge}/task/{bridge}/children") as children:
        [child] = [int(pid) for pid in children.read().split()]
    os.kill(child, signal.SIGKILL)
    expect(row).to_have_attribute("data-status", "restarting")
    expect(row.locator(".mcp-status")).to_have_text("Restarting")
    others_work(panel, but="mcp")
    expect(row).to_have_attribute("data-status", "running", timeout=20_000)
    expect(row).to_contain_text("Restarted once")
    assert panel.api("GET", f"/mcp/servers/{panel.server_id}/tools").status_code == 200
    others_work(panel, but="none")
