"""Issue 11, part 2, finding 4: model names that come back from Ollama are untrusted.

A server at an endpoint listed a model named ``../../mcp/servers/<id>``. The page built the
Delete request from the name, ``encodeURIComponent`` left ``..`` as it was, the browser resolved
the dot segments, and Delete on that row sent ``DELETE /api/v2/ai/mcp/servers/<id>``: an MCP
server was gone. The service now checks every listed name with the grammar the API takes names
in, and flags those that fail (``name_valid: false``); the page offers no action on them, and
builds no request path with a dot segment in it.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TOKEN
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "models") as server:
        yield server


def test_a_hostile_model_name_offers_no_action_and_an_mcp_server_survives(served, standin, page):
    standin.seed("llama3.2", [3_000_000])
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OLLAMA_HOST": standin.url})
    victim = panel.api(
        "POST", "/mcp/servers", json={"name": "victim", "command": ["python3", "-c", "pass"], "autostart": False}
    )
    assert victim.status_code == 201, victim.text
    victim = victim.json()
    hostile = f"../../mcp/servers/{victim['id']}"
    standin.list_as_is(hostile, running=True)
    standin.list_as_is("llama3.2:latest\n")  # a name with something after it is not a name either

    models = {m["name"]: m for m in panel.api("GET", "/ollama/models").json()["models"]}
    assert models[hostile]["name_valid"] is False
    assert models["llama3.2:latest\n"]["name_valid"] is False
    assert models["llama3.2:latest"]["name_valid"] is True
    running = {m["name"]: m for m in panel.api("GET", "/ollama/running").json()["models"]}
    assert running[hostile]["name_valid"] is False

    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    page.goto(panel.url + "/ai/ollama/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.goto(panel.url + "/ai/ollama/")

    row = page.locator(f'.ollama-model-table tr[data-model="{hostile}"]')
    expect(row).to_be_visible()
    expect(row.locator(".ollama-invalid-name")).to_have_text(
        "Not a valid model name: this server may not be Ollama. No action is offered for it."
    )
    expect(row.locator("button")).to_have_count(0)
    expect(page.locator(f'#ollama-running tr[data-model="{hostile}"]')).to_be_visible()
    expect(page.locator(f'#ollama-running tr[data-model="{hostile}"] button')).to_have_count(0)
    # A model whose name is sound keeps its actions.
    expect(page.locator('.ollama-model-table tr[data-model="llama3.2:latest"] [data-action=delete]')).to_be_visible()

    # Nothing the page sent reached the MCP routes, and the MCP server is still there.
    page.reload()
    expect(row).to_be_visible()
    assert not [url for _, url in requests if "/mcp/" in url], requests
    assert panel.api("GET", f"/mcp/servers/{victim['id']}").status_code == 200

    # Should an answer come without the flag (a panel of an earlier version behind the page),
    # the page still builds no path that climbs: Delete says why and sends nothing.
    def without_flags(route):
        answer = route.fetch()
        data = answer.json()
        for model in data["models"]:
            model.pop("name_valid", None)
        route.fulfill(response=answer, json=data)

    page.route("**/api/v2/ai/ollama/models?*", without_flags)
    page.reload()
    row.locator("[data-action=delete]").click()
    dialog = page.locator("#ollama-delete-dialog")
    dialog.locator("[data-action=delete]").click()
    expect(dialog.locator("[data-form-error]")).to_contain_text("Not a valid model name")
    assert not [url for _, url in requests if "/mcp/" in url], requests
    assert not [url for method, url in requests if method == "DELETE"], requests
    assert panel.api("GET", f"/mcp/servers/{victim['id']}").status_code == 200

    # Sent by hand with its slashes encoded, the name reaches the model route and is refused there.
    answer = httpx.delete(
        panel.url + "/api/v2/ai/ollama/models/..%2F..%2Fmcp%2Fservers%2F" + victim["id"],
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_model_name", answer.text
    assert panel.api("GET", f"/mcp/servers/{victim['id']}").status_code == 200
