"""The alerts in real Chromium, on one served panel whose GPUs are the fake three-GPU machine
(51 °C each): the bell on every AI page with its live unread count, the history with
acknowledge, the rules form, the channels with the dialog, the test button and a failing row,
and the page in Chinese. Screenshots go to ``$OPEN1PANEL_AI_SCREENSHOTS`` when set (the ones in
docs/screenshots/alerts-*.png come from such a run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.alerts.conftest import FAST, Receiver
from tests.alerts.test_alerts_restart import FAKE_SITE
from tests.conftest import PLUGINS_DIR, TOKEN, ServedPanel, free_port
from tests.helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture(scope="module")
def hooks():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    path = os.pathsep.join(filter(None, [str(FAKE_SITE), str(PLUGINS_DIR), os.environ.get("PYTHONPATH")]))
    served = ServedPanel(
        tmp_path_factory.mktemp("alerts-pages") / "data",
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "PYTHONPATH": path,
            "OPEN1PANEL_AI_GPU_INTERVAL": "0.5",
            "OLLAMA_HOST": f"127.0.0.1:{free_port()}",
            **FAST,
        },
    ).start()
    # Quick GPU temperature alerts; the rules whose state depends on this machine's disk or a
    # port off.
    for rule, body in [
        ("gpu_temperature", {"for_seconds": 0, "quiet_seconds": 0}),
        ("disk_low", {"enabled": False}),
        ("ollama_unreachable", {"enabled": False}),
    ]:
        assert served.api("PUT", f"/alerts/rules/{rule}", json=body).status_code == 200
    yield served
    served.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("OPEN1PANEL_AI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(target, name: str) -> None:
        target.screenshot(path=str(folder / f"alerts-{name}.png"))

    return shoot


def sign_in(page, panel, path):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(panel.url + path)
    page.fill("#token", panel.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(panel.url + path)


def hot(panel, threshold):
    """Set the temperature limit: below 51 °C every GPU of the fake machine is too hot."""
    answer = panel.api("PUT", "/alerts/rules/gpu_temperature", json={"params": {"threshold": threshold}})
    assert answer.status_code == 200, answer.text


def test_the_bell_counts_unread_alerts_live_and_the_history_acknowledges(panel, page, shots):
    sign_in(page, panel, "/ai/gpu/")
    bell = page.locator("header .tools #alerts-bell")
    expect(bell).to_be_visible()  # on every AI page, in the header
    expect(bell.locator(".alerts-bell-count")).to_be_hidden()
    expect(bell).to_have_attribute("aria-label", "0 unread alerts")

    hot(panel, 45)
    expect(bell.locator(".alerts-bell-count")).to_have_text("3")  # pushed, no reload
    expect(bell).to_have_attribute("aria-label", "3 unread alerts")
    shots(page.locator("header"), "bell")
    bell.click()
    expect(page).to_have_url(panel.url + "/ai/alerts/#alerts-history")
    rows = page.locator("#alerts-table tbody tr")
    expect(rows).to_have_count(3)
    first = rows.first
    expect(first.locator(".alerts-status")).to_have_text("firing")
    expect(first.locator(".alerts-severity")).to_have_text("critical")
    expect(first.locator(".alerts-summary")).to_contain_text("is at 51 °C, above the limit of 45 °C.")
    expect(page.locator("#alerts-counts")).to_have_text("3 unread, 3 firing")
    shots(page.locator("#alerts-history"), "history")

    first.locator('button[data-action="ack"]').click()
    expect(first.locator(".alerts-acked")).to_contain_text("Acknowledged")
    expect(page.locator("#alerts-bell .alerts-bell-count")).to_have_text("2")
    page.locator("#alerts-ack-all").click()
    expect(page.locator("#alerts-bell .alerts-bell-count")).to_be_hidden()
    expect(page.locator('#alerts-table tr[data-read="no"]')).to_have_count(0)
    assert panel.api("GET", "/alerts/counts").json() == {"unread": 0, "firing": 3}

    hot(panel, 85)  # cooled: resolved on the page as it happens
    expect(page.locator('#alerts-table tr[data-status="resolved"]')).to_have_count(3)
    expect(page.locator("#alerts-counts")).to_have_text("0 unread, 0 firing")


def test_rules_are_changed_on_the_page_and_bad_values_are_marked(panel, page, shots):
    sign_in(page, panel, "/ai/alerts/")
    expect(page.locator("form.alerts-rule")).to_have_count(10)
    shots(page.locator("#alerts-rules"), "rules")
    memory = page.locator('form.alerts-rule[data-rule="gpu_memory"]')
    expect(memory.locator("h3")).to_contain_text("GPU memory use")
    expect(memory.locator('input[name="params.threshold"]')).to_have_value("95")
    memory.locator('input[name="enabled"]').uncheck()
    memory.locator('input[name="params.threshold"]').fill("97")
    memory.locator('input[name="for_seconds"]').fill("30")
    memory.locator('select[name="severity"]').select_option("critical")
    memory.locator('button[type="submit"]').click()
    saved = page.locator('form.alerts-rule[data-rule="gpu_memory"] .alerts-rule-saved')
    expect(saved).to_have_text("Saved.")
    rule = next(r for r in panel.api("GET", "/alerts/rules").json()["rules"] if r["id"] == "gpu_memory")
    assert (rule["enabled"], rule["params"]["threshold"], rule["for_seconds"], rule["severity"]) == (
        False,
        97,
        30,
        "critical",
    )
    expect(page.locator('form.alerts-rule[data-rule="gpu_memory"]')).to_have_attribute("data-enabled", "no")

    disk = page.locator('form.alerts-rule[data-rule="disk_low"]')
    disk.locator('input[name="params.min_free_percent"]').fill("150")
    disk.locator('button[type="submit"]').click()
    field = disk.locator('input[name="params.min_free_percent"]')
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(disk.locator("[data-form-error]")).to_contain_text("Free below (%)")
    rule = next(r for r in panel.api("GET", "/alerts/rules").json()["rules"] if r["id"] == "disk_low")
    assert rule["params"]["min_free_percent"] == 10  # nothing saved
    page.reload()
    expect(page.locator('form.alerts-rule[data-rule="gpu_memory"] input[name="params.threshold"]')).to_have_value("97")
    memory_rule = next(r for r in panel.api("GET", "/alerts/rules").json()["rules"] if r["id"] == "gpu_memory")
    assert panel.api("PUT", "/alerts/rules/gpu_memory", json=memory_rule["defaults"]).status_code == 200


def test_channels_are_added_tested_edited_and_show_their_trouble(panel, page, hooks, shots):
    sign_in(page, panel, "/ai/alerts/")
    page.locator("#alerts-channel-new").click()
    dialog = page.locator("#alerts-channel-dialog")
    expect(dialog).to_be_visible()
    dialog.locator('input[name="name"]').fill("ops-dingtalk")
    dialog.locator('select[name="kind"]').select_option("dingtalk")
    expect(dialog.locator(".alerts-kind-hint")).to_contain_text("DingTalk robot")
    expect(dialog.locator('input[name="secret"]')).to_be_visible()
    dialog.locator('input[name="url"]').fill(hooks.url + "/dingtalk?access_token=tok-page")
    dialog.locator('input[name="secret"]').fill("SECpage-secret")
    shots(dialog, "channel-dialog")
    dialog.locator('button[type="submit"]').click()
    expect(dialog).to_be_hidden()
    row = page.locator("#alerts-channel-table tbody tr", has_text="ops-dingtalk")
    expect(row).to_contain_text("DingTalk")
    expect(row.locator("code")).to_have_text(hooks.url + "/…")  # the token is never shown
    expect(row).to_contain_text("signed")

    row.locator('button[data-action="test"]').click()
    expect(row.locator(".alerts-test-result")).to_have_text("Test sent (HTTP 200).")
    [sent] = hooks.at("/dingtalk")
    assert sent.query["access_token"] == "tok-page" and sent.query["sign"]

    # Edit: the URL and secret are kept when left empty.
    row.locator('button[data-action="edit"]').click()
    expect(dialog.locator('[data-kept="url"]')).to_have_text(f"Saved: {hooks.url}/… (leave empty to keep it)")
    expect(dialog.locator('select[name="kind"]')).to_be_disabled()
    dialog.locator('input[name="name"]').fill("ops-ding")
    dialog.locator('button[type="submit"]').click()
    expect(page.locator("#alerts-channel-table tbody tr", has_text="ops-ding")).to_have_count(1)
    row = page.locator("#alerts-channel-table tbody tr", has_text="ops-ding")
    row.locator('button[data-action="test"]').click()
    expect(row.locator(".alerts-test-result")).to_have_text("Test sent (HTTP 200).")
    assert hooks.at("/dingtalk")[1].query["access_token"] == "tok-page"

    # A channel that refuses: retried on its row, then given up, and sent again on request.
    hooks.answers["/broken"] = [(500, "out of order")]
    assert (
        panel.api(
            "POST", "/alerts/channels", json={"name": "broken-hook", "kind": "webhook", "url": hooks.url + "/broken"}
        ).status_code
        == 201
    )
    page.reload()
    hot(panel, 45)
    broken = page.locator("#alerts-channel-table tbody tr", has_text="broken-hook")
    expect(broken.locator(".alerts-delivery-error")).to_contain_text("answered HTTP 500: out of order")
    expect(broken.locator(".alerts-given-up")).to_contain_text("3 messages given up", timeout=15000)
    expect(
        page.locator("#alerts-channel-table tbody tr", has_text="ops-ding").locator(".alerts-delivery-ok")
    ).to_contain_text("Last sent")
    shots(page.locator("#alerts-channels"), "channels")
    hooks.answers["/broken"] = [(200, "{}")]
    broken.locator('button[data-action="retry"]').click()
    expect(broken.locator(".alerts-delivery-ok")).to_contain_text("Last sent")
    expect(broken.locator(".alerts-given-up")).to_have_count(0)
    hot(panel, 85)

    page.once("dialog", lambda confirm: confirm.accept())
    broken.locator('button[data-action="delete"]').click()
    expect(page.locator("#alerts-channel-table tbody tr", has_text="broken-hook")).to_have_count(0)
    assert [c["name"] for c in panel.api("GET", "/alerts/channels").json()["channels"]] == ["ops-ding"]

    # An email channel: its SMTP fields, a missing recipient marked at its field.
    page.locator("#alerts-channel-new").click()
    dialog.locator('input[name="name"]').fill("ops-mail")
    dialog.locator('select[name="kind"]').select_option("email")
    expect(dialog.locator('input[name="url"]')).to_be_hidden()
    dialog.locator('input[name="email.host"]').fill("smtp.example.test")
    dialog.locator('input[name="email.from_address"]').fill("panel@example.test")
    dialog.locator('input[name="email.password"]').fill("mail-secret")
    dialog.locator('button[type="submit"]').click()
    expect(dialog.locator('input[name="email.to"]')).to_have_attribute("aria-invalid", "true")
    dialog.locator('input[name="email.to"]').fill("ops@example.test, oncall@example.test")
    dialog.locator('button[type="submit"]').click()
    expect(dialog).to_be_hidden()
    mail = page.locator("#alerts-channel-table tbody tr", has_text="ops-mail")
    expect(mail.locator("code")).to_have_text("ops@example.test, oncall@example.test")
    stored = next(c for c in panel.api("GET", "/alerts/channels").json()["channels"] if c["name"] == "ops-mail")
    assert stored["email"]["security"] == "starttls" and stored["email"]["has_password"]


def test_the_page_and_the_bell_in_chinese(panel, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        hot(panel, 46)
        wait_for(lambda: panel.api("GET", "/alerts/counts").json()["unread"] >= 3, 10, what="new alerts")
        sign_in(page, panel, "/ai/alerts/")
        expect(page.locator("h1")).to_have_text("告警")
        unread = panel.api("GET", "/alerts/counts").json()["unread"]
        expect(page.locator("#alerts-bell")).to_have_attribute("aria-label", f"{unread} 条未读告警")
        firing = page.locator('#alerts-table tr[data-status="firing"]').first
        expect(firing.locator(".alerts-summary")).to_contain_text("温度为 51 °C，超过上限 46 °C。")
        expect(firing.locator(".alerts-status")).to_have_text("告警中")
        expect(page.locator('form.alerts-rule[data-rule="gpu_lost"] h3')).to_contain_text("GPU 丢失")
    finally:
        hot(panel, 85)
        context.close()
