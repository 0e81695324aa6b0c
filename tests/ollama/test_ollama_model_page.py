"""OllamaModelPage in real Chromium: chat (streamed, stopped, asked before evicting past the
budget), build a new model, benchmark (their progress pushed over Socket.IO, never polled),
and the embed test."""

import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.helpers import wait_for
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_try_build_and_benchmark_a_model_on_its_page(served, page, tmp_path):
    with OllamaStandIn(tmp_path / "models") as standin:
        standin.seed("llama3.2", [3_000_000])
        standin.seed("qwen2:0.5b", [500_000])
        standin.seed("all-minilm", [100_000], family="bert")
        standin.token_delay = 0.05
        panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url})
        assert panel.api("PUT", "/ollama/endpoints/local/budget", json={"max_models": 1}).status_code == 200
        assert panel.api("POST", "/ollama/models/qwen2:0.5b/load", json={}).status_code == 204
        page.goto(panel.url + "/ai/ollama/")
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.goto(panel.url + "/ai/ollama/")
        task_reads = []  # by the model's page (the list's page reads its downloads once subscribed)
        page.on(
            "request",
            lambda request: (
                "/api/v2/ai/tasks" in request.url
                and "/ai/ollama/model?" in (request.headers.get("referer") or "")
                and task_reads.append(request.url)
            ),
        )
        page.locator('.ollama-model-table tr[data-model="llama3.2:latest"] [data-action=open]').click()
        expect(page.locator("#ollama-model-name")).to_have_text("llama3.2:latest")
        expect(page.locator("html")).to_have_attribute("data-connection", "up")
        expect(page.locator(".ollama-bench-empty")).to_be_visible()  # no result yet: says to run one

        # Chat: past the budget the page asks first, and unloads only once told to.
        chat = page.locator("#ollama-chat-form")
        expect(chat).to_be_visible()
        chat.locator("[name=system]").fill("You are terse.")
        chat.locator("[name=temperature]").fill("0.2")
        chat.locator("[name=num_ctx]").fill("2048")
        chat.locator("[name=message]").fill("hello there")
        chat.locator("[data-action=send]").click()
        evict = page.locator("#ollama-evict")
        expect(evict).to_be_visible()
        expect(evict).to_contain_text("qwen2:0.5b")
        assert [m["name"] for m in standin.ps()["models"]] == ["qwen2:0.5b"]
        evict.locator("[data-action=evict]").click()
        expect(page.locator("#ollama-chat-figures")).to_be_visible(timeout=15_000)
        expect(page.locator('#ollama-chat-log [data-role="assistant"]')).to_have_text(standin.reply)
        expect(page.locator('[data-figure="tokens_per_second"]')).to_have_text("40.0 tok/s")
        expect(page.locator('[data-figure="load_ms"]')).to_have_text("1500.0 ms")
        sent = standin.chat_log[-1]["body"]
        assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
        assert sent["options"] == {"temperature": 0.2, "num_ctx": 2048}
        assert [m["name"] for m in standin.ps()["models"]] == ["llama3.2:latest"]

        # The stop button ends the answer, and Ollama stops generating.
        standin.token_delay = 0.4
        chat.locator("[name=message]").fill("and again")
        chat.locator("[data-action=send]").click()
        second = page.locator('#ollama-chat-log [data-role="assistant"]').nth(1)
        expect(second).to_contain_text("quick", timeout=10_000)
        chat.locator("[data-action=stop]").click()
        expect(page.locator('#ollama-chat-log [data-stopped="true"]')).to_have_count(1)
        wait_for(lambda: standin.chat_log[-1].get("cut"), what="Ollama to see the chat closed")
        assert len(standin.chat_log[-1]["tokens"]) < len(standin.reply.split())
        standin.token_delay = 0

        # Build: "Edit as new model" fills the form from show; the preview shows the request.
        page.click("#ollama-build-edit")
        build = page.locator("#ollama-build-form")
        expect(build).to_have_attribute("data-filled", "true")
        expect(build.locator("[name=template]")).to_have_value("{{ .Prompt }}")
        build.locator("[name=name]").fill("terse")
        build.locator("[name=system]").fill("Answer in five words.")
        build.locator("[data-action=preview]").click()
        expect(page.locator("#ollama-build-preview")).to_contain_text('"from": "llama3.2:latest"')
        expect(page.locator("#ollama-build-preview")).to_contain_text('"stop": [')
        build.locator("[data-action=build]").click()
        expect(build).to_have_attribute("data-status", "succeeded", timeout=15_000)
        assert standin.create_log[-1]["system"] == "Answer in five words."

        # Benchmark: a task with progress, then a row in the table.
        bench = page.locator("#ollama-bench-form")
        bench.locator("[name=runs]").fill("1")
        bench.locator("[data-action=bench]").click()
        expect(bench).to_have_attribute("data-status", "succeeded", timeout=20_000)
        row = page.locator('.ollama-bench-table tr[data-model="llama3.2:latest"]')
        expect(row).to_contain_text("40.0")
        # Both tasks were followed over Socket.IO alone: the page never asked for a task.
        assert task_reads == []
        # A result is deleted from its row.
        row.get_by_role("button", name="Delete the result of llama3.2:latest on local").click()
        expect(row).to_have_count(0)
        expect(page.locator(".ollama-bench-empty")).to_be_visible()
        assert panel.api("GET", "/ollama/benchmarks").json()["results"] == []

        # An embedding model gets an embed test instead of a chat.
        page.goto(panel.url + "/ai/ollama/model?endpoint=local&name=all-minilm:latest")
        embed = page.locator("#ollama-embed-form")
        expect(embed).to_be_visible()
        expect(page.locator("#ollama-chat-form")).to_be_hidden()
        embed.locator("[name=input]").fill("hello")
        panel.api("PUT", "/ollama/endpoints/local/budget", json={"max_models": None})
        embed.locator("[data-action=embed]").click()
        expect(page.locator("#ollama-embed-result")).to_have_attribute("data-dimensions", "384")
