"""The standalone host: loading plugins from entry points through the public hooks, isolating
their failures, the Plugins page and disabling plugins, the menu, startup and shutdown."""

import importlib
import sys

import pluggy
import pytest
from flask import Blueprint
from flask_socketio import Namespace

from hookspecs import hookimpl, hookspec
from tests.conftest import PLUGINS_DIR, TOKEN


@pytest.fixture
def on_path(monkeypatch):
    """Put folders holding .dist-info entry points on sys.path, as an install would."""

    def add(folder):
        monkeypatch.syspath_prepend(str(folder))
        importlib.invalidate_caches()

    yield add
    for name in [m for m in sys.modules if m.startswith(("panel_testkit", "missing_module_plugin"))]:
        del sys.modules[name]


def write_distribution(folder, name, entry_point):
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[open1panel.plugins]\n{entry_point}\n")


def signed_in(host):
    client = host.app.test_client()
    client.post("/login", data={"token": TOKEN})
    return client


def csrf(client):
    page = client.get("/plugins").get_data(as_text=True)
    return page.split('name="csrf-token" content="')[1].split('"')[0]


def test_plugins_come_from_entry_points_with_their_version_and_hooks(make_host, on_path):
    on_path(PLUGINS_DIR)
    host = make_host()
    testkit = host.plugins["testkit"]
    assert (testkit.distribution, testkit.version, testkit.state) == ("panel-testkit", "1.0", "loaded")
    assert {"panel_startup", "panel_blueprints"} <= set(testkit.hooks)
    ai = host.plugins["ai"]
    assert ai.distribution == "open1panel-ai" and "panel_menu_items" in ai.hooks
    page = signed_in(host).get("/plugins").get_data(as_text=True)
    assert "panel-testkit" in page and "panel_blueprints" in page


def test_a_plugin_that_fails_to_import_is_reported_and_the_panel_runs(make_host, on_path, tmp_path):
    write_distribution(tmp_path / "site", "broken-plugin", "broken = missing_module_plugin")
    on_path(tmp_path / "site")
    host = make_host()
    assert host.plugins["broken"].state == "error"
    assert "ModuleNotFoundError" in host.plugins["broken"].error
    client = signed_in(host)
    assert "missing_module_plugin" in client.get("/plugins").get_data(as_text=True)
    status = client.get("/api/v2/ai/status").get_json()
    assert "broken" in status["plugin_errors"]


class FailingStartup:
    @hookimpl
    def panel_startup(self, host):
        raise RuntimeError("cannot open its database")


