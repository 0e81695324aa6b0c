"""The open1panel plugin: the AI section's pages, API, Socket.IO namespace and services.

Registered through the ``open1panel.plugins`` entry point ``ai``. Everything here goes through
the public hooks of :mod:`hookspecs.panel`, so any host of that contract can load it.
"""

from __future__ import annotations

import pluggy
from flask import Blueprint

import hookspecs.ai
from hookspecs import hookimpl
from hookspecs.panel import MenuItem, PanelHost
from open1panel_ai import features, i18n, views  # noqa: F401  (views attaches the routes)
from open1panel_ai.config import Settings
from open1panel_ai.context import AIContext
from open1panel_ai.realtime import AINamespace
from open1panel_ai.web import EXTENSION_KEY, blueprint

#: Every feature, by name, in order (see :mod:`open1panel_ai.features`).
FEATURES = features.load()


@hookimpl
def panel_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    plugin_manager.add_hookspecs(hookspecs.ai)
    for name, feature in FEATURES.items():
        for index, providers in enumerate(feature.builtin_providers):
            plugin_manager.register(providers, name=f"ai.{name}.builtin{index or ''}")


@hookimpl
def panel_menu_items() -> list[MenuItem]:
    items: list[MenuItem] = [{"id": "ai", "title": i18n.titles("menu.ai"), "url": "/ai/", "icon": "ai", "order": 10}]
    for order, feature in enumerate(FEATURES.values(), start=11):
        item = feature.menu_item()
        if item is not None:
            items.append({"order": order, **item})  # type: ignore[typeddict-item]
    return items


@hookimpl
def panel_blueprints() -> list[Blueprint]:
    return [blueprint]


@hookimpl
def panel_socketio_namespaces() -> list[AINamespace]:
    return [AINamespace()]


@hookimpl
def panel_startup(host: PanelHost) -> None:
    context = AIContext(host, Settings.from_environ(), FEATURES)
    host.app.extensions[EXTENSION_KEY] = context
    context.start()


@hookimpl
def panel_shutdown(host: PanelHost) -> None:
    context = host.app.extensions.pop(EXTENSION_KEY, None)
    if context is not None:
        context.stop()
