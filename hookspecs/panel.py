"""What a host panel offers every plugin.

A host creates a :class:`pluggy.PluginManager` named :data:`hookspecs.PROJECT_NAME`, adds these
specifications, registers itself and then every plugin of the entry-point group
:data:`hookspecs.ENTRY_POINT_GROUP`. It then:

1. calls :func:`panel_add_hookspecs` (historic, so late plugins are called too);
2. registers what :func:`panel_blueprints` and :func:`panel_socketio_namespaces` return;
3. calls :func:`panel_startup` once, before it serves the first request;
4. builds its menu from :func:`panel_menu_items` and asks :func:`panel_authenticate` who is
   behind each request and Socket.IO connection;
5. calls :func:`panel_shutdown` once when it stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from hookspecs import hookspec

if TYPE_CHECKING:  # pragma: no cover - typing only
    import flask
    import flask_socketio
    import pluggy


class MenuItem(TypedDict, total=False):
    """One entry of the host's navigation menu.

    ``title`` is either plain text or a mapping of language tag to text
    (``{"en": "AI", "zh-CN": "AI 管理"}``); the host shows the best match for the reader.
    """

    id: str
    title: str | Mapping[str, str]
    url: str
    icon: str
    order: int


class PanelUser(TypedDict, total=False):
    """Who a request acts for, as returned by :func:`panel_authenticate`."""

    name: str
    #: ``"token"`` for an ``Authorization: Bearer`` client, ``"session"`` for a browser.
    via: str


class PanelHost(Protocol):
    """What a host hands to :func:`panel_startup` and :func:`panel_shutdown`."""

    #: The host's Flask application.
    app: flask.Flask
    #: The host's Flask-SocketIO server.
    socketio: flask_socketio.SocketIO
    #: The plugin manager, for plugins that offer hooks of their own.
    plugin_manager: pluggy.PluginManager
    #: A folder the host owns and keeps across restarts; plugins keep their state below it.
    data_dir: Path
    #: Plugins the host could not load or chose not to, by name, with the reason.
    plugin_errors: Mapping[str, str]


@hookspec(historic=True)
def panel_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    """Add the hook specifications this plugin offers to other plugins.

    Called once per plugin, also for plugins registered after the call (the hook is historic),
    before any other hook of this module.

    :param plugin_manager: the host's plugin manager; call ``add_hookspecs`` on it.
    :return: None; any return value is ignored.
    """


@hookspec
def panel_menu_items() -> list[MenuItem] | None:
    """Return the menu entries this plugin adds to the host's navigation.

    All results are merged and sorted by ``order`` (default 100), then by title.

    :return: a list of :class:`MenuItem`, or None for no entries.
    """


@hookspec
def panel_blueprints() -> list[flask.Blueprint] | None:
    """Return the Flask blueprints this plugin serves.

    The host registers each one on its app before :func:`panel_startup`. A blueprint is
    responsible for its own URL prefix; routes are expected to require authentication through
    :func:`panel_authenticate`.

    :return: a list of :class:`flask.Blueprint`, or None for none.
    """


@hookspec
def panel_socketio_namespaces() -> list[flask_socketio.Namespace] | None:
    """Return the Socket.IO namespaces this plugin serves.

    The host registers each with ``socketio.on_namespace``. A namespace's ``on_connect`` should
    refuse connections for which :func:`panel_authenticate` finds no user.

    :return: a list of :class:`flask_socketio.Namespace`, or None for none.
    """


@hookspec
def panel_startup(host: PanelHost) -> None:
    """Start the plugin's services: open its store, start background work.

    Called once, after blueprints and namespaces are registered and before the first request.
    An exception is reported by the host as this plugin's error and does not stop the host.

    :param host: the running host.
    :return: None; any return value is ignored.
    """


@hookspec
def panel_shutdown(host: PanelHost) -> None:
    """Stop the plugin's background work, reap its child processes and save its state.

    Called once when the host stops (on SIGTERM too). It should return within a few seconds.

    :param host: the running host.
    :return: None; any return value is ignored.
    """


@hookspec(firstresult=True)
def panel_authenticate(request: flask.Request, auth: Any) -> PanelUser | None:
    """Tell who the current request or Socket.IO connection acts for.

    The host implements this; a plugin calls it to protect its routes with the host's own
    authentication. Stops at the first non-None result.

    :param request: the current Flask request (for Socket.IO, the handshake request).
    :param auth: the Socket.IO ``auth`` payload of a connection, or None for HTTP requests.
    :return: the :class:`PanelUser`, or None when the request is not authenticated.
    """
