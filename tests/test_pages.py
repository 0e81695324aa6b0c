"""The pages in real Chromium (Debian's, driven by Playwright): sign-in, the AI landing page,
the language switch, the Plugins page, and nothing fetched from outside the panel."""

import re
import sys

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN, free_port
from tests.domain.conftest import NginxServer
from tests.helpers import TIME_SERVER
from tests.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.browser

#: A file where a certificate belongs that nginx cannot load: the binding is saved in error.
NOT_A_CERTIFICATE = "broken.example.test.pem"


def sign_in(page, panel, token=None):
    page.goto(panel.url + "/ai/")
    page.fill("#token", token or panel.token)
    page.click("button[type=submit]")


@pytest.fixture
def busy_panel(served, tmp_path):
    """A served panel with something of everything to report: the Ollama stand-in with two
    models (one loaded) and a second Ollama server that does not answer; an MCP server that
    fails at once and one that is stopped; a real nginx with a binding it refused."""
    with OllamaStandIn(tmp_path / "ollama") as ollama:
        ollama.seed("qwen2:0.5b", [352_000_000])
        ollama.seed("llama3.2:1b", [1_300_000_000])
        nginx = NginxServer(tmp_path / "nginx").start()
        env = {"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": ollama.url, "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx"}
        env.update(
            {
                "OPEN1PANEL_AI_" + key.upper(): value
                for key, value in nginx.settings(tmp_path).items()
                if key != "data_dir"
            }
        )
        panel = served(env=env)
        assert panel.api("POST", "/ollama/models/qwen2:0.5b/load", json={"keep_alive": "10m"}).status_code == 204
        assert (
            panel.api(
                "POST", "/ollama/endpoints", json={"name": "gone", "url": f"http://127.0.0.1:{free_port()}"}
            ).status_code
            == 201
        )
        failing = [sys.executable, "-c", "import sys; sys.exit(3)"]
        for name, command in (("broken", failing), ("idle", TIME_SERVER)):
            created = panel.api(
                "POST", "/mcp/servers", json={"name": name, "command": command, "port": free_port(), "autostart": False}
            )
            assert created.status_code == 201, created.text
            if name == "broken":
                assert panel.api("POST", f"/mcp/servers/{created.json()['id']}/start").status_code == 200
            else:
                panel.idle_id = created.json()["id"]
        garbage = tmp_path / NOT_A_CERTIFICATE
        garbage.write_text("not a certificate\n")
        refused = panel.api(
            "POST",
            "/domains",
            json={
                "domains": ["broken.example.test"],
                "target": {"kind": "ollama", "name": "local"},
                "tls": {"mode": "existing", "certificate": str(garbage), "key": str(garbage)},
            },
        )
        assert refused.status_code == 502, refused.text
        assert refused.json()["error"]["details"]["binding"]["state"] == "error"
        yield panel
        nginx.stop()


