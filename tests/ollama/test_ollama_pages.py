"""OllamaModelsPage and its dialogs in real Chromium (Debian's, driven by Playwright)."""

import pytest
from playwright.sync_api import expect

from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.browser, pytest.mark.server]

TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "models", pull_speed=1_500_000) as server:
        yield server


def open_page(page, served, standin):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url,
                        "OLLAMA_MODELS": str(standin.state_dir)})
    page.goto(panel.url + "/ai/ollama/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.goto(panel.url + "/ai/ollama/")
    return panel


def test_a_pull_reaches_100_percent_live_and_the_model_appears_without_a_reload(served, standin, page, tmp_path):
    standin.seed("qwen2:0.5b", [352_000])
    standin.publish("llama3.2", [3_000_000, 100_000])
    open_page(page, served, standin)
    expect(page.locator('#ollama-endpoints tr[data-endpoint="local"]')).to_contain_text("Online · 0.12.6")
    expect(page.locator('.ollama-model-table tr[data-model="qwen2:0.5b"]')).to_be_visible()
    # The Domain button hands the endpoint to the domain feature's dialog.
    page.evaluate("window.AI.openDomainDialog = function (what) { window.askedFor = what; }")
    page.locator('#ollama-endpoints tr[data-endpoint="local"] [data-action=domain]').click()
    assert page.evaluate("window.askedFor") == {"kind": "ollama", "target": "local"}
    loads = []
    page.on("framenavigated", lambda frame: loads.append(frame.url))

    page.click("#ollama-pull-open")
    dialog = page.locator("#ollama-pull-dialog")
    dialog.locator("[name=name]").fill("ollama run llama3.2")
    dialog.locator("[data-action=start]").click()
    expect(dialog.locator("[data-action=cancel]")).to_be_visible()
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("/s", timeout=10_000)
    expect(dialog).to_have_attribute("data-status", "succeeded", timeout=30_000)
    assert dialog.locator("progress").evaluate("node => node.value") == 100
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("100.0%")
    dialog.locator("button[value=close]").click()
    expect(page.locator('.ollama-model-table tr[data-model="llama3.2:latest"]')).to_be_visible()
    assert loads == []  # no reload, no navigation
    page.screenshot(path=str(tmp_path / "ollama-page.png"), full_page=True)


def test_models_can_be_searched_loaded_copied_and_deleted_with_what_it_frees(served, standin, page):
    standin.seed("llama3.2", [3_000_000], family="llama")
    standin.seed("qwen2:0.5b", [500_000], family="qwen2", quantization_level="Q8_0")
    open_page(page, served, standin)
    rows = page.locator(".ollama-model-table tbody tr")
    expect(rows).to_have_count(2)
    page.fill("#ollama-search", "qwen")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Q8_0")
    page.fill("#ollama-search", "")
    page.select_option("#ollama-sort", "size")
    expect(rows.first).to_have_attribute("data-model", "llama3.2:latest")

    page.locator('tr[data-model="qwen2:0.5b"] [data-action=load]').click()
    load = page.locator("#ollama-load-dialog")
    load.locator("[name=keep_alive]").select_option("forever")
    load.locator("[name=cpu_only]").check()
    load.locator("[data-action=load]").click()
    running = page.locator('#ollama-running tr[data-model="qwen2:0.5b"]')
    expect(running).to_contain_text("CPU only")
    expect(running).to_contain_text("Never")
    expect(page.locator('.ollama-model-table tr[data-model="qwen2:0.5b"] .ollama-loaded')).to_contain_text("Loaded")
    running.locator("[data-action=unload]").click()
    expect(page.locator(".ollama-running-empty")).to_be_visible()

    page.locator('tr[data-model="llama3.2:latest"] [data-action=copy]').click()
    copy = page.locator("#ollama-copy-dialog")
    copy.locator("[name=destination]").fill("mine")
    copy.locator("[data-action=copy]").click()
    expect(page.locator('.ollama-model-table tr[data-model="mine:latest"]')).to_be_visible()
    expect(page.locator('.ollama-suggestions li[data-reason="copy"]').first).to_be_visible()

    page.locator('tr[data-model="mine:latest"] [data-action=delete]').click()
    delete = page.locator("#ollama-delete-dialog")
    expect(delete.locator(".ollama-delete-text")).to_contain_text("frees 0 B")
    delete.locator("[data-action=delete]").click()
    expect(page.locator('.ollama-model-table tr[data-model="mine:latest"]')).to_have_count(0)

    page.locator('tr[data-model="llama3.2:latest"] [data-action=details]').click()
    expect(page.locator("#ollama-details-dialog dl")).to_contain_text("completion")


def test_an_unreachable_server_shows_a_banner_and_the_page_still_works(served, standin, page):
    panel = open_page(page, served, standin)
    standin.stop()
    page.goto(panel.url + "/ai/ollama/")
    banner = page.locator("#ollama-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(standin.url)
    expect(page.locator(".ollama-empty")).to_be_hidden()  # unreachable is not "no models yet"
    expect(page.locator('#ollama-endpoints tr[data-endpoint="local"]')).to_contain_text("Unreachable")


def test_the_import_dialog_uploads_a_gguf_with_progress(served, standin, page, tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(2 << 20))
    open_page(page, served, standin)
    page.click("#ollama-import-open")
    dialog = page.locator("#ollama-import-dialog")
    dialog.locator("[name=name]").fill("tiny-import")
    dialog.locator("[name=file]").set_input_files(str(gguf))
    dialog.locator("[data-action=start]").click()
    expect(dialog).to_have_attribute("data-status", "succeeded", timeout=30_000)
    dialog.locator("button[value=close]").click()
    expect(page.locator('.ollama-model-table tr[data-model="tiny-import:latest"]')).to_be_visible()


def test_servers_are_added_with_their_version_and_removed_and_bad_input_is_explained(served, standin, page, tmp_path):
    with OllamaStandIn(tmp_path / "old", version="0.5.1") as old:
        open_page(page, served, standin)
        form = page.locator("#ollama-endpoint-form")
        form.locator("[name=name]").fill("old-box")
        form.locator("[name=url]").fill("http://a b:1")
        form.locator("button[type=submit]").click()
        expect(form.locator(".ollama-form-error")).to_contain_text("is not a host name")
        form.locator("[name=url]").fill(old.url)
        form.locator("button[type=submit]").click()
        row = page.locator('#ollama-endpoints tr[data-endpoint="old-box"]')
        expect(row).to_contain_text("Online · 0.5.1")
        expect(row.locator(".ollama-warning").first).to_contain_text("0.5.5")
        expect(page.locator('#ollama-endpoint option[value="old-box"]')).to_have_count(1)
        row.locator("[data-action=remove]").click()
        expect(row).to_have_count(0)


def test_the_download_dialog_cancels_and_retries_from_where_it_stopped(served, standin, page):
    standin.pull_speed = 300_000
    standin.publish("slow", [20_000_000])
    open_page(page, served, standin)
    page.click("#ollama-pull-open")
    dialog = page.locator("#ollama-pull-dialog")
    dialog.locator("[name=name]").fill("slow")
    dialog.locator("[data-action=start]").click()
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("/s", timeout=10_000)
    dialog.locator("[data-action=cancel]").click()
    expect(dialog).to_have_attribute("data-status", "cancelled")
    expect(dialog.locator("[data-action=retry]")).to_be_visible()
    standin.pull_speed = 100_000_000
    dialog.locator("[data-action=retry]").click()
    expect(dialog).to_have_attribute("data-status", "succeeded", timeout=30_000)
    assert max(standin.pull_log[-1]["first_completed"].values()) > 0  # it continued