def test_a_plugin_that_fails_to_start_is_reported_and_others_start(make_host):
    host = make_host(("flaky", FailingStartup()))
    assert "panel_startup failed: RuntimeError: cannot open its database" in host.plugins["flaky"].error
    status = host.app.test_client().get("/api/v2/ai/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status.status_code == 200 and "flaky" in status.get_json()["plugin_errors"]


def test_disabling_by_environment_keeps_a_plugin_out(make_host, on_path, panel_env):
    on_path(PLUGINS_DIR)
    panel_env.setenv("OPEN1PANEL_AI_DISABLED_PLUGINS", "testkit, drm")
    host = make_host()
    assert host.plugins["testkit"].state == "disabled"
    assert host.plugin_manager.get_plugin("testkit") is None
    assert "testkit.steps" not in host.app.extensions["open1panel_ai"].tasks._kinds


def test_the_plugins_page_disables_a_plugin_from_the_next_start(make_host, on_path):
    on_path(PLUGINS_DIR)
    first = make_host()
    client = signed_in(first)
    # A disable that was not confirmed in the dialog shows the dialog, and changes nothing.
    response = client.post("/plugins/testkit", data={"action": "disable", "csrf_token": csrf(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/plugins?disable=testkit#plugin-confirm"
    assert "Disabled from the next start" not in client.get("/plugins").get_data(as_text=True)
    asked = client.get("/plugins?disable=testkit").get_data(as_text=True)
    assert '<dialog open id="plugin-confirm"' in asked and "Disable testkit?" in asked
    response = client.post("/plugins/testkit", data={"action": "disable", "confirm": "yes", "csrf_token": csrf(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/plugins"
    assert "Disabled from the next start" in client.get("/plugins").get_data(as_text=True)
    first.shutdown()
    second = make_host()
    assert second.plugins["testkit"].state == "disabled"
    client = signed_in(second)
    client.post("/plugins/testkit", data={"action": "enable", "csrf_token": csrf(client)})
    second.shutdown()
    assert make_host().plugins["testkit"].state == "loaded"


def test_the_host_itself_and_unknown_plugins_cannot_be_disabled(host):
    client = signed_in(host)
    token = csrf(client)
    assert client.post("/plugins/panel", data={"action": "disable", "csrf_token": token}).status_code == 404
    assert client.post("/plugins/nobody", data={"action": "disable", "csrf_token": token}).status_code == 404


class Extension:
    """A plugin that uses every panel hook the way a third party would."""

    def __init__(self):
        self.calls = []
        self.blueprint = Blueprint("extension", __name__)
        self.blueprint.add_url_rule("/extension/", "page", lambda: "extension page")

    @hookimpl
    def panel_add_hookspecs(self, plugin_manager):
        self.calls.append("panel_add_hookspecs")
        plugin_manager.add_hookspecs(ExtensionSpecs)

    @hookimpl
    def panel_menu_items(self):
        return [{"id": "ext", "title": {"en": "Extension", "zh-CN": "扩展"}, "url": "/extension/", "order": 5}]

    @hookimpl
    def panel_blueprints(self):
        return [self.blueprint]

    @hookimpl
    def panel_socketio_namespaces(self):
        return [ExtensionNamespace("/extension")]

    @hookimpl
    def panel_startup(self, host):
        self.calls.append("panel_startup")
        self.results = host.plugin_manager.hook.extension_hello()

    @hookimpl
    def panel_shutdown(self, host):
        self.calls.append("panel_shutdown")


class ExtensionSpecs:
    @hookspec
    def extension_hello(self):
        """A hook the extension offers to other plugins."""


class ExtensionFriend:
    @hookimpl
    def extension_hello(self):
        return "hello from a friend"


class ExtensionNamespace(Namespace):
    def on_ping(self, data):
        return {"pong": data}


def test_a_third_party_plugin_gets_every_panel_hook(make_host):
    extension = Extension()
    host = make_host(("friend", ExtensionFriend()), ("extension", extension))
    assert extension.calls == ["panel_add_hookspecs", "panel_startup"]
    assert extension.results == ["hello from a friend"]  # its own hookspec reached a plugin loaded earlier
    client = signed_in(host)
    assert client.get("/extension/").get_data(as_text=True) == "extension page"
    menu = client.get("/plugins", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert menu.index('data-menu="ext"') < menu.index('data-menu="ai"') < menu.index('data-menu="plugins"')
    assert ">扩展<" in menu
    socket = host.socketio.test_client(host.app, namespace="/extension")
    assert socket.emit("ping", 7, namespace="/extension", callback=True) == {"pong": 7}
    host.shutdown()
    assert extension.calls[-1] == "panel_shutdown"


def test_panel_authenticate_is_what_plugins_use_to_check_users(host):
    from flask import request

    with host.app.test_request_context("/", headers={"Authorization": f"Bearer {TOKEN}"}):
        assert host.plugin_manager.hook.panel_authenticate(request=request, auth=None) == {
            "name": "admin",
            "via": "token",
        }
    with host.app.test_request_context("/"):
        assert host.plugin_manager.hook.panel_authenticate(request=request, auth=None) is None
        assert host.plugin_manager.hook.panel_authenticate(request=request, auth={"token": TOKEN})["via"] == "token"


def test_the_home_page_opens_the_first_menu_entry(host):
    assert signed_in(host).get("/").headers["Location"] == "/ai/"


def test_the_host_is_a_pluggy_manager_of_the_open1panel_project(host):
    assert isinstance(host.plugin_manager, pluggy.PluginManager)
    assert host.plugin_manager.project_name == "open1panel"


#: Every page of the standalone panel and the AI module, as its menu writes it.
PAGES = ["/login", "/plugins", "/ai/", "/ai/ollama/", "/ai/mcp/", "/ai/gpu/", "/ai/domains/"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_with_and_without_a_trailing_slash(host, path):
    client = host.app.test_client() if path == "/login" else signed_in(host)  # signed in, it moves on
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    for spelling in (path, other):
        response = client.get(spelling, follow_redirects=True)
        # The sign-in page answers 401, as every page does for someone not signed in.
        assert response.status_code == (401 if path == "/login" else 200), spelling
        assert response.request.path in (path, other)
        assert "<h1>" in response.get_data(as_text=True), spelling


def test_the_disable_dialog_names_the_pages_that_go_in_the_readers_language(host):
    client = signed_in(host)
    page = client.get("/plugins?disable=ai", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "停用 ai？" in page and "面板下次启动后，以下页面将不再可用" in page
    assert '<a href="/ai/domains/">域名</a>' in page
    assert "保持启用" in page
    # No dialog for the host itself, nor for a plugin that is not there.
    for name in ("panel", "nobody"):
        assert "<dialog" not in client.get(f"/plugins?disable={name}").get_data(as_text=True)


def test_the_sign_in_page_and_the_host_errors_speak_chinese(host):
    client = host.app.test_client()
    page = client.get("/plugins/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "<h1>登录</h1>" in page and "管理员令牌" in page
    refused = client.get("/api/v2/ai/status", headers={"Accept-Language": "zh-CN"})
    assert (
        refused.status_code == 401
        and refused.get_json()["error"]["message"] != client.get("/api/v2/ai/status").get_json()["error"]["message"]
    )
    signed = signed_in(host)
    forbidden = signed.post("/plugins/ai", data={"action": "disable"}, headers={"Accept-Language": "zh-CN"})
    assert forbidden.status_code == 403 and "CSRF" in forbidden.get_data(as_text=True)
    assert "请刷新页面" in forbidden.get_data(as_text=True)
