"""Bridge v2: a lossless JSON-RPC pass-through between HTTP clients and one MCP server (a stdio
child, or a remote Streamable HTTP server).

``python -m open1panel_ai.mcp.passthrough CONFIG`` reads the same config file as
:mod:`open1panel_ai.mcp.bridge` and serves the same routes with the same token, Host and Origin
checks. Unlike it, it never loads the ``mcp`` SDK: messages are relayed as they are, routed by
their ids, methods, progress tokens and URIs only, over a small asyncio HTTP/1.1 server.
Everything the server sends reaches the client it concerns (progress, log messages,
``list_changed``, ``resources/updated``, sampling, elicitation, roots), and everything a
client sends reaches the server.

- :mod:`.app`: routes, checks, sessions, the process (signals, the panel watch, exit codes);
- :mod:`.streams`: Streamable HTTP exchanges and event streams, legacy SSE sessions;
- :mod:`.relay`: routing between client sessions and a child (``sessions: shared`` or
  ``per_client``);
- :mod:`.modern`: the stateless 2026-07-28 revision, translated for a child of the handshake era;
- :mod:`.listen`: ``subscriptions/listen`` (2026-07-28), served by the bridge;
- :mod:`.child`: the stdio child and its stderr log;
- :mod:`.remote`: a remote Streamable HTTP server in the place of a child;
- :mod:`.httpd`: the HTTP/1.1 server.

The child runs with exactly ``config["command"]`` as its argv, ``config["env"]`` as its whole
environment and ``config["cwd"]`` as its folder. A config with ``url`` is relayed to that
remote server (:mod:`.remote`); one with ``gateway`` (supergateway) is handed to
:mod:`open1panel_ai.mcp.bridge`. The settings this bridge adds are listed in :data:`.app.DEFAULTS` and in
docs/mcp.md ("Bridge v2").
"""
