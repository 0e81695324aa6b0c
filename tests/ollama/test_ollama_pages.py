"""OllamaModelsPage and its dialogs in real Chromium (Debian's, driven by Playwright)."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.helpers import wait_for
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "models", pull_speed=1_500_000) as server:
        yield server


def open_page(page, served, standin):
    panel = served(
        env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url, "OLLAMA_MODELS": str(standin.state_dir)}
    )
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
    panel = open_page(page, served, standin)
    rows = page.locator(".ollama-model-table tbody tr")
    expect(rows).to_have_count(2)
    page.fill("#ollama-search", "qwen")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Q8_0")
    page.fill("#ollama-search", "")
    page.select_option("#ollama-sort", "size")
    expect(rows.first).to_have_attribute("data-model", "llama3.2:latest")

    # A keep_alive of one's own: what is not a duration is refused beside its field; 90m keeps
    # the model 90 minutes.
    page.locator('tr[data-model="qwen2:0.5b"] [data-action=load]').click()
    load = page.locator("#ollama-load-dialog")
    custom = load.locator("[name=keep_alive_custom]")
    expect(custom).to_be_hidden()
    load.locator("[name=keep_alive]").select_option("custom")
    expect(custom).to_be_focused()
    custom.fill("soon")
    load.locator("[data-action=load]").click()
    expect(load.locator('.ai-field-error[data-field="keep_alive_custom"]')).to_be_visible()
    assert standin.ps()["models"] == []
    custom.fill("90m")
    load.locator("[data-action=load]").click()
    expect(load).to_be_hidden()
    expires = page.locator('#ollama-running tr[data-model="qwen2:0.5b"] .ollama-expires')
    expect(expires).to_have_attribute("data-seconds-left", re.compile(r"^5[34]\d\d$"))
    page.locator('#ollama-running tr[data-model="qwen2:0.5b"] [data-action=unload]').click()
    expect(page.locator(".ollama-running-empty")).to_be_visible()

    page.locator('tr[data-model="qwen2:0.5b"] [data-action=load]').click()
    expect(custom).to_be_hidden()  # opened again, the choice is back to the default
    expect(load.locator(".ollama-dialog-model")).to_contain_text("qwen2:0.5b")
    load.locator("[name=keep_alive]").select_option("forever")
    load.locator("[name=cpu_only]").check()
    load.locator("[data-action=load]").click()
    running = page.locator('#ollama-running tr[data-model="qwen2:0.5b"]')
    expect(running).to_contain_text("CPU only")
    expect(running).to_contain_text("Never")
    expect(page.locator('.ollama-model-table tr[data-model="qwen2:0.5b"] .ollama-loaded')).to_contain_text("Loaded")
    running.locator("[data-action=unload]").click()
    expect(page.locator(".ollama-running-empty")).to_be_visible()

    # A copy onto a name in use asks first, in the dialog, and refusing keeps the model there.
    llama = {m["name"]: m for m in standin.tags()["models"]}["llama3.2:latest"]
    page.evaluate("() => { window.confirm = function () { window.confirmed = true; return true; }; }")
    page.locator('tr[data-model="qwen2:0.5b"] [data-action=copy]').click()
    copy = page.locator("#ollama-copy-dialog")
    expect(copy.locator(".ollama-dialog-model")).to_contain_text("qwen2:0.5b")
    expect(copy.locator("[name=destination]")).to_have_value("qwen2-copy:0.5b")  # the tag is kept
    copy.locator("[name=destination]").fill("llama3.2")
    copy.locator("[data-action=copy]").click()
    confirm = copy.locator(".ollama-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("llama3.2:latest")
    expect(confirm).to_contain_text("2.9 MiB")
    confirm.locator("[data-action=keep]").click()
    expect(confirm).to_be_hidden()
    after = {m["name"]: m for m in standin.tags()["models"]}["llama3.2:latest"]
    assert (after["digest"], after["size"]) == (llama["digest"], llama["size"])
    expect(page.locator('.ollama-model-table tr[data-model="llama3.2:latest"] .ollama-size')).to_have_text("2.9 MiB")
    assert page.evaluate("window.confirmed === undefined")  # asked in the dialog, not by window.confirm

    copy.locator("[name=destination]").fill("mine")
    copy.locator("[data-action=copy]").click()
    expect(page.locator('.ollama-model-table tr[data-model="mine:latest"]')).to_be_visible()
    expect(page.locator('.ollama-suggestions li[data-reason="copy"]').first).to_be_visible()

    # The dialog opens clean for the next model; replacing is possible once confirmed.
    page.locator('tr[data-model="llama3.2:latest"] [data-action=copy]').click()
    expect(copy.locator(".ollama-dialog-model")).to_contain_text("llama3.2:latest")
    expect(copy.locator("[name=destination]")).to_have_value("llama3.2-copy:latest")
    expect(confirm).to_be_hidden()
    copy.locator("[name=destination]").fill("mine")
    copy.locator("[data-action=copy]").click()
    confirm.locator("[data-action=overwrite]").click()
    expect(copy).to_be_hidden()
    expect(page.locator('.ollama-model-table tr[data-model="mine:latest"] .ollama-size')).to_have_text("2.9 MiB")

    page.locator('tr[data-model="mine:latest"] [data-action=delete]').click()
    delete = page.locator("#ollama-delete-dialog")
    expect(delete.locator(".ollama-delete-text")).to_contain_text("frees 0 B")
    delete.locator("[data-action=delete]").click()
    expect(page.locator('.ollama-model-table tr[data-model="mine:latest"]')).to_have_count(0)

    page.locator('tr[data-model="llama3.2:latest"] [data-action=details]').click()
    details = page.locator("#ollama-details-dialog")
    expect(details.locator("dl")).to_contain_text("completion")
    expect(details.locator('[data-detail="template"] .ai-code-box button.ai-copy')).to_be_visible()
    details.locator("button[value=close]").click()

    # The server's memory budget, from its row: empty fields are no limit.
    page.locator('#ollama-endpoints tr[data-endpoint="local"] [data-action=budget]').click()
    budget = page.locator("#ollama-budget-dialog")
    expect(budget).to_have_attribute("data-loaded", "true")
    expect(budget.locator("[name=max_models]")).to_have_value("")
    budget.locator("[name=vram_bytes]").fill("1.5")
    budget.locator("[name=max_models]").fill("2")
    budget.locator("[data-action=save]").click()
    expect(budget).to_be_hidden()
    assert panel.api("GET", "/ollama/endpoints/local/budget").json() == {
        "endpoint": "local",
        "vram_bytes": 1_610_612_736,
        "max_models": 2,
    }
    page.locator('#ollama-endpoints tr[data-endpoint="local"] [data-action=budget]').click()
    expect(budget.locator("[name=max_models]")).to_have_value("2")
    expect(budget.locator("[name=vram_bytes]")).to_have_value("1.5")
    budget.locator("[name=max_models]").fill("0")
    budget.locator("[data-action=save]").click()
    expect(budget.locator('.ai-field-error[data-field="max_models"]')).to_be_visible()
    assert panel.api("GET", "/ollama/endpoints/local/budget").json()["max_models"] == 2


def test_an_unreachable_server_shows_a_banner_and_the_page_still_works(served, standin, page):
    panel = open_page(page, served, standin)
    standin.stop()
    page.goto(panel.url + "/ai/ollama/")
    banner = page.locator("#ollama-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text(standin.url)
    expect(page.locator(".ollama-empty")).to_be_hidden()  # unreachable is not "no models yet"
    expect(page.locator('#ollama-endpoints tr[data-endpoint="local"]')).to_contain_text("Unreachable")


def test_the_import_dialog_starts_clean_names_missing_fields_and_asks_before_replacing(served, standin, page, tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(2 << 20))
    standin.seed("taken", [9_000])
    taken = standin.tags()["models"][0]
    open_page(page, served, standin)
    page.click("#ollama-import-open")
    dialog = page.locator("#ollama-import-dialog")
    # No import folder is configured, so there is no path field to fill in.
    expect(dialog.locator("[name=path]")).to_have_count(0)
    expect(dialog.locator(".ollama-no-import-folder")).to_be_visible()
    dialog.locator("[data-action=start]").click()
    expect(dialog.locator("[data-form-error]")).to_have_text("Check these fields: Model name, Upload a file.")
    expect(dialog.locator('.ai-field-error[data-field="name"]')).to_be_visible()
    expect(dialog.locator('.ai-field-error[data-field="file"]')).to_be_visible()

    dialog.locator("[name=name]").fill("tiny-import")
    dialog.locator("[name=file]").set_input_files(str(gguf))
    dialog.locator("[data-action=start]").click()
    expect(dialog).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(dialog.locator(".ollama-import-state")).to_contain_text("100.0%")
    expect(dialog.locator(".ollama-followed")).to_have_text("Importing tiny-import:latest")
    dialog.locator("button[value=close]").click()
    expect(page.locator('.ollama-model-table tr[data-model="tiny-import:latest"]')).to_be_visible()

    # Opened again, nothing of the last import is left.
    page.click("#ollama-import-open")
    expect(dialog.locator("[name=name]")).to_have_value("")
    expect(dialog.locator(".ollama-import-state")).to_have_text("")
    expect(dialog.locator("progress")).to_be_hidden()
    expect(dialog.locator("[data-form-error]")).to_be_hidden()
    # A name in use is not replaced without asking, and nothing is sent meanwhile.
    dialog.locator("[name=name]").fill("taken")
    dialog.locator("[name=file]").set_input_files(str(gguf))
    dialog.locator("[data-action=start]").click()
    expect(dialog.locator(".ollama-confirm")).to_contain_text("taken:latest")
    dialog.locator(".ollama-confirm [data-action=keep]").click()
    # A new error stands alone: no "100.0%" or "Done" of an earlier import beside it.
    dialog.locator("[name=name]").fill("bad name!")
    dialog.locator("[data-action=start]").click()
    expect(dialog.locator("[data-form-error]")).to_contain_text("Model name")
    expect(dialog.locator(".ollama-import-state")).to_have_text("")
    expect(dialog).not_to_have_attribute("data-status", "succeeded")
    assert [m for m in standin.tags()["models"] if m["name"] == "taken:latest"] == [taken]


def test_servers_are_added_with_their_version_and_removed_and_bad_input_is_explained(served, standin, page, tmp_path):
    for name, size in (("small-a", 10_000), ("small-b", 12_000), ("small-c", 11_000), ("huge", 300_000)):
        standin.seed(name, [size])
    weights = ["sha256:" + "c" * 64]
    standin.seed("twin-a", [40_000], layers=weights, family="qwen2")
    standin.seed("twin-b", [40_000], layers=weights, family="mistral")
    with OllamaStandIn(tmp_path / "old", version="0.5.1") as old:
        for name in ("one", "two", "three"):
            old.seed(name, [20_000])
        open_page(page, served, standin)
        suggestions = page.locator(".ollama-suggestions li")
        expect(suggestions).to_have_count(1)
        expect(suggestions.first).to_have_attribute("data-reason", "large")
        expect(suggestions.first).to_contain_text("huge:latest is unusually large")
        # Models that share blobs say what deleting each really frees, and with whom they share.
        twin = page.locator('.ollama-storage-models tr[data-model="twin-a:latest"]')
        expect(twin.locator(".ollama-shared")).to_contain_text("twin-b:latest")
        assert "39.1 KiB" not in twin.locator(".ollama-frees").inner_text()

        form = page.locator("#ollama-endpoint-form")
        form.locator("[name=name]").fill("old-box")
        form.locator("[name=url]").fill("http://a b:1")
        form.locator("button[type=submit]").click()
        expect(form.locator(".ollama-form-error")).to_have_text("Check these fields: Address.")
        expect(form.locator('.ai-field-error[data-field="url"]')).to_contain_text("is not an address")
        form.locator("[name=url]").fill(old.url)
        form.locator("[name=models_dir]").fill(str(old.state_dir))
        form.locator("button[type=submit]").click()
        row = page.locator('#ollama-endpoints tr[data-endpoint="old-box"]')
        expect(row).to_contain_text("Online · 0.5.1")
        expect(row.locator(".ollama-warning").first).to_contain_text("0.5.5")
        expect(form.locator(".ai-field-error")).to_have_count(0)

        # The suggestions belong to the server picked, and follow the pick.
        page.select_option("#ollama-endpoint", "old-box")
        expect(page.locator(".ollama-storage-endpoint")).to_have_text("on old-box")
        expect(page.locator(".ollama-storage-models tbody tr")).to_have_count(3)
        expect(suggestions).to_have_count(0)
        expect(page.locator(".ollama-suggestions-empty")).to_be_visible()
        page.select_option("#ollama-endpoint", "local")
        expect(page.locator(".ollama-storage-endpoint")).to_have_text("on local")
        expect(suggestions).to_have_count(1)
        row.locator("[data-action=remove]").click()
        expect(row).to_have_count(0)


def test_downloads_stay_in_view_with_progress_speed_and_cancel_after_a_reload(served, standin, page):
    standin.pull_speed = 200_000
    standin.part_size = 100_000_000  # as Ollama's parts: the part files say 0 while it downloads
    standin.manifest_delay = 1.0  # the request waits for the disk check a moment
    standin.publish("slow", [30_000_000])
    standin.publish("other", [30_000_000])
    panel = open_page(page, served, standin)
    page.click("#ollama-pull-open")
    dialog = page.locator("#ollama-pull-dialog")
    dialog.locator("[name=name]").fill("slow")
    start = dialog.locator("[data-action=start]")
    start.click()
    expect(start).to_have_attribute("aria-busy", "true")
    # The dialog follows the model, in bytes done of the total; no layer digest.
    expect(dialog.locator(".ollama-followed")).to_have_text("Downloading slow:latest")
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("MiB of 28.6 MiB", timeout=10_000)
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("/s")
    assert "pulling" not in dialog.locator(".ollama-pull-state").inner_text()
    expect(start).to_have_attribute("aria-busy", "true")  # busy while its pull runs
    dialog.locator("button[value=close]").click()
    expect(start).not_to_have_attribute("aria-busy", "true")  # closed: free for the next one

    strip = page.locator("#ollama-downloads")
    expect(strip.locator('tr[data-model="slow:latest"]')).to_be_visible()
    page.click("#ollama-pull-open")
    expect(dialog.locator("[name=name]")).to_have_value("")  # a new download starts clean
    expect(dialog.locator(".ollama-pull-state")).to_have_text("")
    dialog.locator("[name=name]").fill("other")
    dialog.locator("[data-action=start]").click()
    expect(dialog.locator(".ollama-followed")).to_have_text("Downloading other:latest")
    dialog.locator("button[value=close]").click()
    expect(strip.locator("tbody tr")).to_have_count(2)

    # After a reload both are still there, live, with speed and Cancel; storage counts them.
    page.reload()
    rows = strip.locator("tbody tr")
    expect(rows).to_have_count(2)
    slow = strip.locator('tr[data-model="slow:latest"]')
    expect(slow.locator(".ollama-task-speed")).to_contain_text("/s")
    expect(slow.locator(".ollama-task-state")).to_have_text("Downloading slow:latest")
    first = slow.locator(".ollama-task-bytes").inner_text()
    expect(slow.locator(".ollama-task-bytes")).not_to_have_text(first, timeout=10_000)
    expect(page.locator('[data-fact="partial"]')).to_contain_text("2 downloads being written now")
    assert not page.locator('[data-fact="partial"]').inner_text().startswith("0 B")

    slow.locator("[data-action=cancel]").click()
    expect(slow).to_have_attribute("data-status", "cancelled")
    expect(slow.locator("[data-action=retry]")).to_be_visible()
    slow.locator("[data-action=dismiss]").click()
    expect(rows).to_have_count(1)
    # While the panel cannot be reached, what the rows said is unknown, not "running".
    other = strip.locator('tr[data-model="other:latest"] .ollama-task-state')
    badge = page.locator('#ollama-endpoints tr[data-endpoint="local"] .ai-badge')
    panel.stop()
    expect(page.locator("#ai-connection")).to_be_visible(timeout=15_000)
    expect(other).to_have_text("Unknown")
    expect(badge).to_have_text("Unknown")
    panel.start()
    expect(page.locator("#ai-connection")).to_be_hidden(timeout=30_000)
    expect(badge).to_have_text("Online · 0.12.6")
    expect(other).to_have_text("Downloading other:latest", timeout=15_000)
    # In Chinese the row reads in Chinese.
    page.goto(panel.url + "/ai/ollama/?lang=zh-CN")
    expect(strip.locator('tr[data-model="other:latest"] .ollama-task-state')).to_have_text("正在下载 other:latest")
    standin.pull_speed = 100_000_000
    expect(strip).to_be_hidden(timeout=30_000)
    expect(page.locator('.ollama-model-table tr[data-model="other:latest"]')).to_be_visible()


def test_the_download_dialog_cancels_and_retries_from_where_it_stopped(served, standin, page):
    standin.pull_speed = 300_000
    standin.publish("slow", [20_000_000])
    open_page(page, served, standin)
    page.click("#ollama-pull-open")
    dialog = page.locator("#ollama-pull-dialog")
    dialog.locator("[name=name]").fill("slow")
    pulls = []
    page.on(
        "request",
        lambda request: (
            request.method == "POST" and request.url.endswith("/api/v2/ai/ollama/pulls") and pulls.append(request.url)
        ),
    )
    start = dialog.locator("[data-action=start]")
    start.click()
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("/s", timeout=10_000)
    # While the pull runs, Download stays busy: a second click, a script turning the button
    # back on, or Enter in the name field start nothing.
    expect(start).to_have_attribute("aria-busy", "true")
    start.click(force=True)
    page.evaluate("""() => { const b = document.querySelector('#ollama-pull-dialog [data-action=start]');
                             b.disabled = false; b.click(); }""")
    dialog.locator("[name=name]").press("Enter")
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("/s")
    assert len(pulls) == 1  # one request to start a pull, however often it was asked
    expect(dialog.locator("[data-action=cancel]")).to_have_text("Cancel")
    dialog.locator("[data-action=cancel]").click()
    expect(dialog).to_have_attribute("data-status", "cancelled")
    expect(start).not_to_have_attribute("aria-busy", "true")  # the pull ended
    expect(dialog.locator("[data-action=retry]")).to_have_text("Retry")
    standin.pull_speed = 100_000_000
    dialog.locator("[data-action=retry]").click()
    expect(dialog).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(start).not_to_have_attribute("aria-busy", "true")
    assert max(standin.pull_log[-1]["first_completed"].values()) > 0  # it continued
    assert len(pulls) == 1  # the retry continued that task, it sent no second pull


def test_a_gguf_upload_shows_its_progress_and_cancel_stops_it_keeping_nothing(served, standin, page, tmp_path):
    big = tmp_path / "big.gguf"
    with open(big, "wb") as out:  # sparse: cheap to make, as large as it says to send
        out.write(b"GGUF")
        out.truncate(400 << 20)
    panel = open_page(page, served, standin)
    uploads = panel.data_dir / "ollama-uploads"
    # The browser sends at 8 MiB/s, so the upload is still under way when Cancel is pressed.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 8 << 20},
    )
    page.click("#ollama-import-open")
    dialog = page.locator("#ollama-import-dialog")
    dialog.locator("[name=name]").fill("big")
    dialog.locator("[name=file]").set_input_files(str(big))
    start = dialog.locator("[data-action=start]")
    start.click()
    line = dialog.locator(".ollama-upload-progress")
    expect(line).to_contain_text(re.compile(r"Sending the file: [\d.]+ \w*B of 400\.0 MiB"), timeout=15_000)
    expect(line).to_contain_text("/s")
    expect(line).to_contain_text("seconds left")
    expect(start).to_have_attribute("aria-busy", "true")
    wait_for(lambda: uploads.is_dir() and any(uploads.iterdir()), what="the panel writing the upload")
    sent = int(line.get_attribute("data-sent"))
    assert 0 < sent < 400 << 20
    assert 0 < dialog.locator("progress").evaluate("node => node.value") < 100

    dialog.locator("[data-action=cancel]").click()
    expect(dialog.locator(".ollama-import-state")).to_have_text("The upload was cancelled; nothing of it is kept.")
    expect(line).to_be_hidden()
    expect(start).not_to_have_attribute("aria-busy", "true")
    wait_for(lambda: not any(uploads.iterdir()), what="the panel removing the partial upload")
    assert panel.api("GET", "/tasks?kind=ollama.import").json()["tasks"] == []
    assert [m for m in standin.tags()["models"] if m["name"].startswith("big")] == []


def test_partial_downloads_are_deleted_from_storage_after_a_confirm_and_the_freed_bytes_said(served, standin, page):
    import os
    import time

    standin.seed("qwen2:0.5b", [352_000])
    complete = [p for p in standin.blobs.iterdir() if "partial" not in p.name]
    stale = standin.blobs / ("sha256-" + "d" * 64 + "-partial")
    stale.write_bytes(os.urandom(200_000))
    part = stale.with_name(stale.name + "-0")
    part.write_text('{"N": 0, "Offset": 0, "Size": 200000, "Completed": 200000}')
    for path in (stale, part):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    freed = sum(min(p.stat().st_blocks * 512, p.stat().st_size) for p in (stale, part))
    open_page(page, served, standin)
    button = page.locator('#ollama-storage [data-fact="partial"] #ollama-partials-delete')
    expect(button).to_be_visible()
    expect(button).to_have_text("Delete partial downloads")

    # Answering No to the confirm deletes nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    button.click()
    expect(button).to_be_enabled()
    assert stale.exists() and part.exists()

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    button.click()
    said = page.evaluate("n => AI.formatBytes(n)", freed)
    expect(page.locator(".ai-toast").last).to_contain_text(f"Freed {said} of partial downloads.")
    assert "local" in asked[0]
    assert not stale.exists() and not part.exists() and all(p.exists() for p in complete)
    # Storage is read again: nothing partial is left, so the button goes.
    expect(page.locator('[data-fact="partial"]')).to_have_text("0 B")
    expect(page.locator("#ollama-partials-delete")).to_be_hidden()
