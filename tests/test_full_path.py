"""One full path through the panel in real Chromium, the way an admin walks it: sign in, pull a
model and watch it finish, start an MCP server and copy its Cursor config, watch the GPU widget,
bind a domain to the Ollama API and reach the model server through nginx with it.

Everything is real (the served panel, nginx, ``mcp-server-time``, Chromium, its clipboard)
except Ollama, which is the stand-in, and NVML, which is a fake one-GPU machine whose readings
move with the clock. Each step saves a screenshot: into ``$OPEN1PANEL_AI_SCREENSHOTS`` when that
is set (the README's images in ``docs/screenshots/`` come from such a run), else into the test's
temp folder.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from open1panel_ai.context import DATABASE_NAME
from open1panel_ai.gpu.history import History
from open1panel_ai.store import Store
from tests.conftest import PLUGINS_DIR, TOKEN, free_port
from tests.domain import conftest as domain_fixtures
from tests.ollama_standin import OllamaStandIn

pytestmark = [pytest.mark.server, pytest.mark.browser]

REPO = Path(__file__).parent.parent
DOMAIN = "ollama.example.com"
VIEWPORT = {"width": 1280, "height": 800}

#: The simulated GPU: an L40S holding a model in 11 GiB of its memory.
GPU_CARD = {
    "name": "NVIDIA L40S",
    "uuid": "GPU-5f3c2a10-8e44-4b1d-9a0e-3c1f2d7b6e91",
    "memory_total": 48 * 2**30,
    "memory_used": 11 * 2**30,
    "power_limit_mw": 350_000,
    "fan": 42,
}


def gpu_load(moment: float) -> dict[str, int]:
    """The simulated GPU's load at a Unix time: a slow swell of requests with quicker bursts,
    so its figures change from one half-second sample to the next."""
    swell = math.sin(moment / 40)
    burst = math.sin(moment / 3.1)
    utilization = round(min(99, max(3, 58 + 26 * swell + 13 * burst)))
    return {
        "utilization": utilization,
        "memory_utilization": round(utilization * 0.55),
        "temperature": round(44 + utilization * 0.3),
        "power_w": round(90 + utilization * 2.4),
    }


#: ``pynvml`` for the served panel: the fake NVML of ``tests/gpu`` with :data:`GPU_CARD`
#: following :func:`gpu_load`, and a process of the panel on it.
BUSY_GPU_MODULE = """
import math
import os
import sys
import time

from tests.gpu.fake_pynvml import FakeGPU, FakeNVML, FakeProcess

GPU_LOAD


class BusyNVML(FakeNVML):
    def _gpu(self, handle, reading):
        gpu = super()._gpu(handle, reading)
        load = gpu_load(time.time())
        gpu.utilization = (load["utilization"], load["memory_utilization"])
        gpu.temperature = load["temperature"]
        gpu.power_mw = 1000 * load["power_w"]
        return gpu


