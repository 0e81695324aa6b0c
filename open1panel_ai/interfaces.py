"""What features offer each other: typed interfaces, never a lookup of a feature by name.

A feature's :class:`~open1panel_ai.features.Feature` lists the interfaces its service
implements in ``offers``; another feature asks the context for the service that offers one
(:meth:`open1panel_ai.context.AIContext.find`) and gets None when no running feature does.
Every value is plain data (the contract's types), so no feature imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypedDict

from prometheus_client.core import Metric

from hookspecs.mcp import MCPServerSummary
from hookspecs.ollama import LoadedModel, OllamaEndpoint


class PublicAddress(TypedDict):
    """Where clients reach an MCP server through a reverse proxy."""

    scheme: str
    host: str
    #: None for the scheme's own port.
    port: int | None
    #: ``""`` when served at the host's root.
    path_prefix: str


class OllamaEndpoints(Protocol):
    """The Ollama servers the panel manages: targets of domain bindings."""

    def endpoints(self) -> list[OllamaEndpoint]:
        """Every managed server."""

    def endpoint(self, name: str) -> OllamaEndpoint:
        """One server; ``NotFound`` when unknown."""

    def endpoints_status(self) -> list[dict[str, Any]]:
        """Every managed server with ``reachable``, ``version`` and ``error``, asked now."""


class LoadedModels(Protocol):
    """The models loaded in memory on every reachable Ollama server (GPU memory, metrics)."""

    def running_everywhere(self) -> list[LoadedModel]:
        """Each loaded model with its ``endpoint``, ``name``, ``size`` and ``size_vram``."""


class MCPServers(Protocol):
    """The MCP servers the panel runs: targets of domain bindings, and metrics."""

    def servers(self) -> list[MCPServerSummary]:
        """Every server, with at least ``id``, ``name``, ``status``, ``bind_host``, ``port``."""

    def server(self, server_id: str) -> MCPServerSummary:
        """One server; ``NotFound`` when unknown."""

    def set_extra_hosts(self, server_id: str, hosts: list[str]) -> Any:
        """Make that server's bridge accept these Host names (its bound domains) without
        restarting any other server."""

    def set_public_addresses(self, server_id: str, addresses: list[PublicAddress]) -> Any:
        """Record where clients reach that server through a reverse proxy (its client configs
        name the first) and make its bridge accept their host names, as
        :meth:`set_extra_hosts` does."""

    def on_server_change(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(server_id, event)`` after a server is ``"updated"`` (port, bind
        host, ...) or ``"deleted"``."""


class GPUReadings(Protocol):
    """The GPU monitor's last reading (alerts on temperature, memory, lost GPUs)."""

    def current(self) -> dict[str, Any]:
        """The latest sample (:class:`hookspecs.gpu.GPUSample`) with the ``provider`` and
        ``mode`` (``gpu`` or ``cpu``) it came from."""


class DomainBindings(Protocol):
    """The domain bindings and their state (alerts on bindings in error)."""

    def bindings(self) -> list[dict[str, Any]]:
        """Every binding as ``GET /domains`` shows it."""


class MetricsSource(Protocol):
    """A service whose state goes out on ``/metrics`` beside the GPUs' (the alerts' states)."""

    def metric_families(self) -> list[Metric]:
        """The families of one scrape, read now."""


__all__ = [
    "DomainBindings",
    "GPUReadings",
    "LoadedModels",
    "MCPServers",
    "MetricsSource",
    "OllamaEndpoints",
    "PublicAddress",
]
