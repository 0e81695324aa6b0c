"""The Ollama page kept current by the endpoint watcher, in real Chromium (Debian's, driven by
Playwright): changes made outside the panel show without a reload, loaded models count down
to their unload, and an import under way is still shown after a reload."""

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_outside_changes_show_live_loaded_models_count_down_and_an_import_survives_a_reload(served, page, tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + bytes(1 << 20))
    with OllamaStandIn(tmp_path / "models") as standin:
        standin.seed("llama3.2", [3_000_000])
        panel = served(
            env={
                "OPEN1PANEL_AI_TOKEN": TOKEN,
                "OLLAMA_HOST": standin.url,
                "OLLAMA_MODELS": str(standin.state_dir),
                "OPEN1PANEL_AI_OLLAMA_WATCH_INTERVAL": "0.3",
            }
        )
        page.goto(panel.url + "/ai/ollama/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.goto(panel.url + "/ai/ollama/")
        expect(page.locator('.ollama-model-table tr[data-model="llama3.2:latest"]')).to_be_visible()
        loads = []
        page.on("framenavigated", lambda frame: loads.append(frame.url))

        # `ollama pull` on the server, then another client loading the model for 90 s.
        standin.seed("qwen2:0.5b", [500_000])
        expect(page.locator('.ollama-model-table tr[data-model="qwen2:0.5b"]')).to_be_visible()
        httpx.post(standin.url + "/api/generate", json={"model": "qwen2:0.5b", "keep_alive": "90s"}).raise_for_status()
        row = page.locator('#ollama-running tr[data-model="qwen2:0.5b"]')
        expires = row.locator(".ollama-expires")
        expect(expires).to_contain_text("in 1:")
        expect(row).to_have_attribute("data-vram-share", "100")
        expect(page.locator('.ollama-model-table tr[data-model="qwen2:0.5b"] .ollama-loaded')).to_contain_text("Loaded")
        first = int(expires.get_attribute("data-seconds-left"))
        assert 60 < first <= 90
        expect(expires).not_to_have_attribute("data-seconds-left", str(first))
        assert int(expires.get_attribute("data-seconds-left")) < first  # counting down, not up

        # `ollama rm` on the server.
        next(standin.manifests.rglob("0.5b")).unlink()
        expect(page.locator('.ollama-model-table tr[data-model="qwen2:0.5b"]')).to_have_count(0)
        assert loads == []  # all of it without a reload

        # An import under way is still shown after a reload.
        standin.create_delay = 30.0
        with gguf.open("rb") as body:
            started = panel.api(
                "POST",
                "/ollama/imports?name=mine",
                content=body.read(),
                headers={"Content-Type": "application/octet-stream"},
            )
        assert started.status_code == 202, started.text
        page.reload()
        imported = page.locator('#ollama-downloads tr[data-kind="ollama.import"][data-model="mine:latest"]')
        expect(imported).to_be_visible(timeout=10_000)
        expect(imported.locator("[data-action=cancel]")).to_be_visible()
        imported.locator("[data-action=cancel]").click()
        expect(imported).to_have_attribute("data-status", "cancelled", timeout=15_000)


def test_ollama_back_before_the_page_subscribed_still_shows(served, page, tmp_path):
    """The page loads the models, then subscribes to the ``ollama`` topic. When Ollama comes
    back in between, the watcher tells its subscribers, and the page is not one yet: once the
    server confirms its subscription, the page loads what it shows again."""
    standin = OllamaStandIn(tmp_path / "models").start()
    standin.seed("llama3.2", [3_000_000])
    try:
        panel = served(
            env={
                "OPEN1PANEL_AI_TOKEN": TOKEN,
                "OLLAMA_HOST": standin.url,
                "OPEN1PANEL_AI_OLLAMA_WATCH_INTERVAL": "0.3",
            }
        )
        page.goto(panel.url + "/ai/ollama/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        standin.stop()
        assert panel.api("GET", "/ollama/models?max_age=0").json()["error"]["code"] == "ollama_unreachable"

        held = []  # the page's /ai link, kept from the server until Ollama is back
        page.route_web_socket("**/socket.io/**", lambda ws: held.append(ws))
        page.goto(panel.url + "/ai/ollama/")
        expect(page.locator("#ollama-banner")).to_contain_text("cannot be reached")
        assert len(held) == 1

        standin = OllamaStandIn(standin.state_dir).start(port=standin.port)
        assert panel.api("GET", "/ollama/models?max_age=0").status_code == 200  # the watcher has seen it back
        held[0].connect_to_server()
        expect(page.locator('.ollama-model-table tr[data-model="llama3.2:latest"]')).to_be_visible()
        expect(page.locator("#ollama-banner")).to_be_hidden()
    finally:
        standin.stop()
