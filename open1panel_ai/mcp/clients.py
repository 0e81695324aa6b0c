"""Ready-to-paste client configurations, one builder per client, each in its own format.

Clients spell the same thing differently (``mcpServers`` vs ``servers``, ``type`` required or
not, Claude Desktop taking no URL at all), so each has its own builder rather than one template.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from typing import Any


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def _cursor(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    entry = {"url": url, "headers": {"Authorization": f"Bearer {token}"}}
    return {"path": "~/.cursor/mcp.json", "format": "json",
            "snippet": _json({"mcpServers": {name: entry}})}


def _vscode(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    # VS Code asks for the token once and keeps it in its secret storage: the file, often
    # committed with the project, holds no token; the user types ``prompt_value`` when asked.
    input_id = f"{name}-token"
    document = {
        "servers": {name: {"type": "sse" if transport == "sse" else "http", "url": url,
                           "headers": {"Authorization": f"Bearer ${{input:{input_id}}}"}}},
        "inputs": [{"type": "promptString", "id": input_id, "password": True,
                    "description": f"Bearer token of the MCP server {name}"}],
    }
    return {"path": ".vscode/mcp.json", "format": "json", "snippet": _json(document),
            "prompt_value": token}


def _claude_code(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    argv = ["claude", "mcp", "add", "--transport", "sse" if transport == "sse" else "http",
            name, url, "--header", f"Authorization: Bearer {token}"]
    return {"path": None, "format": "shell", "snippet": shlex.join(argv)}


def _claude_desktop(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    # Claude Desktop only starts local commands, so mcp-remote bridges to the URL. No space
    # inside an argument: some clients split arguments on spaces.
    args = ["-y", "mcp-remote", url, "--header", "Authorization:${AUTH_HEADER}"]
    if transport == "sse":
        args += ["--transport", "sse-only"]
    entry = {"command": "npx", "args": args, "env": {"AUTH_HEADER": f"Bearer {token}"}}
    return {"path": "claude_desktop_config.json", "format": "json",
            "snippet": _json({"mcpServers": {name: entry}})}


def _generic(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    entry = {"type": "sse" if transport == "sse" else "http", "url": url,
             "headers": {"Authorization": f"Bearer {token}"}}
    return {"path": None, "format": "json", "snippet": _json({"mcpServers": {name: entry}})}


#: Client name → builder of ``{"path", "format", "snippet"}``.
CLIENTS: dict[str, Callable[[str, str, str, str], dict[str, Any]]] = {
    "cursor": _cursor,
    "vscode": _vscode,
    "claude-code": _claude_code,
    "claude-desktop": _claude_desktop,
    "generic": _generic,
}


def client_config(client: str, name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    """The configuration of ``client`` for the server ``name`` at ``url`` over ``transport``;
    ``prompt_value`` is what the user types when the client asks (None: it will not ask)."""
    return {"client": client, "transport": transport, "url": url, "prompt_value": None,
            **CLIENTS[client](name, url, transport, token)}
