"""The pages in real Chromium (Debian's, driven by Playwright): sign-in, the AI landing page,
the language switch, the Plugins page, and nothing fetched from outside the panel."""

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN

pytestmark = pytest.mark.browser


def sign_in(page, panel, token=None):
    page.goto(panel.url + "/ai/")
    page.fill("#token", token or panel.token)
    page.click("button[type=submit]")


def test_sign_in_then_the_landing_page_shows_each_feature_live(served, page):
    panel = served()
    requests = []
    page.on("request", lambda request: requests.append(request.url))

    sign_in(page, panel, token="wrong")
    expect(page.get_by_role("alert")).to_contain_text("not right")
    sign_in(page, panel)
    expect(page).to_have_url(panel.url + "/ai/")
    expect(page.get_by_role("heading", level=1)).to_have_text("AI management")
    status = panel.api("GET", "/status").json()
    for provider in status["providers"]:
        card = page.locator(f'.ai-card[data-kind="{provider["kind"]}"]')
        if provider["usable"]:
            expect(card).to_have_attribute("data-state", "ready")
            expect(card.locator(".ai-badge")).to_have_text("Ready")
            expect(card.locator(".ai-detail")).to_have_text(f"Provider: {provider['provider']}")
        else:
            expect(card).to_have_attribute("data-state", "unavailable")
            expect(card.locator(".ai-badge")).to_have_text("Unavailable")
            expect(card.locator(".ai-detail")).to_have_text(provider["reason"])
    expect(page.locator("#ai-updated")).to_contain_text("Updated")
    assert requests and all(url.startswith(panel.url) for url in requests), requests


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
    gpu = next(p for p in panel.api("GET", "/status").json()["providers"] if p["kind"] == "gpu")
    expect(page.locator('.ai-card[data-kind="gpu"] .ai-badge')).to_have_text("可用" if gpu["usable"] else "不可用")
    expect(page.locator('a[data-menu="plugins"]')).to_have_text("插件")
    page.goto(panel.url + "/plugins")
    expect(page.get_by_role("heading", level=1)).to_have_text("插件")


def test_a_chinese_browser_gets_chinese_pages(served, browser):
    panel = served()
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(panel.url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    context.close()


def test_the_plugins_page_lists_plugins_and_disables_one(served, page):
    panel = served()
    sign_in(page, panel)
    page.click('a[data-menu="plugins"]')
    expect(page).to_have_url(panel.url + "/plugins")
    ai_row = page.locator('tr[data-plugin="ai"]')
    expect(ai_row).to_contain_text("open1panel-ai")
    expect(ai_row).to_contain_text("panel_menu_items")
    testkit = page.locator('tr[data-plugin="testkit"]')
    expect(testkit).to_contain_text("Loaded")
    testkit.get_by_role("button", name="Disable").click()
    expect(testkit).to_contain_text("Disabled from the next start")
    expect(testkit.get_by_role("button", name="Enable")).to_be_visible()


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

    response = httpx.post(panel.url + "/testkit/tasks", json={"kind": kind, "target": target, "params": params},
                          headers={"Authorization": f"Bearer {panel.token}"}, timeout=10)
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
