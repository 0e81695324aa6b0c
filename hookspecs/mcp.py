"""The values an MCP runtime provider exchanges with the panel.

:class:`MCPServerSpec` is what ``MCPProvider.start`` receives: one server definition with its
secrets, as the panel stores it. :class:`BridgeConfig` is the JSON config file of the panel's
bridge, the process that serves one MCP server over HTTP with its token and Host check; a
runtime that runs that bridge writes this file, 0600, and sends the bridge ``SIGHUP`` after
changing ``allowed_hosts``. Both are JSON, so both are :class:`~typing.TypedDict`\\ s.
"""

# No ``from __future__ import annotations``: TypedDict reads ``NotRequired`` at class creation.
from typing import Any, Literal, NotRequired, TypedDict

from hookspecs.process import ProcessState, ProcessStatus

#: The transports a server is exposed over.
Transport = Literal["streamable-http", "sse"]
#: What a crashed server does next.
RestartPolicy = Literal["on-failure", "never"]
#: ``shared``: one upstream session for every client; ``per_client``: one child per client.
Sessions = Literal["shared", "per_client"]
#: Where a server is in its life (the same statuses as every supervised process).
Status = ProcessStatus


class SandboxProfile(TypedDict, total=False):
    """What a sandboxed server may touch, as stored with its definition; a key left out takes
    its default (no folders, the network, 4096 open files, 512 processes, no memory limit)."""

    #: Absolute paths the server may read, and those it may also write.
    read: list[str]
    write: list[str]
    #: ``all``, or ``none``: no network at all.
    network: Literal["all", "none"]
    #: Limits; None is no limit of the panel's.
    memory_mb: int | None
    open_files: int | None
    processes: int | None
    #: ``sandbox``, or ``none``: run it as the panel's user (shown as a warning).
    isolation: Literal["sandbox", "none"]


class IsolationLayer(TypedDict):
    """One layer of isolation (``user``, ``filesystem``, ``network``, ``limits``,
    ``environment``) and whether it is in effect for a child; when it is not, why and what would
    put it in effect. The ``_i18n`` twins hold the same words as a catalog key and its values
    (``{"key", "params"}``), or None."""

    name: str
    applied: bool
    reason: str | None
    reason_i18n: dict[str, object] | None
    fix: str | None
    fix_i18n: dict[str, object] | None


class Isolation(TypedDict):
    """The isolation a child got at its last start."""

    #: ``sandbox`` (every layer), ``partial`` or ``none``.
    mode: Literal["sandbox", "partial", "none"]
    #: The uid it runs as; None when it is the panel's.
    uid: int | None
    #: Its home folder, or None.
    home: str | None
    layers: list[IsolationLayer]


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
    profile: SandboxProfile
    #: The user id the sandboxed child runs as.
    sandbox_uid: int
    sessions: Sessions
    #: A gateway the bridge starts instead of running ``command`` itself.
    gateway: NotRequired[MCPGateway | None]


class MCPServerState(ProcessState):
    """How a server is doing, measured now (``MCPProvider.state``)."""

    #: How the child is isolated (sandbox facts), when the runtime sandboxes it.
    isolation: NotRequired[Isolation | None]


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
    "Isolation",
    "IsolationLayer",
    "MCPGateway",
    "MCPServerSpec",
    "MCPServerState",
    "MCPServerSummary",
    "MCPTool",
    "RestartPolicy",
    "SandboxProfile",
    "Sessions",
    "Status",
    "Transport",
]
