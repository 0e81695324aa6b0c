"""The values an MCP runtime provider exchanges with the panel.

:class:`MCPServerSpec` is what ``MCPProvider.start`` receives: one server definition with its
secrets, as the panel stores it. :class:`BridgeConfig` is the JSON config file of the panel's
bridge, the process that serves one MCP server over HTTP with its token and Host check; a
runtime that runs that bridge writes this file, 0600, and sends the bridge ``SIGHUP`` after
changing ``allowed_hosts``. Both are JSON, so both are :class:`~typing.TypedDict`\\ s.
"""

# No ``from __future__ import annotations``: TypedDict reads ``NotRequired`` at class creation.
from typing import Any, Literal, NotRequired, TypedDict

#: The transports a server is exposed over.
Transport = Literal["streamable-http", "sse"]
#: What a crashed server does next.
RestartPolicy = Literal["on-failure", "never"]
#: ``shared``: one upstream session for every client; ``per_client``: one child per client.
Sessions = Literal["shared", "per_client"]
#: Where a server is in its life.
Status = Literal["starting", "running", "unhealthy", "restarting", "stopping", "stopped", "error"]


class MCPGateway(TypedDict):
    """A gateway (such as supergateway) the bridge starts instead of running ``command`` itself:
    its argv, which runs the stdio server, and the internal loopback port it listens on."""

    argv: list[str]
    port: int


class MCPServerSpec(TypedDict):
    """One MCP server to run: what ``MCPProvider.start`` receives, secrets included.

    Exactly one of ``command`` (a stdio server's argv) and ``url`` (a remote Streamable HTTP
    server) is set. Every value has been validated by the panel; ``bind_host`` is a loopback or
    local address literal and ``port`` is free for this server.
    """

    id: str
    name: str
    command: list[str] | None
    #: The child's environment variables (values included; some are secrets).
    env_values: dict[str, str]
    cwd: str | None
    url: str | None
    #: Headers sent to a remote server (values included; some are secrets).
    header_values: dict[str, str]
    transports: list[Transport]
    bind_host: str
    port: int
    #: The bearer token clients must send.
    token: str
    restart_policy: RestartPolicy
    #: Host names besides loopback whose requests the server accepts (its bound domains).
    extra_hosts: list[str]
    #: The sandbox permission profile (network, folders, limits), as stored.
    profile: dict[str, Any]
    #: The user id the sandboxed child runs as.
    sandbox_uid: int
    sessions: Sessions
    #: A gateway the bridge starts instead of running ``command`` itself.
    gateway: NotRequired[MCPGateway | None]


class MCPServerState(TypedDict):
    """How a server is doing, measured now (``MCPProvider.state``)."""

    status: Status
    pid: int | None
    #: When it entered this status (RFC 3339, UTC: ``2026-12-04T22:31:03.680Z``), or None.
    since: str | None
    restarts: int
    last_error: str | None
    #: How the child is isolated (sandbox facts), when the runtime sandboxes it.
    isolation: NotRequired[dict[str, Any] | None]


class MCPTool(TypedDict):
    """One tool of a running server, from its ``tools/list`` answer."""

    name: str
    description: str | None
    #: The JSON Schema of its arguments (MCP's ``inputSchema``).
    input_schema: dict[str, Any]


class BridgeConfig(TypedDict):
    """The bridge process's config file: one server, ready to serve.

    The file holds the token and secret values: it is written 0600 in a 0700 folder.
    """

    id: str
    name: str
    #: The stdio child's argv (already wrapped in its sandbox), or None for a remote server.
    command: list[str] | None
    #: The child's whole environment when ``env_exact``, else added to the bridge's own.
    env: dict[str, str]
    env_exact: bool
    cwd: str | None
    url: str | None
    sessions: Sessions
    headers: dict[str, str]
    gateway: MCPGateway | None
    bind_host: str
    port: int
    token: str
    transports: list[Transport]
    #: Host names accepted besides loopback; re-read on ``SIGHUP``.
    allowed_hosts: list[str]
    log_file: str
    log_max_bytes: int
    log_backups: int
    #: The panel's pid: the bridge exits when that process is gone.
    panel_pid: int


class MCPServerSummary(TypedDict):
    """An MCP server as other features see it (domain targets, GPU metrics, alerts)."""

    id: str
    name: str
    status: str
    bind_host: str
    port: int


__all__ = [
    "BridgeConfig",
    "MCPGateway",
    "MCPServerSpec",
    "MCPServerState",
    "MCPServerSummary",
    "MCPTool",
    "RestartPolicy",
    "Sessions",
    "Status",
    "Transport",
]