def test_sign_in_then_the_landing_page_shows_the_health_of_what_runs(busy_panel, page):
    panel = busy_panel
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.clock.install()  # time flows as usual; fast_forward below shows nothing polls

    sign_in(page, panel, token="wrong")
    expect(page.get_by_role("alert")).to_contain_text("not right")
    sign_in(page, panel)
    expect(page).to_have_url(panel.url + "/ai/")
    expect(page.get_by_role("heading", level=1)).to_have_text("AI management")

    ollama = page.locator('.ai-card[data-kind="ollama"]')
    expect(ollama).to_have_attribute("data-state", "attention")
    expect(ollama.locator(".ai-badge")).to_have_text("Needs attention")
    expect(ollama.locator(".ai-health li").nth(0)).to_contain_text("local: 2 models, 1 loaded")
    expect(ollama.locator(".ai-health li").nth(0)).to_contain_text("Loaded: qwen2:0.5b")
    expect(ollama.locator(".ai-health li").nth(1)).to_contain_text("gone: cannot be reached")

    mcp = page.locator('.ai-card[data-kind="mcp"]')
    expect(mcp).to_have_attribute("data-state", "attention")
    expect(mcp.locator(".ai-health li").first).to_have_text("0 running · 1 failing · 1 stopped")
    expect(mcp.locator(".ai-health-bad")).to_contain_text("broken: ")

    gpu = page.locator('.ai-card[data-kind="gpu"]')
    widget = page.locator("#gpu-monitor")
    if panel.api("GET", "/overview").json()["gpu"]["mode"] == "cpu":
        # No GPU here: the card and the widget say CPU mode, not a green "live".
        expect(gpu).to_have_attribute("data-state", "cpu")
        expect(gpu.locator(".ai-badge")).to_have_text("CPU mode")
        expect(gpu.locator(".ai-health")).to_contain_text("the CPU and memory are monitored instead")
        expect(widget.locator(".gpu-live")).to_have_text("CPU mode")
        expect(widget.locator(".gpu-live")).to_have_attribute("data-live", "cpu")
    else:
        expect(gpu).to_have_attribute("data-state", "ready")
        expect(widget.locator(".gpu-live")).to_have_text("live")

    domain = page.locator('.ai-card[data-kind="domain"]')
    expect(domain).to_have_attribute("data-state", "attention")
    expect(domain.locator(".ai-health li").first).to_have_text("1 binding through nginx")
    expect(domain.locator(".ai-health-bad")).to_contain_text("broken.example.test")
    expect(domain.locator(".ai-health-bad")).to_contain_text(NOT_A_CERTIFICATE)
    expect(page.locator(".ai-cards")).not_to_contain_text("Provider:")  # no bare "http"
    expect(page.locator("#ai-updated")).to_contain_text("Updated")

    # Nothing polls: forty seconds on, the page has asked for nothing more.
    page.wait_for_timeout(1500)
    asked = [url for url in requests if "/overview" in url or "/status" in url]
    page.clock.fast_forward("00:40")
    page.wait_for_timeout(1500)
    assert [url for url in requests if "/overview" in url or "/status" in url] == asked

    # An MCP server that starts is news on the "mcp" topic: the card follows, with no reload.
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    assert panel.api("POST", f"/mcp/servers/{panel.idle_id}/start").status_code == 200
    expect(mcp.locator(".ai-health li").first).to_have_text("1 running · 1 failing · 0 stopped", timeout=20_000)
    assert navigations == []
    assert all(url.startswith(panel.url) for url in requests), requests


def test_a_feature_that_cannot_work_says_why_on_its_card(served, page):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_DOMAIN_PROVIDER": "none"})
    sign_in(page, panel)
    card = page.locator('.ai-card[data-kind="domain"]')
    expect(card).to_have_attribute("data-state", "unavailable")
    expect(card.locator(".ai-detail")).to_have_text("The domain feature is turned off (provider 'none').")


def test_the_language_switch_turns_the_page_chinese(served, page):
    panel = served()
    sign_in(page, panel)
    page.click('a[data-lang="zh-CN"]')
    expect(page.get_by_role("heading", level=1)).to_have_text("AI 管理")
    gpu = panel.api("GET", "/overview").json()["gpu"]
    expect(page.locator('.ai-card[data-kind="gpu"] .ai-badge')).to_have_text(
        {"cpu": "CPU 模式", "gpu": "可用"}[gpu["mode"]]
    )
    expect(page.locator("#ai-updated")).to_have_text(re.compile(r"^更新于 \d\d:\d\d:\d\d$"))  # 24-hour
    expect(page.locator('a[data-menu="plugins"]')).to_have_text("插件")
    # The host's own pages are Chinese too, at either spelling of their address.
    page.goto(panel.url + "/plugins/")
    expect(page.get_by_role("heading", level=1)).to_have_text("插件")
    page.locator('tr[data-plugin="ai"]').get_by_role("button", name="停用").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("停用 ai？")
    expect(dialog).to_contain_text("面板下次启动后，以下页面将不再可用")
    expect(dialog.locator("li")).to_have_text(["AI 管理", "Ollama 模型", "MCP 服务器", "显卡", "域名", "告警"])
    dialog.get_by_role("link", name="保持启用").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator('tr[data-plugin="ai"]')).not_to_contain_text("下次启动时停用")


