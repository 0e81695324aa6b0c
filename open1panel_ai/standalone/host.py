"""The standalone host: a Flask + Flask-SocketIO app that loads open1panel plugins.

:func:`create_host` builds everything; the web server (:mod:`.server`) only serves it. Plugins
are loaded from the ``open1panel.plugins`` entry points, one at a time, so a plugin that fails
to import, to register or to start is recorded in :attr:`StandaloneHost.plugin_errors` and shown
on the Plugins page, and never stops the panel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import flask
import pluggy
from flask_socketio import SocketIO

import hookspecs.panel
from hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME
from open1panel_ai import __version__
from open1panel_ai.config import Settings
from open1panel_ai.standalone import auth, views

log = logging.getLogger(__name__)

#: The host registers itself as a plugin under this name; it cannot be disabled.
HOST_PLUGIN_NAME = "panel"
DISABLED_FILE = "disabled-plugins.json"


@dataclass
class PluginInfo:
    """What the Plugins page shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    state: str = "loaded"  # loaded | disabled | error
    error: str | None = None
    hooks: list[str] = field(default_factory=list)


class StandaloneHost:
    """Implements :class:`hookspecs.panel.PanelHost` for the standalone panel."""

    def __init__(self, settings: Settings, extra_plugins: list[tuple[str, Any]] = ()) -> None:
        self.settings = settings
        self.data_dir: Path = settings.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.token, self.token_created = auth.load_or_create_token(self.data_dir)
        self.auth = auth.TokenAuth(self.token)
        self.plugins: dict[str, PluginInfo] = {}
        self._stopped = threading.Event()

        self.app = flask.Flask("open1panel_ai.standalone")
        self.app.config.update(
            SECRET_KEY=auth.load_or_create_session_secret(self.data_dir),
            SESSION_COOKIE_NAME="open1panel_session",
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            PERMANENT_SESSION_LIFETIME=timedelta(days=7),
            JSON_SORT_KEYS=False,
        )
        self.app.extensions["panel_host"] = self
        # With a Redis URL, events published by one panel process reach every process's clients;
        # the channel is the data dir's, so panels of other data dirs may share that Redis.
        self.socketio = SocketIO(self.app, async_mode="threading", manage_session=False,
                                 message_queue=settings.get("redis_url") or None,
                                 channel=message_channel(self.data_dir))

        self.plugin_manager = pluggy.PluginManager(PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs.panel)
        self.plugin_manager.register(views, name=HOST_PLUGIN_NAME)
        self.plugins[HOST_PLUGIN_NAME] = PluginInfo(HOST_PLUGIN_NAME, "open1panel-ai", __version__)
        self._load_plugins(list(extra_plugins))
        self.plugin_manager.hook.panel_add_hookspecs.call_historic(
            kwargs={"plugin_manager": self.plugin_manager})
        views.install(self)
        self._mount_plugins()
        self._start_plugins()

    # -- PanelHost ------------------------------------------------------------------------

    @property
    def plugin_errors(self) -> dict[str, str]:
        return {p.name: p.error for p in self.plugins.values() if p.error}

    # -- plugin loading -------------------------------------------------------------------

    @property
    def disabled_plugins(self) -> set[str]:
        """Disabled by the environment (``OPEN1PANEL_AI_DISABLED_PLUGINS``) or the Plugins page."""
        return set(self.settings.disabled_plugins) | self._disabled_on_page()

    def _disabled_on_page(self) -> set[str]:
        try:
            return set(json.loads((self.data_dir / DISABLED_FILE).read_text()))
        except FileNotFoundError:
            return set()
        except (ValueError, TypeError):
            log.warning("ignoring unreadable %s", self.data_dir / DISABLED_FILE)
            return set()

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable or enable a plugin from the next start on."""
        names = self._disabled_on_page()
        (names.add if disabled else names.discard)(name)
        path = self.data_dir / DISABLED_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(names)))
        tmp.replace(path)

    def _load_plugins(self, extra: list[tuple[str, Any]]) -> None:
        disabled = self.disabled_plugins
        found: list[tuple[str, Any, PluginInfo]] = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, dist.name if dist else None, dist.version if dist else None)
            found.append((ep.name, ep.load, info))
        for name, plugin in extra:
            found.append((name, lambda plugin=plugin: plugin, PluginInfo(name)))
        for name, load, info in found:
            if name in self.plugins:
                info.state, info.error = "error", f"another plugin is already named {name!r}"
                log.warning("skipping a second plugin named %s", name)
                continue
            self.plugins[name] = info
            if name in disabled:
                info.state = "disabled"
                continue
            try:
                self.plugin_manager.register(load(), name=name)
            except Exception as exc:
                info.state, info.error = "error", f"could not be loaded: {type(exc).__name__}: {exc}"
                log.exception("plugin %s could not be loaded", name)

    def _each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call one hook plugin by plugin, recording failures instead of raising."""
        results = []
        for impl in reversed(getattr(self.plugin_manager.hook, hook_name).get_hookimpls()):
            try:
                results.append((impl.plugin_name, impl.function(**kwargs)))
            except Exception as exc:
                self._record_failure(impl.plugin_name, hook_name, exc)
        return results

    def _record_failure(self, name: str, hook_name: str, exc: Exception) -> None:
        log.exception("plugin %s failed in %s", name, hook_name)
        info = self.plugins.setdefault(name, PluginInfo(name))
        info.state, info.error = "error", f"{hook_name} failed: {type(exc).__name__}: {exc}"

    def _mount_plugins(self) -> None:
        for name, blueprints in self._each("panel_blueprints"):
            for blueprint in blueprints or []:
                try:
                    self.app.register_blueprint(blueprint)
                except Exception as exc:
                    self._record_failure(name, "panel_blueprints", exc)
        for name, namespaces in self._each("panel_socketio_namespaces"):
            for namespace in namespaces or []:
                try:
                    self.socketio.on_namespace(namespace)
                except Exception as exc:
                    self._record_failure(name, "panel_socketio_namespaces", exc)

    def _start_plugins(self) -> None:
        self._each("panel_startup", host=self)
        for info in self.plugins.values():
            plugin = self.plugin_manager.get_plugin(info.name)
            if plugin is not None:
                callers = self.plugin_manager.get_hookcallers(plugin) or []
                info.hooks = sorted(caller.name for caller in callers)

    def menu_items(self, language: str) -> list[dict[str, Any]]:
        items = []
        for _, offered in self._each("panel_menu_items"):
            for item in offered or []:
                title = item.get("title", item.get("id", "?"))
                if isinstance(title, dict):
                    title = title.get(language) or title.get("en") or next(iter(title.values()), "?")
                items.append({**item, "title": title})
        return sorted(items, key=lambda item: (item.get("order", 100), item["title"]))

    # -- stopping -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every plugin and close all Socket.IO connections. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._each("panel_shutdown", host=self)
        try:
            self.socketio.server.eio.disconnect()
        except Exception:
            log.warning("closing Socket.IO connections failed", exc_info=True)


def message_channel(data_dir: Path) -> str:
    """The Redis channel of the panel processes that serve ``data_dir``."""
    return "open1panel-ai-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


def create_host(settings: Settings | None = None, extra_plugins: list[tuple[str, Any]] = ()) -> StandaloneHost:
    """Build the standalone panel. ``extra_plugins`` adds (name, plugin) pairs beside those of
    the entry points; tests use it for plugins that are not installed."""
    return StandaloneHost(settings or Settings.from_environ(), list(extra_plugins))
