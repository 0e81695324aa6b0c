"""The features of the AI module, each a sub-package with the same rooms, and the one registry
of them.

A feature package ``open1panel_ai.<name>`` has a module ``feature`` that declares its
:class:`Feature` as ``FEATURE``: what it is called, the provider kind it uses, its built-in
providers, its menu entry, its Socket.IO topics, the module of its routes, its CLI commands,
its part of the overview, and the typed interfaces its service offers other features. Nothing
else in the package lists the features: the plugin, the CLI, the context, the landing page, the
topics Socket.IO accepts and the API docs all read :func:`load`.

Importing ``feature`` also imports the feature's views, which attach their routes to the
plugin's blueprint. Translations live in ``open1panel_ai/<name>/translations/<lang>.json`` and
join the one catalog (see :mod:`open1panel_ai.i18n`).

Features use each other only through the typed interfaces of :mod:`open1panel_ai.interfaces`,
found with :meth:`open1panel_ai.context.AIContext.find`; never by a feature's name.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


def _nothing_to_stop(service: Any) -> None:
    """A feature whose work lives elsewhere (tasks, the proxy) has nothing to stop."""


@dataclass(frozen=True)
class Event:
    """A Socket.IO event sent on a topic: its name, and what its payload holds in the words of
    the API reference (Markdown), which is rendered from these."""

    name: str
    payload: str


@dataclass(frozen=True)
class Topic:
    """A Socket.IO topic a client may subscribe to: a regular expression (without anchors), how
    the error message for an unknown topic and the API reference show it (``mcp:<id>:logs``),
    and the events sent on it."""

    pattern: str
    shown: str
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Feature:
    """One feature of the AI module, as the plugin loads it.

    :param name: the sub-package's name (``"gpu"``), also its key in ``context.services``.
    :param order: where it comes in the menu, the landing page and the start-up (low first);
        a feature that reads others' services starts after them.
    :param start: ``start(context)`` builds its service (it may register task kinds and start
        background work) and returns it.
    :param stop: ``stop(service)`` stops that work; called before the task runner stops.
    :param kind: the provider kind it uses (one of :data:`hookspecs.ai.PROVIDER_KINDS`), or
        None for a feature without providers.
    :param builtin_providers: modules or objects holding its built-in provider hooks
        (``ai_<kind>_providers``, marked ``trylast=True``); registered like any plugin.
    :param menu: returns its entry in the host's menu (``id``, ``title``, ``url``, ``icon``);
        None when it has no page.
    :param topics: the Socket.IO topics it publishes on.
    :param views: the module whose routes it adds to the plugin's blueprint.
    :param api_tag: the OpenAPI tag of its routes, ``api_title`` the title of their section in
        the API reference, and ``guide`` the docs page about the feature.
    :param add_commands: adds ``open1panel-ai`` subcommands to an ``argparse`` subparsers
        object (see :mod:`open1panel_ai.cli`).
    :param overview: its part of ``GET /overview`` from its service; None for none.
    :param offers: the interfaces of :mod:`open1panel_ai.interfaces` its service implements.
    """

    name: str
    order: int
    start: Callable[[Any], Any]
    stop: Callable[[Any], None] = _nothing_to_stop
    kind: str | None = None
    builtin_providers: tuple[object, ...] = ()
    menu: Callable[[], dict[str, Any]] | None = None
    topics: tuple[Topic, ...] = ()
    views: ModuleType | None = None
    api_tag: str | None = None
    api_title: str | None = None
    guide: str | None = None
    add_commands: Callable[[Any], None] | None = None
    overview: Callable[[Any], dict[str, Any]] | None = None
    offers: tuple[type, ...] = field(default=())

    def menu_item(self) -> dict[str, Any] | None:
        """Its menu entry, or None when it has no page."""
        return self.menu() if self.menu is not None else None


def load() -> dict[str, Feature]:
    """Every feature of the package, by name, in their order: each sub-package with a
    ``feature`` module declaring ``FEATURE``."""
    import open1panel_ai

    found = []
    for module in pkgutil.iter_modules(open1panel_ai.__path__):
        name = f"open1panel_ai.{module.name}.feature"
        if module.ispkg and importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name).FEATURE)
    return {feature.name: feature for feature in sorted(found, key=lambda f: f.order)}


def add_commands(subparsers: argparse._SubParsersAction, features: dict[str, Feature]) -> None:  # type: ignore[type-arg]
    """Let each feature add its ``open1panel-ai`` subcommands."""
    for feature in features.values():
        if feature.add_commands is not None:
            feature.add_commands(subparsers)