card = FakeGPU(**GPU_CARD, compute=[FakeProcess(os.getpid(), 9 * 2**30)])
sys.modules[__name__] = BusyNVML([card]).module()
""".replace("GPU_LOAD", inspect.getsource(gpu_load)).replace("GPU_CARD", repr(GPU_CARD))


def seed_gpu_history(data_dir: Path, minutes: int = 10) -> None:
    """Record the last minutes of the simulated GPU in the panel's history, as a panel that has
    been running a while has them, so the charts open full."""
    store = Store(data_dir / DATABASE_NAME)
    history = History(store)
    now = time.time()
    for moment in range(int(now) - 60 * minutes, int(now), 5):
        load = gpu_load(moment)
        history.record(
            moment,
            {
                GPU_CARD["uuid"]: {
                    "utilization_gpu": load["utilization"],
                    "utilization_memory": load["memory_utilization"],
                    "memory_used": GPU_CARD["memory_used"],
                    "memory_total": GPU_CARD["memory_total"],
                    "temperature": load["temperature"],
                    "power_draw_w": load["power_w"],
                }
            },
        )
    store.close()


@pytest.fixture
def shots(tmp_path):
    """``shots(page, name)`` saves a 1280×800 screenshot of the page (``full=True``: the whole
    page) as ``<name>.png``."""
    folder = Path(os.environ.get("OPEN1PANEL_AI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page, name: str, full: bool = False) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full)
        return path

    return shoot


@pytest.fixture
def ollama(tmp_path):
    """The stand-in with two models on disk and a third, 1.3 GB, to pull in about six seconds."""
    with OllamaStandIn(tmp_path / "ollama", pull_speed=220_000_000) as standin:
        standin.seed("qwen2.5:7b", [4_683_073_184, 11_343, 6_016], family="qwen2", parameter_size="7.6B")
        standin.seed(
            "nomic-embed-text",
            [274_290_656, 11_357],
            family="nomic-bert",
            parameter_size="137M",
            quantization_level="F16",
        )
        standin.publish("llama3.2:1b", [1_321_082_688, 1_429, 7_711, 6_016])
        yield standin


#: nginx on loopback ports, publishing the sites the panel writes: the domain tests' fixture.
nginx = domain_fixtures.nginx


@pytest.fixture
def panel(served, ollama, nginx, tmp_path):
    """The served panel with the stand-in as ``local``, nginx as the domain provider, the busy
    GPU as NVML, and the virtualenv's programs (``mcp-server-time``) on PATH."""
    site = tmp_path / "busy-gpu"
    site.mkdir()
    (site / "pynvml.py").write_text(BUSY_GPU_MODULE)
    env = {
        "OPEN1PANEL_AI_TOKEN": TOKEN,
        "OLLAMA_HOST": ollama.url,
        "OLLAMA_MODELS": str(ollama.state_dir),
        "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx",
        "OPEN1PANEL_AI_GPU_INTERVAL": "0.5",
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO), str(PLUGINS_DIR)]),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    for key, value in nginx.settings(tmp_path / "unused").items():
        if key != "data_dir":
            env["OPEN1PANEL_AI_" + key.upper()] = value
    data_dir = tmp_path / "panel-data"
    seed_gpu_history(data_dir)
    return served(env=env, data_dir=data_dir)


@pytest.fixture
def page(browser):
    """An English 1280×800 page whose clipboard the page may write and read."""
    context = browser.new_context(locale="en-US", viewport=VIEWPORT, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    yield page
    context.close()


def open_menu(page, menu_id: str, heading: str) -> None:
    """Go to a page through the panel's menu, as a user does."""
    page.locator(f'nav a[data-menu="{menu_id}"]').click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator('nav a[aria-current="page"]')).to_have_attribute("data-menu", menu_id)


