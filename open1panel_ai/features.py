"""The four features of the AI module, each a sub-package with the same rooms.

A feature package ``open1panel_ai.<name>`` has a module ``feature`` that defines:

- ``BUILTIN_PROVIDERS``: modules or objects holding its built-in provider hooks
  (``ai_<kind>_providers``, marked ``trylast=True``); registered like any plugin.
- ``menu_item()``: its entry in the host's menu, or None when it has no page.
- ``start(context)``: builds its service (it may register task kinds, start background work)
  and returns it; views reach it as ``current_ai().services[name]``.
- ``stop(service)``: stops that background work; called before the task runner stops.
- optionally ``add_commands(subparsers)``: adds ``open1panel-ai`` subcommands (see
  :mod:`open1panel_ai.cli`).

Importing ``feature`` also imports the feature's views, which attach their routes to the
plugin's blueprint. Translations live in ``open1panel_ai/<name>/translations/<lang>.json`` and
join the one catalog (see :mod:`open1panel_ai.i18n`).

Features use each other only through these service methods (all plain values, no Flask):

- ``ollama``: ``endpoints() -> list[dict]`` and ``endpoint(name) -> dict`` (at least ``name``
  and ``url``; :class:`~open1panel_ai.errors.NotFound` when unknown); ``running_everywhere()
  -> list[dict]``, the loaded models of every reachable endpoint, each with ``endpoint``,
  ``name``, ``size`` and ``size_vram``.
- ``mcp``: ``servers() -> list[dict]`` and ``server(server_id) -> dict`` (at least ``id``,
  ``name``, ``status``, ``bind_host``, ``port``; NotFound when unknown); ``set_extra_hosts(
  server_id, hosts)``, which makes that server's bridge accept those Host names without
  restarting any other server; ``on_server_change(callback)``, which calls ``callback(server_id,
  event)`` after a server is ``"updated"`` (port, bind host, …) or ``"deleted"``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: In the order of the menu and the landing page's cards. Alerts come last: its rules read the
#: services of the others, which start first.
FEATURE_NAMES = ("ollama", "mcp", "gpu", "domain", "alerts")


def load() -> dict[str, ModuleType]:
    """The ``feature`` module of every feature, by name."""
    return {name: importlib.import_module(f"open1panel_ai.{name}.feature") for name in FEATURE_NAMES}
