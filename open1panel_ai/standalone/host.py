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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import flask
import pluggy
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

import hookspecs.panel
from hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME
from open1panel_ai.host import Settings, __version__, each_plugin, message_queue, private
from open1panel_ai.standalone import auth, sessions, views
from open1panel_ai.standalone.sockets import close_session

log = logging.getLogger(__name__)

#: The host registers itself as a plugin under this name; it cannot be disabled.
HOST_PLUGIN_NAME = "panel"
DISABLED_FILE = "disabled-plugins.json"
#: How long a browser stays signed in.
SESSION_LIFETIME = timedelta(days=7)
#: Wrong tokens a client address may send to the sign-in form per window (seconds) before it
#: must wait for the window's end.
SIGN_IN_ATTEMPTS = 10
SIGN_IN_WINDOW = 15 * 60


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

    def __init__(self, settings: Settings, extra_plugins: Sequence[tuple[str, Any]] = ()) -> None:
        self.settings = settings
        self.data_dir: Path = settings.data_dir
        private.repair(self.data_dir)  # 0700, its files 0600: it holds every secret
        self.token, self.token_created = auth.load_or_create_token(self.data_dir)
        self.metrics_token = auth.load_or_create_metrics_token(self.data_dir)
        auth.check_metrics_token(self.data_dir)
        secret = auth.load_or_create_session_secret(self.data_dir)
        database = sessions.HostDatabase(self.data_dir / sessions.DATABASE_FILE)
        self.sign_in_throttle = sessions.SignInThrottle(database, SIGN_IN_ATTEMPTS, SIGN_IN_WINDOW)
        self.auth = auth.TokenAuth(
            self.token,
            sessions.SessionStore(database, SESSION_LIFETIME.total_seconds(), auth.token_check(self.token, secret)),
            self.metrics_token,
        )
        self.plugins: dict[str, PluginInfo] = {}
        self._stopped = threading.Event()

        self.app = flask.Flask("open1panel_ai.standalone")
        self.app.config.update(
            SECRET_KEY=secret,
            SESSION_COOKIE_NAME="open1panel_session",
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
            JSON_SORT_KEYS=False,
        )
        self.app.session_interface = auth.PanelSessionInterface()
        self.app.extensions["panel_host"] = self
        # With a Redis URL, events published by one panel process reach every process's clients;
        # the channel is the data dir's, so panels of other data dirs may share that Redis.
        redis_url = settings.get("redis_url")
        # Events between panel processes go through Redis, each message signed with the data
        # dir's key (open1panel_ai.realtime), over redis://, rediss:// or unix://.
        queue = message_queue(redis_url, message_channel(self.data_dir), self.data_dir) if redis_url else None
        self.socketio = SocketIO(self.app, async_mode="threading", manage_session=False, client_manager=queue)
        # Only namespaces that plugins serve may be joined (python-socketio would also let
        # anyone into "/", where nobody checks credentials and the sign-in deadline sees a
        # signed-in client).
        self.socketio.server.namespaces = []
        proxies = auth.trusted_proxies(settings)
        if proxies:  # believe X-Forwarded-For and -Proto of that many proxies, no more
            # Flask's documented way to add WSGI middleware; its stubs declare wsgi_app a method.
            self.app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
                self.app.wsgi_app, x_for=proxies, x_proto=proxies
            )

        self.plugin_manager = pluggy.PluginManager(PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs.panel)
        self.plugin_manager.register(views, name=HOST_PLUGIN_NAME)
        self.plugins[HOST_PLUGIN_NAME] = PluginInfo(HOST_PLUGIN_NAME, "open1panel-ai", __version__)
        self._load_plugins(list(extra_plugins))
        self.plugin_manager.hook.panel_add_hookspecs.call_historic(kwargs={"plugin_manager": self.plugin_manager})
        views.install(self)
        self._mount_plugins()
        self._start_plugins()

    # -- PanelHost ------------------------------------------------------------------------

    @property
    def plugin_errors(self) -> dict[str, str]:
        return {p.name: p.error for p in self.plugins.values() if p.error}

    def has_credentials(self, environ: dict) -> bool:
        """Whether a raw WSGI request carries the admin token or a live browser session (the
        Socket.IO gate asks before a client has joined a namespace)."""
        with self.app.request_context(environ):
            return self.auth.authenticate(flask.request) is not None

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
        """Call one hook plugin by plugin (through pluggy), recording failures instead of raising."""
        return each_plugin(
            self.plugin_manager, hook_name, lambda name, exc: self._record_failure(name, hook_name, exc), **kwargs
        )

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
        items = [item for _, item in self._menu(language)]
        return sorted(items, key=lambda item: (item.get("order", 100), item["title"]))

    def menu_items_of(self, plugin: str, language: str) -> list[dict[str, Any]]:
        """The menu items one plugin adds: the pages that go when it is disabled."""
        items = [item for name, item in self._menu(language) if name == plugin]
        return sorted(items, key=lambda item: (item.get("order", 100), item["title"]))

    def _menu(self, language: str) -> list[tuple[str, dict[str, Any]]]:
        """(plugin name, menu item with its title in ``language``) for every item offered."""
        items = []
        for name, offered in self._each("panel_menu_items"):
            for item in offered or []:
                title = item.get("title", item.get("id", "?"))
                if isinstance(title, dict):
                    title = title.get(language) or title.get("en") or next(iter(title.values()), "?")
                items.append((name, {**item, "title": title}))
        return items

    # -- stopping -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every plugin and close all Socket.IO connections. Safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._each("panel_shutdown", host=self)
        try:
            engine = self.socketio.server.eio
            for sid in list(engine.sockets):
                close_session(engine, sid)  # never waits for a client that went away
        except Exception:
            log.warning("closing Socket.IO connections failed", exc_info=True)


def message_channel(data_dir: Path) -> str:
    """The Redis channel of the panel processes that serve ``data_dir``."""
    return "open1panel-ai-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]


def create_host(settings: Settings | None = None, extra_plugins: Sequence[tuple[str, Any]] = ()) -> StandaloneHost:
    """Build the standalone panel. ``extra_plugins`` adds (name, plugin) pairs beside those of
    the entry points; tests use it for plugins that are not installed."""
    return StandaloneHost(settings or Settings.from_environ(), list(extra_plugins))
