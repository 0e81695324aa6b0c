"""The design system in real Chromium (Debian's, driven by Playwright), with ONE served panel
and ONE browser for the whole module: every page and its dialogs in both themes and both
languages checked by axe-core (tests/vendor/axe-core, injected here, never served), phone width
with no horizontal page scroll, keyboard use of dialogs, the theme toggle, busy buttons, toasts
and copyable code blocks. With ``OPEN1PANEL_AI_SCREENSHOTS=<folder>`` it also saves the light,
dark and phone screenshots the README shows."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, PLUGINS_DIR, TOKEN, ServedPanel, free_port
from tests.domain.conftest import NginxServer
from tests.helpers import TIME_SERVER
from tests.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
FAKE_SITE = Path(__file__).parent / "gpu" / "fake_site"
SCREENSHOTS = os.environ.get("OPEN1PANEL_AI_SCREENSHOTS")

#: Every page of the plugin, and the dialogs each opens (the button that opens it, the dialog).
PAGES = {
    "/ai/": [],
    "/ai/ollama/": [
        ("#ollama-pull-open", "#ollama-pull-dialog"),
        ("#ollama-import-open", "#ollama-import-dialog"),
        (".ollama-model-table button[data-action=load]", "#ollama-load-dialog"),
        (".ollama-model-table button[data-action=copy]", "#ollama-copy-dialog"),
        (".ollama-model-table button[data-action=delete]", "#ollama-delete-dialog"),
        (".ollama-model-table button[data-action=details]", "#ollama-details-dialog"),
        ("#ollama-endpoints button[data-action=budget]", "#ollama-budget-dialog"),
    ],
    "/ai/ollama/model?endpoint=local&name=qwen2:0.5b": [],
    "/ai/ollama/server/": [],
    "/ai/mcp/": [
        ("#mcp-add", "#mcp-form-dialog"),
        ("#mcp-import-open", "#mcp-import-dialog"),
        ("#mcp-rows button[data-action=config]", "#mcp-config-dialog"),
        ("#mcp-rows button[data-action=token]", "#mcp-token-dialog"),
    ],
    "/ai/gpu/": [],
    "/ai/domains/": [("#domain-new", "#domain-dialog")],
    "/ai/alerts/": [("#alerts-channel-new", "#alerts-channel-dialog")],
    "/plugins": [],
}


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """One panel with something on every page: an Ollama stand-in with a model, a simulated
    three-GPU machine, an MCP server, and a real nginx so domains can be bound."""
    tmp = tmp_path_factory.mktemp("design")
    with OllamaStandIn(tmp / "ollama") as ollama:
        ollama.seed("qwen2:0.5b", [352_000_000])
        nginx = NginxServer(tmp / "nginx").start()
        env = {
            "OPEN1PANEL_AI_TOKEN": TOKEN,
            "OLLAMA_HOST": ollama.url,
            "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx",
            "OPEN1PANEL_AI_GPU_INTERVAL": "1",
            "PYTHONPATH": os.pathsep.join([str(FAKE_SITE), str(PLUGINS_DIR), os.environ.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
        }
        env.update(
            {"OPEN1PANEL_AI_" + key.upper(): value for key, value in nginx.settings(tmp).items() if key != "data_dir"}
        )
        served = ServedPanel(tmp / "data", env=env).start()
        try:
            created = served.api(
                "POST",
                "/mcp/servers",
                json={"name": "time", "command": TIME_SERVER, "port": free_port(), "autostart": False},
            )
            assert created.status_code == 201, created.text
            served.mcp_id = created.json()["id"]
            yield served
        finally:
            served.stop()
            nginx.stop()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def signed_in(chromium, panel, *, theme="light", lang="en", phone=False, axe=False):
    """A browser page signed in to the panel, in `lang`, on a system preferring `theme`; with
    `axe`, the panel's Content-Security-Policy lets the test inject axe-core."""
    context = chromium.new_context(
        bypass_csp=axe,
        locale="zh-CN" if lang == "zh-CN" else "en-US",
        color_scheme=theme,
        viewport={"width": 390, "height": 844} if phone else {"width": 1280, "height": 900},
        is_mobile=phone,
        has_touch=phone,
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(panel.url + f"/ai/?lang={lang}")
    page.fill("#token", panel.token)
    page.click("button[type=submit]")
    expect(page.locator("#token")).to_have_count(0)
    expect(page.locator(".ai-cards")).to_be_visible()
    page.wait_for_function("() => typeof AI !== 'undefined'")  # the page's script ran, not only its HTML
    return page


def visit(page, url, path):
    page.goto(url + path)
    if path.startswith("/ai/"):
        expect(page.locator("html")).to_have_attribute("data-connection", "up")
    page.wait_for_load_state("networkidle")


def serious_violations(page):
    """axe-core's serious and critical findings on what the page shows now."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def open_dialog(page, opener, dialog):
    """Opens `dialog` from the keyboard: focus on its button, Enter."""
    page.locator(opener).focus()
    page.keyboard.press("Enter")
    expect(page.locator(dialog)).to_have_attribute("open", "")


def no_page_scroll(page):
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_page_and_dialog_passes_axe_in_both_themes(panel, chromium, lang):
    found = {}
    for theme in ("light", "dark"):
        page = signed_in(chromium, panel, theme=theme, lang=lang, axe=True)
        assert page.evaluate("() => AI.theme()") == theme  # the system's choice, with none kept
        if theme == "light":  # the check itself sees a problem when there is one
            page.evaluate("""() => document.querySelector('.ai-page').insertAdjacentHTML('beforeend',
                '<p id="faint" style="color:#f4f4f4;background:#fff">faint</p>')""")
            assert any(problem.startswith("color-contrast") for problem in serious_violations(page))
            page.evaluate("() => document.getElementById('faint').remove()")
        for path, dialogs in PAGES.items():
            visit(page, panel.url, path)
            found[f"{theme} {path}"] = serious_violations(page)
            for opener, dialog in dialogs:
                open_dialog(page, opener, dialog)
                found[f"{theme} {path} {dialog}"] = serious_violations(page)
                page.keyboard.press("Escape")
                expect(page.locator(dialog)).not_to_have_attribute("open", "")
        if SCREENSHOTS and lang == "en":
            visit(page, panel.url, "/ai/gpu/")
            page.screenshot(path=str(Path(SCREENSHOTS) / f"design-{theme}.png"), full_page=True)
        page.context.close()
    assert {where: problems for where, problems in found.items() if problems} == {}


def test_at_phone_width_no_page_or_dialog_scrolls_sideways(panel, chromium):
    page = signed_in(chromium, panel, phone=True)
    for path, dialogs in PAGES.items():
        visit(page, panel.url, path)
        assert no_page_scroll(page), path
        for opener, dialog in dialogs:
            open_dialog(page, opener, dialog)
            box = page.locator(dialog).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (path, dialog, box)
            assert no_page_scroll(page), (path, dialog)
            page.keyboard.press("Escape")
    # A wide table scrolls inside its card, not the page.
    visit(page, panel.url, "/ai/mcp/")
    wrap = page.locator(".ai-table-wrap").filter(has=page.locator(".mcp-table"))
    assert wrap.evaluate("node => node.scrollWidth > node.clientWidth")
    assert no_page_scroll(page)
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "design-phone.png"), full_page=True)
    page.context.close()


def test_dialogs_keep_focus_close_on_escape_and_return_focus(panel, chromium):
    page = signed_in(chromium, panel)
    visit(page, panel.url, "/ai/mcp/")
    open_dialog(page, "#mcp-add", "#mcp-form-dialog")
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('#mcp-form-dialog')")
    page.keyboard.press("Escape")
    expect(page.locator("#mcp-form-dialog")).not_to_have_attribute("open", "")
    expect(page.locator("#mcp-add")).to_be_focused()
    # A dialog a script builds (the domain dialog) gives focus back the same way.
    visit(page, panel.url, "/ai/domains/")
    open_dialog(page, "#domain-new", "#domain-dialog")
    page.keyboard.press("Escape")
    expect(page.locator("#domain-new")).to_be_focused()
    page.context.close()


def test_the_theme_toggle_is_remembered_and_the_charts_follow_it(panel, chromium):
    page = signed_in(chromium, panel, theme="light")
    visit(page, panel.url, "/ai/gpu/")
    toggle = page.locator("#ai-theme-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    canvas = page.locator('[data-chart="utilization"] canvas')
    expect(canvas).to_have_count(1)
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    axis = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--ai-chart-axis').trim()")
    canvas.evaluate("node => { node.dataset.drawnIn = 'light'; }")
    toggle.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != background
    assert (
        page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--ai-chart-axis').trim()")
        != axis
    )
    # The charts were drawn again (a new canvas), in the dark theme's colours.
    expect(page.locator('[data-chart="utilization"] canvas')).to_have_count(1)
    expect(page.locator('[data-chart="utilization"] canvas[data-drawn-in]')).to_have_count(0)
    assert page.evaluate("() => localStorage.getItem('open1panel-ai.theme')") == "dark"
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # painted dark by the server
    visit(page, panel.url, "/plugins")  # a page without ai.js keeps it too
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.context.close()


def test_busy_buttons_ignore_clicks_and_toasts_and_code_blocks_work(panel, chromium):
    page = signed_in(chromium, panel)
    visit(page, panel.url, "/ai/mcp/")
    # A busy button takes no second click, even when a script turned it back on too early.
    clicks = page.evaluate("""() => {
        const button = document.getElementById('mcp-add');
        let seen = 0;
        button.addEventListener('click', () => { seen += 1; });
        AI.busy(button, new Promise(() => {}));
        button.disabled = false;
        button.click();
        return seen;
    }""")
    assert clicks == 0
    expect(page.locator("#mcp-form-dialog")).not_to_have_attribute("open", "")
    expect(page.locator("#mcp-add")).to_have_css("pointer-events", "none")
    # Toasts: a result, and an API error as an error.
    page.evaluate("() => { AI.toast('Saved.'); AI.toast({ code: 'x', message: 'It broke.' }); }")
    toasts = page.locator(".ai-toasts[aria-live=polite] .ai-toast")
    expect(toasts).to_have_count(2)
    expect(toasts.nth(0)).to_have_attribute("data-tone", "ok")
    expect(toasts.nth(1)).to_have_attribute("data-tone", "bad")
    expect(toasts.nth(1)).to_contain_text("It broke.")
    toasts.nth(1).get_by_role("button", name="Dismiss").click()
    expect(toasts).to_have_count(1)
    # A code block gets a copy button that copies its text.
    page.evaluate("""() => {
        const pre = document.createElement('pre');
        pre.dataset.copy = '';
        pre.id = 'sample-code';
        pre.textContent = 'uvx mcp-server-time';
        document.querySelector('.ai-page').appendChild(pre);
    }""")
    copy = page.locator(".ai-code-box").filter(has=page.locator("#sample-code")).get_by_role("button", name="Copy")
    copy.click()
    expect(page.locator(".ai-toast").last).to_contain_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == "uvx mcp-server-time"
    # Icons come from the vendored sprite.
    icon = page.locator("#mcp-add svg.ai-icon use")
    assert icon.get_attribute("href").endswith("vendor/tabler-icons/sprite.svg#ti-plus")
    assert page.request.get(panel.url + "/ai/static/vendor/tabler-icons/sprite.svg").ok
    page.context.close()


def test_an_mcp_token_is_rotated_from_its_row_and_shown_once(panel, chromium):
    page = signed_in(chromium, panel)
    visit(page, panel.url, "/ai/mcp/")
    row = page.locator(f'#mcp-rows tr[data-id="{panel.mcp_id}"]')
    row.get_by_role("button", name="Rotate token").click()
    dialog = page.locator("#mcp-token-dialog")
    expect(dialog).to_have_attribute("open", "")
    expect(dialog).to_contain_text("clients that use the old one are refused")
    dialog.get_by_role("button", name="Rotate token").click()
    token = dialog.locator(".mcp-token-value")
    expect(token).to_have_text(re.compile(r"^\S{20,}$"))
    expect(dialog.get_by_role("button", name="Rotate token")).to_be_hidden()
    config = panel.api("GET", f"/mcp/servers/{panel.mcp_id}/client-config?client=cursor").json()
    assert token.text_content() in config["snippet"]  # the server now answers to the new token
    dialog.get_by_role("button", name="Copy").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == token.text_content()
    page.keyboard.press("Escape")
    row.get_by_role("button", name="Rotate token").click()  # opened again, it shows no token
    expect(token).to_have_text("")
    page.context.close()


#: The model page of the design panel's model.
MODEL_PAGE = "/ai/ollama/model?endpoint=local&name=qwen2:0.5b"

#: Every operation of the API and the page control that performs it (or shows what it reads):
#: (page, a button that opens the dialog holding it or None, the control's selector). A control
#: that only exists for some rows or states (an alert to acknowledge, a failing delivery) is
#: named by the page script that builds it: (page, "script", file, text the script holds).
CONTROLS = {
    "GET /overview": ("/ai/", None, ".ai-cards"),
    "GET /tasks": ("/ai/", None, "#ai-tasks .ai-task-list"),
    "POST /tasks/{task_id}/cancel": ("/ai/", "script", "ai-manage.js", '"cancel"'),
    "POST /tasks/{task_id}/retry": ("/ai/", "script", "ai-manage.js", '"retry"'),
    "GET /gpu": ("/ai/gpu/", None, "#gpu-monitor .gpu-cards"),
    "GET /gpu/history": ("/ai/gpu/", None, ".gpu-ranges button[data-range='24h']"),
    "GET /gpu/checks": ("/ai/gpu/", None, "#gpu-checks"),
    "GET /mcp/servers": ("/ai/mcp/", None, "#mcp-rows tr"),
    "POST /mcp/servers": ("/ai/mcp/", "#mcp-add", "#mcp-save"),
    "PUT /mcp/servers/{server_id}": ("/ai/mcp/", None, "#mcp-rows button[data-action=edit]"),
    "DELETE /mcp/servers/{server_id}": ("/ai/mcp/", None, "#mcp-rows button[data-action=delete]"),
    "POST /mcp/servers/{server_id}/start": ("/ai/mcp/", None, "#mcp-rows button[data-action=start]"),
    "POST /mcp/servers/{server_id}/stop": ("/ai/mcp/", "script", "mcp.js", 'action("stop"'),
    "POST /mcp/servers/{server_id}/restart": ("/ai/mcp/", "script", "mcp.js", 'action("restart"'),
    "GET /mcp/servers/{server_id}/logs": ("/ai/mcp/", None, "#mcp-rows button[data-action=logs]"),
    "GET /mcp/servers/{server_id}/tools": ("/ai/mcp/", None, "#mcp-rows button[data-action=tools]"),
    "GET /mcp/servers/{server_id}/client-config": ("/ai/mcp/", None, "#mcp-rows button[data-action=config]"),
    "POST /mcp/servers/{server_id}/token": ("/ai/mcp/", None, "#mcp-rows button[data-action=token]"),
    "POST /mcp/command-check": ("/ai/mcp/", "#mcp-add", "#mcp-form textarea[name=command]"),
    "POST /mcp/import": ("/ai/mcp/", "#mcp-import-open", "#mcp-import-form button[type=submit]"),
    "GET /domains": ("/ai/domains/", None, "#domain-bindings"),
    "GET /domains/proxy": ("/ai/domains/", None, "#domain-recheck"),
    "POST /domains": ("/ai/domains/", "#domain-new", "#domain-dialog button[type=submit]"),
    "POST /domains/preview": ("/ai/domains/", "#domain-new", "#domain-dialog .domain-preview"),
    "PUT /domains/{binding_id}": ("/ai/domains/", "script", "domain.js", 't("domain.page.edit")'),
    "DELETE /domains/{binding_id}": ("/ai/domains/", "#domain-new", "#domain-dialog .domain-delete"),
    "POST /domains/{binding_id}/preview": ("/ai/domains/", "#domain-new", "#domain-dialog .domain-preview"),
    "POST /domains/{binding_id}/token": ("/ai/domains/", "#domain-new", "#domain-dialog .domain-rotate"),
    "GET /alerts": ("/ai/alerts/", None, "#alerts-filter"),
    "GET /alerts/counts": ("/ai/alerts/", None, "#alerts-counts"),
    "POST /alerts/acknowledge": ("/ai/alerts/", None, "#alerts-ack-all"),
    "POST /alerts/{alert_id}/acknowledge": ("/ai/alerts/", "script", "alerts.js", '"/acknowledge"'),
    "GET /alerts/rules": ("/ai/alerts/", None, "#alerts-rule-list .alerts-rule"),
    "PUT /alerts/rules/{rule_id}": ("/ai/alerts/", None, "#alerts-rule-list .alerts-rule button"),
    "GET /alerts/channels": ("/ai/alerts/", None, "#alerts-channel-table"),
    "POST /alerts/channels": ("/ai/alerts/", "#alerts-channel-new", "#alerts-channel-form button[type=submit]"),
    "PUT /alerts/channels/{channel_id}": ("/ai/alerts/", "script", "alerts.js", '"edit"'),
    "DELETE /alerts/channels/{channel_id}": ("/ai/alerts/", "script", "alerts.js", '"delete"'),
    "POST /alerts/channels/{channel_id}/test": ("/ai/alerts/", "script", "alerts.js", '"/test"'),
    "POST /alerts/channels/{channel_id}/retry": ("/ai/alerts/", "script", "alerts.js", '"/retry"'),
    "GET /ollama/endpoints": ("/ai/ollama/", None, "#ollama-endpoints tbody tr"),
    "POST /ollama/endpoints": ("/ai/ollama/", None, "#ollama-endpoint-form button[type=submit]"),
    "DELETE /ollama/endpoints/{name}": ("/ai/ollama/", "script", "ollama.js", '"data-action": "remove"'),
    "GET /ollama/models": ("/ai/ollama/", None, ".ollama-model-table tbody tr"),
    "GET /ollama/models/{name}": ("/ai/ollama/", None, ".ollama-model-table button[data-action=details]"),
    "DELETE /ollama/models/{name}": ("/ai/ollama/", None, ".ollama-model-table button[data-action=delete]"),
    "POST /ollama/models/{name}/copy": ("/ai/ollama/", None, ".ollama-model-table button[data-action=copy]"),
    "POST /ollama/models/{name}/load": ("/ai/ollama/", None, ".ollama-model-table button[data-action=load]"),
    "POST /ollama/models/{name}/unload": ("/ai/ollama/", "script", "ollama.js", '"data-action": "unload"'),
    "GET /ollama/running": ("/ai/ollama/", None, "#ollama-running"),
    "GET /ollama/storage": ("/ai/ollama/", None, "#ollama-storage"),
    "DELETE /ollama/storage/partials": ("/ai/ollama/", None, "#ollama-storage #ollama-partials-delete"),
    "POST /ollama/pulls": ("/ai/ollama/", "#ollama-pull-open", "#ollama-pull-dialog [data-action=start]"),
    "POST /ollama/imports": ("/ai/ollama/", "#ollama-import-open", "#ollama-import-dialog [data-action=start]"),
    "GET /tasks/{task_id}": ("/ai/ollama/", "script", "ollama.js", 'AI.api("/tasks/" + task.id'),
    "GET /ollama/endpoints/{name}/budget": ("/ai/ollama/", None, "#ollama-endpoints button[data-action=budget]"),
    "PUT /ollama/endpoints/{name}/budget": (
        "/ai/ollama/",
        "#ollama-endpoints button[data-action=budget]",
        "#ollama-budget-dialog [data-action=save]",
    ),
    "POST /ollama/chat": (MODEL_PAGE, None, "#ollama-chat-form [data-action=send]"),
    "POST /ollama/embed": (MODEL_PAGE, None, "#ollama-embed-form [data-action=embed]"),
    "GET /ollama/models/{name}/recipe": (MODEL_PAGE, None, "#ollama-build-edit"),
    "POST /ollama/builds/preview": (MODEL_PAGE, None, "#ollama-build-form [data-action=preview]"),
    "POST /ollama/builds": (MODEL_PAGE, None, "#ollama-build-form [data-action=build]"),
    "GET /ollama/benchmarks": (MODEL_PAGE, None, ".ollama-bench-table"),
    "POST /ollama/benchmarks": (MODEL_PAGE, None, "#ollama-bench-form [data-action=bench]"),
    "GET /ollama/benchmarks.csv": (MODEL_PAGE, None, "#ollama-bench-csv"),
    "DELETE /ollama/benchmarks/{result_id}": (MODEL_PAGE, "script", "ollama-model.js", '"delete-result"'),
    "GET /ollama/server": ("/ai/ollama/server/", None, "#server-overview #server-mode"),
    "GET /ollama/server/logs": ("/ai/ollama/server/", None, "#server-log"),
    "POST /ollama/server/start": ("/ai/ollama/server/", None, "#server-controls [data-action=start]"),
    "POST /ollama/server/stop": ("/ai/ollama/server/", None, "#server-controls [data-action=stop]"),
    "POST /ollama/server/restart": ("/ai/ollama/server/", None, "#server-controls [data-action=restart]"),
    "PUT /ollama/server/settings": ("/ai/ollama/server/", None, "#server-settings-form button[type=submit]"),
}
#: Operations no page performs, each with the reason.
API_ONLY = {
    "GET /openapi.json": "the API's own description, read by tools and the generated docs/api.md",
    "GET /status": "the providers' raw state for scripts; the landing page shows the same through /overview",
    "GET /metrics": "Prometheus text, scraped by Prometheus (the GPU page names the URL)",
    "GET /mcp/servers/{server_id}": "one server for scripts; the page has every server from the list and live events",
    "GET /domains/{binding_id}": "one binding for scripts; the page has every binding from the list",
    "GET /alerts/channels/{channel_id}": "one channel for scripts; the page has every channel from the list",
    "GET /alerts/channels/{channel_id}/deliveries": (
        "a channel's delivery log for scripts; the page shows the last state"
    ),
}
#: Operations whose page is still being built (none now; a new page's operations may wait here
#: while it is built).
NOT_YET_ON_A_PAGE: dict[str, str] = {}


def test_every_api_operation_has_a_page_control_or_a_reason(panel, chromium):
    spec = panel.api("GET", "/openapi.json").json()
    operations = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    listed = CONTROLS.keys() | API_ONLY.keys() | NOT_YET_ON_A_PAGE.keys()
    assert operations - listed == set(), "map these to a page control, or say why they are API-only"
    assert listed - operations == set(), "these are no longer in the API"
    page = signed_in(chromium, panel)
    missing = []
    for path in sorted({entry[0] for entry in CONTROLS.values()}):
        visit(page, panel.url, path)
        scripts = page.evaluate("() => [...document.scripts].map(s => s.src).filter(Boolean)")
        for operation, (_, opener, *control) in CONTROLS.items():
            if _ != path:
                continue
            if opener == "script":
                name, text = control
                source = [src for src in scripts if src.endswith("/" + name)]
                if not source or text not in page.request.get(source[0]).text():
                    missing.append(operation)
                continue
            if opener:
                open_dialog(page, opener, opener_dialog(page, opener))
            if page.locator(control[0]).count() == 0:
                missing.append(operation)
            if opener:
                page.keyboard.press("Escape")
    assert missing == []
    page.context.close()


def opener_dialog(page, opener):
    """The dialog `opener` opens, from PAGES."""
    return next(dialog for dialogs in PAGES.values() for button, dialog in dialogs if button == opener)
