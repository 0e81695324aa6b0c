"""What a host panel uses of this plugin: the adapter that mounts it into any Flask +
Flask-SocketIO application, and the helpers the standalone host shares with the plugin.

Mounting the plugin into an existing admin app takes one call::

    from flask import Flask, session
    from flask_socketio import SocketIO
    from open1panel_ai.host import mount

    app = Flask(__name__)
    socketio = SocketIO(app)

    def who(request, auth):                  # the host's own login decides
        name = session.get("user")
        return {"name": name, "via": "session"} if name else None

    panel = mount(app, socketio, authenticate=who, data_dir="/var/lib/my-panel/ai")
    for item in panel.menu_items("en"):       # add them to the host's own menu
        print(item["title"], item["url"])

The plugin's pages extend a template named ``panel/layout.html`` that the host provides, with
the blocks ``title``, ``head``, ``content`` and ``scripts``, a ``<meta name="csrf-token">``
when the host checks CSRF tokens (the pages send it back as ``X-CSRF-Token``), and its menu.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import flask
import pluggy
from flask_socketio import SocketIO

import hookspecs.panel
from hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from hookspecs.panel import MenuItem, PanelUser
from open1panel_ai import __version__, i18n, private
from open1panel_ai.config import ENV_PREFIX, Settings
from open1panel_ai.errors import envelope
from open1panel_ai.realtime import message_queue
from open1panel_ai.relay import check_socket_path
from open1panel_ai.web import read_form_body

__all__ = [
    "ENV_PREFIX",
    "MountedPanel",
    "Settings",
    "__version__",
    "check_socket_path",
    "each_plugin",
    "envelope",
    "i18n",
    "menu_title",
    "message_queue",
    "mount",
    "private",
    "read_form_body",
]

log = logging.getLogger(__name__)

#: Who a request acts for: ``authenticate(request, auth)`` → a :class:`PanelUser` or None.
Authenticate = Callable[[flask.Request, Any], PanelUser | None]


def each_plugin(
    plugin_manager: pluggy.PluginManager, hook_name: str, on_error: Callable[[str, Exception], None], **kwargs: Any
) -> list[tuple[str, Any]]:
    """Call ``hook_name`` once per plugin, in pluggy's call order, each call going through
    pluggy (its tracing and the plugins' wrappers included): ``(plugin name, result)`` for each
    plugin that answered; one that raises is reported to ``on_error(name, exc)`` and the others
    still run."""
    hook = getattr(plugin_manager.hook, hook_name)
    impls = [impl for impl in hook.get_hookimpls() if not (impl.hookwrapper or impl.wrapper)]
    results = []
    for impl in reversed(impls):
        alone = plugin_manager.subset_hook_caller(hook_name, [o.plugin for o in impls if o is not impl])
        try:
            answers = alone(**kwargs)
        except Exception as exc:
            on_error(impl.plugin_name, exc)
            continue
        results.append((impl.plugin_name, answers[0] if answers else None))  # pluggy drops None
    return results


def menu_title(item: MenuItem, language: str) -> str:
    """A menu item's title in ``language`` (English, then any, when it has no such title)."""
    title = item.get("title", item.get("id", "?"))
    if isinstance(title, str):
        return title
    return title.get(language) or title.get("en") or next(iter(title.values()), "?")


class _HostHooks:
    """The hooks a mounting host implements: who is signed in."""

    def __init__(self, authenticate: Authenticate) -> None:
        self._authenticate = authenticate

    @hookimpl
    def panel_authenticate(self, request: flask.Request, auth: Any) -> PanelUser | None:
        return self._authenticate(request, auth)


class MountedPanel:
    """The plugin(s) mounted into a host's app: a :class:`hookspecs.panel.PanelHost`."""

    def __init__(
        self,
        app: flask.Flask,
        socketio: SocketIO,
        authenticate: Authenticate,
        data_dir: str | Path,
        plugins: Iterable[tuple[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.socketio = socketio
        self.data_dir = Path(data_dir)
        self.plugin_errors: dict[str, str] = {}
        self.plugin_manager = pluggy.PluginManager(PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs.panel)
        self.plugin_manager.register(_HostHooks(authenticate), name="host")
        found = (
            _entry_point_plugins()
            if plugins is None
            else [(name, lambda plugin=plugin: plugin) for name, plugin in plugins]
        )
        for name, load in found:
            try:
                self.plugin_manager.register(load(), name=name)
            except Exception as exc:
                self._failed(name, exc)
        self.plugin_manager.hook.panel_add_hookspecs.call_historic(kwargs={"plugin_manager": self.plugin_manager})
        for _, blueprints in each_plugin(self.plugin_manager, "panel_blueprints", self._failed):
            for blueprint in blueprints or []:
                app.register_blueprint(blueprint)
        for _, namespaces in each_plugin(self.plugin_manager, "panel_socketio_namespaces", self._failed):
            for namespace in namespaces or []:
                socketio.on_namespace(namespace)
        each_plugin(self.plugin_manager, "panel_startup", self._failed, host=self)

    def menu_items(self, language: str = i18n.DEFAULT_LANGUAGE) -> list[MenuItem]:
        """Every plugin's menu entries, titles in ``language``, sorted by ``order`` and title."""
        items: list[MenuItem] = [
            {**item, "title": menu_title(item, language)}
            for _, offered in each_plugin(self.plugin_manager, "panel_menu_items", self._failed)
            for item in offered or []
        ]
        return sorted(items, key=lambda item: (item.get("order", 100), str(item["title"])))

    def shutdown(self) -> None:
        """Stop the plugins' background work; call it once when the host stops."""
        each_plugin(self.plugin_manager, "panel_shutdown", self._failed, host=self)

    def _failed(self, name: str, exc: Exception) -> None:
        log.error("plugin %s failed: %s", name, exc, exc_info=exc)
        self.plugin_errors[name] = f"{type(exc).__name__}: {exc}"


def _entry_point_plugins() -> list[tuple[str, Callable[[], Any]]]:
    return [(ep.name, ep.load) for ep in entry_points(group=ENTRY_POINT_GROUP)]


def mount(
    app: flask.Flask,
    socketio: SocketIO,
    authenticate: Authenticate,
    data_dir: str | Path,
    plugins: Iterable[tuple[str, Any]] | None = None,
) -> MountedPanel:
    """Mount the open1panel plugins into ``app`` and ``socketio``, behind the host's login.

    :param authenticate: ``authenticate(request, auth)`` returns who the request (or Socket.IO
        connection, whose ``auth`` payload is passed) acts for, or None: the host's own login.
    :param data_dir: a folder the host keeps across restarts; the plugins keep state below it.
    :param plugins: ``(name, plugin)`` pairs to load; by default every plugin of the
        ``open1panel.plugins`` entry points, this one included.
    :return: the mounted panel: its menu entries, errors, and ``shutdown()``.
    """
    return MountedPanel(app, socketio, authenticate, data_dir, plugins)