def sign_in(page, panel, shots) -> None:
    """The panel asks for the token first; signed in, the landing page shows every feature ready."""
    page.goto(panel.url + "/ai/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("nav")).to_have_count(0)  # nothing of the panel before signing in
    page.fill("#token", TOKEN)
    shots(page, "login")
    page.click("button[type=submit]")
    expect(page).to_have_url(panel.url + "/ai/")
    for kind in ("ollama", "mcp", "gpu", "domain"):
        expect(page.locator(f'.ai-card[data-kind="{kind}"] .ai-badge')).to_have_text("Ready")


def pull_a_model(page, shots) -> None:
    """Pull through the download dialog: the bar moves with speed and time left, then the new
    model is in the list, with no reload."""
    open_menu(page, "ollama", "Ollama models")
    expect(page.locator('#ollama-endpoints tr[data-endpoint="local"]')).to_contain_text("Online · 0.12.6")
    models = page.locator(".ollama-model-table tbody tr")
    expect(models).to_have_count(2)

    page.get_by_role("button", name="Pull a model").click()
    dialog = page.locator("#ollama-pull-dialog")
    dialog.locator("[name=name]").fill("llama3.2:1b")
    dialog.get_by_role("button", name="Download").click()
    expect(dialog).to_have_attribute("data-status", "running")
    # The bar moves, with speed and time left: caught part way, then full.
    moving = page.wait_for_function(
        """() => {
        const bar = document.querySelector('#ollama-pull-dialog progress');
        const line = document.querySelector('#ollama-pull-dialog .ollama-pull-state').textContent;
        return !bar.hidden && bar.value > 20 && bar.value < 80 && line.includes('/s') && line; }""",
        timeout=15_000,
    )
    shots(page, "ollama-pull")
    assert re.match(r"\d+\.\d% · [\d.]+ MiB/s · \d+ s left", moving.json_value()), moving.json_value()
    expect(dialog).to_have_attribute("data-status", "succeeded", timeout=20_000)
    assert dialog.locator("progress").evaluate("bar => bar.value") == 100
    expect(dialog.locator(".ollama-pull-state")).to_contain_text("100.0%")
    dialog.get_by_role("button", name="Close").click()

    pulled = page.locator('.ollama-model-table tr[data-model="llama3.2:1b"]')
    expect(pulled).to_contain_text("1.2 GiB")
    expect(pulled).to_contain_text("Q4_K_M")
    expect(models).to_have_count(3)
    shots(page, "ollama-models", full=True)


def start_an_mcp_server_and_copy_its_cursor_config(page, panel, shots) -> None:
    """Add ``mcp-server-time``, start it, see its tools, and copy its Cursor config: the
    clipboard holds JSON that reaches the running server with its token."""
    open_menu(page, "ai-mcp", "MCP servers")
    expect(page.locator(".ai-live")).to_have_text("Live")
    page.get_by_role("button", name="Add server").click()
    form = page.locator("#mcp-form")
    form.locator('input[name="name"]').fill("time")
    form.locator('textarea[name="command"]').fill("mcp-server-time\n--local-timezone\nUTC")
    form.locator('input[name="port"]').fill(str(free_port()))
    form.locator('button[type="submit"]').click()

    row = page.locator('#mcp-rows tr:has(strong:text-is("time"))')
    expect(row.locator(".mcp-source")).to_have_text("mcp-server-time --local-timezone UTC")
    row.get_by_role("button", name="Start").click()
    expect(row.locator(".mcp-status")).to_have_text("Running", timeout=30_000)
    url = row.locator(".mcp-url").first.inner_text()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", url), url

    row.get_by_role("button", name="Tools").click()
    tools = page.locator("#mcp-tools-dialog")
    expect(tools.locator(".mcp-tools-state")).to_have_text("2 tools")
    expect(tools.locator(".mcp-tool strong")).to_have_text(["get_current_time", "convert_time"])
    tools.get_by_role("button", name="Close").click()
    shots(page, "mcp-servers")

    row.get_by_role("button", name="Client config").click()
    config = page.locator("#mcp-config-dialog")
    page.select_option("#mcp-config-client", "cursor")
    expect(config.locator(".mcp-config-path")).to_contain_text("~/.cursor/mcp.json")
    expect(config.locator(".mcp-config-snippet")).to_contain_text(url)
    shots(page, "mcp-client-config")
    page.evaluate("navigator.clipboard.writeText('')")
    config.get_by_role("button", name="Copy").click()
    copied = json.loads(page.evaluate("navigator.clipboard.readText()"))
    entry = copied["mcpServers"]["time"]
    assert entry["url"] == url
    [server] = panel.api("GET", "/mcp/servers").json()["servers"]
    header = entry["headers"]["Authorization"]
    assert header.startswith("Bearer ") and header.endswith(server["token_hint"])
    # The copied config is what a client needs: the server answers it, and nothing without it.
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "cursor", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(url, json=initialize, headers=accept, timeout=10).status_code == 401
    answer = httpx.post(url, json=initialize, headers={**accept, **entry["headers"]}, timeout=10)
    assert answer.status_code == 200
    # The bridge passes the server's own answer through: it names itself.
    assert answer.json()["result"]["serverInfo"]["name"] == "mcp-time"
    config.get_by_role("button", name="Close").click()


def watch_the_gpu(page, shots) -> None:
    """The GPU page shows the card with live figures, the process, passed checks and charts
    that already hold the last ten minutes."""
    open_menu(page, "gpu", "GPU monitoring")
    widget = page.locator("#gpu-monitor")
    expect(widget).to_have_attribute("data-mode", "gpu")
    expect(widget.locator(".gpu-live")).to_have_text("live")
    card = widget.locator(".gpu-card")
    expect(card).to_have_count(1)
    expect(card.locator("h3")).to_have_text("0: NVIDIA L40S")
    expect(card).to_contain_text("11.0 GiB / 48.0 GiB")
    expect(card).to_contain_text("/ 350 W")
    expect(widget.locator(".gpu-processes tbody tr")).to_have_count(1)
    expect(widget.locator(".gpu-checks-summary")).to_have_text("everything passed")
    # The figures move as samples arrive every half second.
    utilization = card.locator("dd").first
    before = utilization.inner_text()
    expect(utilization).not_to_have_text(before, timeout=5_000)
    shots(page, "gpu", full=True)
    # The charts open with the last ten minutes: the line (the GPU's blue) runs from the left.
    blue_on_the_left = widget.locator('[data-chart="utilization"] canvas').evaluate("""canvas => {
        const pixels = canvas.getContext('2d').getImageData(
            Math.round(canvas.width * 0.2), 0, Math.round(canvas.width * 0.2), canvas.height).data;
        let blue = 0;
        for (let i = 0; i < pixels.length; i += 4)
            if (pixels[i] < 90 && pixels[i + 1] < 150 && pixels[i + 2] > 200) blue++;
        return blue; }""")
    assert blue_on_the_left > 20, blue_on_the_left


def bind_a_domain(page, nginx, shots) -> None:
    """Bind a domain to the Ollama API from the Domains page; once it is online, nginx answers
    that domain with Ollama's API for the token shown once, and 401 without it."""
    open_menu(page, "ai-domain", "Domains")
    expect(page.locator("#domain-provider")).to_have_text("Published through nginx.")
    expect(page.locator("#domain-empty")).to_be_visible()
    page.get_by_role("button", name="Bind a domain").click()
    dialog = page.locator("#domain-dialog")
    expect(dialog.locator("#domain-field-target-kind")).to_have_value("ollama")
    expect(dialog.locator("#domain-field-target-name")).to_have_value("local")
    expect(dialog.locator("#domain-field-auth-mode")).to_have_value("bearer")
    dialog.locator("#domain-field-domains").fill(DOMAIN)
    expect(dialog.locator(".domain-preview")).to_contain_text(f"server_name {DOMAIN};")
    dialog.get_by_role("button", name="Save and apply").click()
    expect(dialog.locator(".domain-state")).to_have_text("Online")
    expect(dialog.locator(".domain-url")).to_have_text(f"http://{DOMAIN}:{nginx.http_port}")
    token = dialog.locator(".domain-token-value").inner_text()
    shots(page, "domain-dialog")
    dialog.get_by_role("button", name="Close").click()

    row = page.locator("#domain-bindings tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(DOMAIN)
    expect(row.locator(".domain-row-state")).to_have_text("Online")
    shots(page, "domains")
    # Through nginx, with the Host of the new domain, the token reaches Ollama's API.
    assert nginx.get(DOMAIN, "/api/tags").status_code == 401
    tags = nginx.get(DOMAIN, "/api/tags", headers={"Authorization": f"Bearer {token}"})
    assert tags.status_code == 200
    assert "llama3.2:1b" in {model["name"] for model in tags.json()["models"]}


def test_sign_in_pull_start_mcp_watch_the_gpu_and_bind_a_domain(panel, nginx, page, shots):
    sign_in(page, panel, shots)
    pull_a_model(page, shots)
    start_an_mcp_server_and_copy_its_cursor_config(page, panel, shots)
    watch_the_gpu(page, shots)
    bind_a_domain(page, nginx, shots)