def test_a_chinese_browser_gets_chinese_pages(served, browser):
    panel = served()
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(panel.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    context.close()


def test_the_plugins_page_lists_plugins_and_disables_one_once_confirmed(served, page):
    panel = served()
    sign_in(page, panel)
    page.click('a[data-menu="plugins"]')
    expect(page).to_have_url(panel.url + "/plugins")
    ai_row = page.locator('tr[data-plugin="ai"]')
    expect(ai_row).to_contain_text("open1panel-ai")
    expect(ai_row).to_contain_text("panel_menu_items")

    # The AI module is the whole product: disabling it asks first, naming the pages that go.
    ai_row.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text("Disable ai?")
    expect(dialog.locator("li")).to_have_text(["AI", "Ollama", "MCP servers", "GPU", "Domains", "Alerts"])
    expect(dialog).to_contain_text("Work it runs in the background stops with it.")
    dialog.get_by_role("link", name="Keep it enabled").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(ai_row).not_to_contain_text("Disabled from the next start")

    testkit = page.locator('tr[data-plugin="testkit"]')
    expect(testkit).to_contain_text("Loaded")
    testkit.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("It adds no page of its own")
    dialog.get_by_role("button", name="Disable testkit").click()
    expect(testkit).to_contain_text("Disabled from the next start")
    expect(testkit.get_by_role("button", name="Enable")).to_be_visible()
    expect(ai_row).not_to_contain_text("Disabled from the next start")


def test_the_landing_page_comes_back_by_itself_after_the_panel_was_unreachable(served, page, tmp_path):
    ollama_port = free_port()  # nothing answers here until the panel is down
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": f"127.0.0.1:{ollama_port}"})
    sign_in(page, panel)
    ollama = page.locator('.ai-card[data-kind="ollama"]')
    expect(ollama.locator(".ai-health")).to_contain_text("local: cannot be reached")
    expect(page.locator("#ai-tasks .ai-live")).to_have_attribute("data-live", "on")

    panel.stop()
    expect(page.locator("#ai-connection")).to_be_visible()
    for kind in ("ollama", "mcp", "gpu", "domain"):  # nothing shown is known any more
        expect(page.locator(f'.ai-card[data-kind="{kind}"] .ai-badge')).to_have_text("Unknown")
    expect(page.locator("#gpu-monitor .gpu-live")).to_have_attribute("data-live", "off")
    standin = OllamaStandIn(tmp_path / "ollama")
    standin.seed("qwen2:0.5b", [352_000_000])
    with standin.start(port=ollama_port):
        panel.start()
        # Reconnected: the page asked again, and the cards say what is true now.
        expect(page.locator("#ai-connection")).to_be_hidden(timeout=20_000)
        expect(ollama).to_have_attribute("data-state", "ready")
        expect(ollama.locator(".ai-health")).to_have_text("local: 1 model, 0 loaded")
        expect(page.locator("#ai-banner")).to_be_hidden()
        expect(page.locator("#ai-tasks .ai-live")).to_have_attribute("data-live", "on")
        expect(page.locator("#gpu-monitor .gpu-live")).not_to_have_attribute("data-live", "off")
        expect(page.locator("main")).not_to_contain_text("Failed to fetch")


def test_signing_out_ends_the_session(served, page):
    panel = served()
    sign_in(page, panel)
    expect(page.locator("#ai-updated")).to_contain_text("Updated")  # the page has settled
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#token")).to_be_visible()
    page.goto(panel.url + "/ai/")
    expect(page.locator("#token")).to_be_visible()


def submit(panel, kind, target, **params):
    import httpx

    response = httpx.post(
        panel.url + "/testkit/tasks",
        json={"kind": kind, "target": target, "params": params},
        headers={"Authorization": f"Bearer {panel.token}"},
        timeout=10,
    )
    assert response.status_code == 202
    return response.json()


def test_background_tasks_appear_and_progress_live_without_a_reload(served, page):
    panel = served()
    sign_in(page, panel)
    expect(page.locator("#ai-tasks .ai-live")).to_have_attribute("data-live", "on")
    expect(page.locator(".ai-tasks-empty")).to_be_visible()
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    task = submit(panel, "testkit.steps", "live-demo", steps=40, delay=0.05)
    row = page.locator(f'li.ai-task[data-task="{task["id"]}"]')
    expect(row).to_have_attribute("data-status", "running")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=15000)
    expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(row).to_contain_text("Done")
    assert navigations == []


def test_a_task_can_be_cancelled_from_the_page(served, page):
    panel = served()
    sign_in(page, panel)
    task = submit(panel, "testkit.child", "to-cancel")
    row = page.locator(f'li.ai-task[data-task="{task["id"]}"]')
    expect(row).to_have_attribute("data-status", "running")
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_have_attribute("data-status", "cancelled")
    row.get_by_role("button", name="Retry").click()
    expect(row).to_have_attribute("data-status", "running")
