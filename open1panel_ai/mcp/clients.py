"""Ready-to-paste client configurations, one builder per client, each in its own format.

Clients spell the same thing differently (``mcpServers`` vs ``servers``, ``type`` required or
not, Claude Desktop taking no URL at all), so each has its own builder rather than one template.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Where each transport answers under a bridge's base URL.
TRANSPORT_PATHS = {"streamable-http": "/mcp", "sse": "/sse"}


@dataclass(frozen=True)
class PublicAddress:
    """An address a server's bridge is reached at through a reverse proxy (a bound domain):
    ``scheme://host[:port]path_prefix`` followed by the bridge's own paths (``/mcp``, ``/sse``).

    ``port`` None is the scheme's own port; ``path_prefix`` is empty when the proxy serves the
    bridge at the root of the host, else a path such as ``/tools/time`` (no trailing slash).
    """

    scheme: str
    host: str
    port: int | None = None
    path_prefix: str = ""

    def base(self) -> str:
        """The base URL, without a port when it is the scheme's own."""
        default = {"http": 80, "https": 443}[self.scheme]
        port = "" if self.port in (None, default) else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path_prefix}"

    def as_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "host": self.host, "port": self.port, "path_prefix": self.path_prefix}


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def _cursor(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    entry = {"url": url, "headers": {"Authorization": f"Bearer {token}"}}
    return {"path": "~/.cursor/mcp.json", "format": "json", "snippet": _json({"mcpServers": {name: entry}})}


def _vscode(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    # VS Code asks for the token once and keeps it in its secret storage: the file, often
    # committed with the project, holds no token; the user types ``prompt_value`` when asked.
    input_id = f"{name}-token"
    document = {
        "servers": {
            name: {
                "type": "sse" if transport == "sse" else "http",
                "url": url,
                "headers": {"Authorization": f"Bearer ${{input:{input_id}}}"},
            }
        },
        "inputs": [
            {
                "type": "promptString",
                "id": input_id,
                "password": True,
                "description": f"Bearer token of the MCP server {name}",
            }
        ],
    }
    return {"path": ".vscode/mcp.json", "format": "json", "snippet": _json(document), "prompt_value": token}


def _claude_code(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    argv = [
        "claude",
        "mcp",
        "add",
        "--transport",
        "sse" if transport == "sse" else "http",
        name,
        url,
        "--header",
        f"Authorization: Bearer {token}",
    ]
    return {"path": None, "format": "shell", "snippet": shlex.join(argv)}


def _claude_desktop(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    # Claude Desktop only starts local commands, so mcp-remote bridges to the URL. No space
    # inside an argument: some clients split arguments on spaces.
    args = ["-y", "mcp-remote", url, "--header", "Authorization:${AUTH_HEADER}"]
    if transport == "sse":
        args += ["--transport", "sse-only"]
    entry = {"command": "npx", "args": args, "env": {"AUTH_HEADER": f"Bearer {token}"}}
    return {"path": "claude_desktop_config.json", "format": "json", "snippet": _json({"mcpServers": {name: entry}})}


def _generic(name: str, url: str, transport: str, token: str) -> dict[str, Any]:
    entry = {
        "type": "sse" if transport == "sse" else "http",
        "url": url,
        "headers": {"Authorization": f"Bearer {token}"},
    }
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
    return {
        "client": client,
        "transport": transport,
        "url": url,
        "prompt_value": None,
        **CLIENTS[client](name, url, transport, token),
    }
