"""The contract between an open1panel host, its plugins, and their provider plugins.

Only markers, hook specifications, typing protocols and the typed values they exchange live
here: no Flask app, no I/O, and nothing of any plugin.

- :mod:`hookspecs.panel` is what a host offers any plugin (``panel_*`` hooks).
- :mod:`hookspecs.ai` is what the AI plugin offers provider plugins (``ai_*`` hooks) and the
  provider protocols.
- :mod:`hookspecs.ollama`, :mod:`hookspecs.mcp`, :mod:`hookspecs.gpu`, :mod:`hookspecs.domain`
  hold every value that crosses a provider method, :mod:`hookspecs.process` the state of a
  process a provider keeps up (an MCP server's child, the local Ollama server), and
  :mod:`hookspecs.errors` the errors.

A plugin marks its implementations with :data:`hookimpl`::

    from hookspecs import hookimpl

    @hookimpl
    def panel_menu_items():
        return [{"id": "hello", "title": "Hello", "url": "/hello/"}]

and is found through the entry-point group :data:`ENTRY_POINT_GROUP`.
"""

import pluggy

#: The pluggy project name shared by hosts and plugins.
PROJECT_NAME = "open1panel"

#: The entry-point group a host loads plugins from.
ENTRY_POINT_GROUP = "open1panel.plugins"

#: Marks a hook specification.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Marks a hook implementation in a plugin.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec"]
