"""GPUMonitorWidget in real Chromium (Debian's, driven by Playwright): cards, live charts and
the process table on the landing page and the GPU page; CPU mode said plainly; the checks."""

import os
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import PLUGINS_DIR, TOKEN
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.browser, pytest.mark.server]

FAKE_SITE = Path(__file__).parent / "fake_site"


def gpu_panel(served, **env):
    """A served panel whose pynvml is the fake three-GPU machine."""
    path = os.pathsep.join([str(FAKE_SITE), str(PLUGINS_DIR), os.environ.get("PYTHONPATH", "")])
    return served(
        env={
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "PYTHONPATH": path.rstrip(os.pathsep),
            "OPEN1PANEL_AI_GPU_INTERVAL": "0.5",
            **env,
        }
    )


def sign_in(page, panel, path="/ai/"):
    page.goto(panel.url + path)
    page.fill("#token", panel.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(panel.url + path)


def test_the_landing_page_shows_gpu_cards_live_charts_and_processes(served, page, tmp_path):
    panel = gpu_panel(served)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    sign_in(page, panel)
    widget = page.locator("#gpu-monitor")
    expect(widget).to_have_attribute("data-mode", "gpu")
    expect(widget.locator(".gpu-live")).to_have_text("live")
    cards = widget.locator(".gpu-card")
    expect(cards).to_have_count(3)
    a100 = cards.nth(0)
    expect(a100.locator("h3")).to_have_text("0: NVIDIA A100-SXM4-80GB")
    expect(a100).to_contain_text("45 %")
    expect(a100).to_contain_text("10.0 GiB / 80.0 GiB")
    expect(a100).to_contain_text("123 W / 400 W")
    expect(cards.nth(1)).to_contain_text("n/a")  # the RTX 4090 has no fan reading
    # Four live charts, one series per GPU, drawn on canvas by uPlot.
    for chart in ("utilization", "memory", "temperature", "power"):
        figure = widget.locator(f'[data-chart="{chart}"]')
        expect(figure.locator("canvas")).to_have_count(1)
        expect(figure.locator(".u-legend .u-series")).to_have_count(4)  # time + three GPUs
    points = page.evaluate("() => document.querySelectorAll('.gpu-chart .u-over').length")
    assert points == 4
    rows = widget.locator(".gpu-processes tbody tr")
    expect(rows).to_have_count(2)
    ghost = widget.locator('.gpu-processes tr[data-pid="4194999"]')
    expect(ghost).to_contain_text("(not visible from here)")
    expect(ghost).to_contain_text("1.0 GiB")
    # The panel's own worker process: visible, with its name and user, on GPUs 0 and 2.
    own = rows.filter(has_text="compute, graphics")
    expect(own.locator("td").nth(1)).not_to_have_text("(not visible from here)")
    expect(own.locator("td").nth(3)).to_have_text("0, 2")
    expect(widget.locator(".gpu-notice")).to_be_hidden()
    # The compatibility check, folded on the landing page: one problem, the hidden pid.
    checks = widget.locator("#gpu-checks")
    expect(checks.locator(".gpu-checks-summary")).to_have_text("1 problem found")  # not "problem(s)"
    expect(checks).not_to_have_attribute("open", "")
    expect(checks.locator("tr[data-check=process_info]")).to_have_attribute("data-ok", "false")
    page.screenshot(path=str(tmp_path / "gpu-widget.png"), full_page=True)
    assert all(url.startswith(panel.url) for url in requests), requests


def test_charts_grow_with_live_samples(served, page):
    panel = gpu_panel(served)
    sign_in(page, panel, "/ai/gpu/")
    expect(page.locator("#gpu-monitor")).to_have_attribute("data-mode", "gpu")
    expect(page.locator('[data-chart="utilization"] canvas')).to_have_count(1)
    # The x axis labels move as samples arrive every 0.5 s: compare two renderings of the axis.
    first = page.locator('[data-chart="utilization"] canvas').screenshot()
    page.wait_for_timeout(2500)
    second = page.locator('[data-chart="utilization"] canvas').screenshot()
    assert first != second
    # The range buttons read the history tier that covers each span: a day is per minute.
    ranges = page.get_by_role("group", name="History range")
    expect(ranges.get_by_role("button", name="10 min")).to_have_attribute("aria-pressed", "true")
    with page.expect_response(lambda r: "/gpu/history" in r.url) as answer:
        ranges.get_by_role("button", name="24 h").click()
    since, until = (float(part.split("=")[1]) for part in answer.value.url.split("?")[1].split("&"))
    assert until - since == 86400
    assert answer.value.json()["tier"] == "minute"
    expect(ranges.get_by_role("button", name="24 h")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#gpu-monitor")).to_have_attribute("data-range", "24h")
    expect(page.locator('[data-chart="utilization"] .u-legend .u-series')).to_have_count(4)
    with page.expect_response(lambda r: "/gpu/history" in r.url) as answer:
        ranges.get_by_role("button", name="1 y").click()
    assert answer.value.json()["tier"] == "hour"


def test_a_lost_gpu_is_shown_lost_while_the_others_keep_reporting(served, page):
    panel = gpu_panel(served, FAKE_NVML_LOST="1")
    sign_in(page, panel, "/ai/gpu/")
    cards = page.locator("#gpu-monitor .gpu-card")
    expect(cards).to_have_count(3)
    lost = cards.nth(1)
    expect(lost).to_have_attribute("data-state", "lost")
    expect(lost).to_contain_text("Lost: this GPU stopped answering")
    expect(lost).to_contain_text("reset or reboot")
    expect(cards.nth(0)).to_have_attribute("data-state", "ok")
    expect(cards.nth(2)).to_contain_text("45 %")
    expect(page.locator("#gpu-checks tr[data-check=devices]")).to_have_attribute("data-ok", "false")
    expect(page.locator("#gpu-checks .gpu-checks-summary")).to_have_text("2 problems found")


def test_cpu_mode_says_so_plainly_and_the_checks_give_the_fix(served, page):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_GPU_PROVIDER": "cpu"})
    sign_in(page, panel, "/ai/gpu/")
    widget = page.locator("#gpu-monitor")
    expect(widget).to_have_attribute("data-mode", "cpu")
    # Connected, but nothing GPU is live: the badge says CPU mode, not a green "live".
    expect(widget.locator(".gpu-live")).to_have_text("CPU mode")
    expect(widget.locator(".gpu-live")).to_have_attribute("data-live", "cpu")
    expect(widget.locator(".gpu-live")).not_to_have_css("color", "rgb(22, 163, 74)")
    notice = widget.locator(".gpu-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("CPU mode: no GPU is used on this server")
    expect(widget.locator(".gpu-charts")).to_be_hidden()
    # Instead of GPU charts, the CPU and memory are charted (one CPU series each).
    for chart in ("cpu_utilization", "cpu_memory"):
        figure = widget.locator(f'[data-cpu-chart="{chart}"]')
        expect(figure.locator("canvas")).to_have_count(1)
        expect(figure.locator(".u-legend .u-series")).to_have_count(2)  # time + the CPU
    expect(widget.locator(".gpu-cards")).to_be_hidden()
    expect(widget.locator(".gpu-processes")).to_be_hidden()
    expect(widget.locator('[data-reading="memory"]')).to_contain_text("GiB")
    expect(widget.locator('[data-reading="utilization"]')).to_contain_text("%")
    expect(page.locator("#gpu-checks")).to_have_attribute("open", "")
    checks = page.locator("#gpu-checks tbody tr")
    expect(checks.first).to_have_attribute("data-check", "library")
    expect(checks).to_have_count(3)  # library, binding, driver: the driver rules NVML out here
    expect(page.locator("#gpu-checks tr[data-check=binding]")).to_have_attribute("data-ok", "true")
    expect(page.locator("#gpu-checks .gpu-checks-summary")).to_have_text("1 problem found")


def test_the_gpu_page_lists_the_checks_in_chinese(served, browser):
    panel = gpu_panel(served)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    sign_in(page, panel, "/ai/gpu/")
    expect(page.get_by_role("heading", level=1)).to_have_text("GPU 监控")
    devices = page.locator("#gpu-checks tr[data-check=devices]")
    expect(devices).to_have_attribute("data-ok", "true")
    expect(devices).to_contain_text("正常")
    expect(page.locator("#gpu-checks tr[data-check=process_info]")).to_contain_text("--pid=host")
    context.close()


def test_cpu_mode_lists_the_ollama_models_running_on_the_cpu(served, page, tmp_path):
    with OllamaStandIn(tmp_path / "ollama", vram=0) as ollama:  # no GPU memory: loads spill to the CPU
        ollama.seed("qwen2:0.5b", [352_000_000])
        httpx.post(
            ollama.url + "/api/generate", json={"model": "qwen2:0.5b", "keep_alive": "10m"}, timeout=10
        ).raise_for_status()
        panel = served(
            env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_GPU_PROVIDER": "cpu", "OLLAMA_HOST": ollama.url}
        )
        sign_in(page, panel, "/ai/gpu/")
        models = page.locator("#gpu-monitor .gpu-ollama-cpu")
        expect(models).to_be_visible()
        expect(models.locator("li")).to_have_count(1)
        expect(models.locator("li")).to_contain_text("qwen2:0.5b on local")
        expect(models.locator("li")).to_contain_text("in system memory, none on a GPU")
