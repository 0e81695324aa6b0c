"""What the AI plugin offers provider plugins.

Each of the four features (Ollama models, MCP servers, GPU monitoring, domain binding) talks to
the outside world through a *provider*. A provider plugin returns provider classes from the
matching ``ai_*_providers`` hook; the panel's settings pick one by ``name``
(``OPEN1PANEL_AI_<KIND>_PROVIDER``), or ``auto`` picks the first whose :meth:`Provider.probe`
passes. Hook results are tried in pluggy's call order, so a provider plugin registered
normally is tried before the built-ins, which register with ``trylast=True``.

Every provider class is called with one argument, the panel's settings: a read-only mapping of
each ``OPEN1PANEL_AI_<NAME>`` environment variable as ``<name>`` in lower case, in which
``data_dir`` is always present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol

from hookspecs import hookspec

#: The provider kinds, in the order the status page shows them.
PROVIDER_KINDS = ("ollama", "mcp", "gpu", "domain")


class ProviderUnavailable(Exception):
    """Raised by :meth:`Provider.probe` when the provider cannot work on this machine.

    :param reason: what is missing, in a sentence a server admin understands.
    :param fix: what to do about it, or an empty string.
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class Provider(Protocol):
    """What every provider class has."""

    #: The name settings select it by, unique within its kind (``"nvml"``, ``"nginx"``).
    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, str]) -> None: ...

    def probe(self) -> None:
        """Check that the provider can work here; raise :class:`ProviderUnavailable` if not.

        Called when the panel chooses a provider and for the status page. It must be quick
        (well under a second) and must not change anything.
        """


class OllamaProvider(Provider, Protocol):
    """A model runtime reached over HTTP, such as Ollama. ``base_url`` names the server.

    Methods raise ``open1panel_ai.errors`` API errors: ``UpstreamUnavailable`` when the server
    cannot be reached or drops the connection, ``NotFound`` for an unknown model,
    ``BadRequest`` for input the server refused, ``UpstreamError`` for any other bad answer;
    each carries the server's own text in ``details["ollama"]`` where there is one.
    """

    def version(self, base_url: str) -> str:
        """Return the server's version string."""

    def list_models(self, base_url: str) -> list[dict[str, Any]]:
        """Return the local models, each shaped like an entry of Ollama's ``/api/tags``."""

    def running_models(self, base_url: str) -> list[dict[str, Any]]:
        """Return the loaded models, each shaped like an entry of Ollama's ``/api/ps``."""

    def show(self, base_url: str, name: str) -> dict[str, Any]:
        """Return one model's details, shaped like Ollama's ``/api/show`` reply."""

    def delete(self, base_url: str, name: str) -> None:
        """Delete a model."""

    def copy(self, base_url: str, source: str, destination: str) -> None:
        """Copy a model to a new name."""

    def load(self, base_url: str, name: str, keep_alive: str | int, options: Mapping[str, Any]) -> None:
        """Load a model into memory and keep it there for ``keep_alive``."""

    def unload(self, base_url: str, name: str) -> None:
        """Drop a model from memory."""

    def pull(self, base_url: str, name: str) -> Iterable[dict[str, Any]]:
        """Download a model: progress lines shaped like Ollama's ``/api/pull`` stream.

        The result has a ``close()`` that cancels the download (the server keeps what it
        has). Another thread may call it while a reader waits for a line; the reader's loop
        then ends without an error.
        """

    def blob_exists(self, base_url: str, digest: str) -> bool:
        """Whether the server holds the blob ``sha256:<hex>`` already."""

    def upload_blob(self, base_url: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        """Send a blob of ``size`` bytes, streamed from ``chunks``, under its digest."""

    def create(self, base_url: str, name: str, files: Mapping[str, str],
               extra: Mapping[str, Any] | None = None) -> Iterable[dict[str, Any]]:
        """Create a model from uploaded blobs (file name → ``sha256:<hex>``): progress lines
        shaped like Ollama's ``/api/create`` stream, closable as :meth:`pull`'s. ``extra``
        holds further fields of that request: ``template``, ``system``, ``parameters``,
        ``quantize``, or ``modelfile`` (with ``files`` empty) for servers older than 0.5.5."""


class MCPProvider(Provider, Protocol):
    """Runs MCP servers and exposes them over HTTP."""

    def start(self, server: Mapping[str, Any]) -> None:
        """Start (or adopt) the server described by the MCP server definition ``server``."""

    def stop(self, server_id: str) -> None:
        """Stop the server and every process it started."""

    def state(self, server_id: str) -> dict[str, Any]:
        """Return ``{"status", "pid", "since", "restarts", "last_error"}`` measured now."""

    def logs(self, server_id: str, tail: int) -> list[str]:
        """Return the last ``tail`` log lines of the server and its bridge."""

    def tools(self, server_id: str) -> list[dict[str, Any]]:
        """Return the live tool list (name, description, input schema) of a running server."""

    def set_hosts(self, server_id: str, hosts: list[str]) -> None:
        """Make the running server accept requests whose Host is one of ``hosts`` (the domains
        bound to it) besides loopback, without restarting it or any other server. A server that
        is not running takes them from the definition when it starts."""


class GPUProvider(Provider, Protocol):
    """Reads accelerators (or, for the CPU provider, the host) for monitoring."""

    def sample(self) -> dict[str, Any]:
        """Return one reading: ``{"devices": [...], "processes": [...], "versions": {...}}``.

        A device has at least ``index``, ``name``, ``uuid``, ``lost`` and ``unsupported``, and
        the readings it has under the names of ``docs/gpu.md`` (``utilization_gpu``,
        ``memory_used`` in bytes, ``temperature`` in °C, ``power_draw_w`` in W, …). A reading
        a device does not support is None and its name is listed in that device's
        ``unsupported``; one failing device never hides the others: it is ``lost`` with an
        ``error``. A device may name itself in an optional ``device`` field (``card0``, the
        kernel's name), which ``/metrics`` uses as its ``device`` label; without it the label
        is the provider's prefix and the index (``nvidia0``, or ``gpu0`` for a plugin). A
        provider that reads the host instead of accelerators (CPU mode) returns no devices and
        adds ``cpu`` (its readings), ``reason`` (why no GPU is used) and ``fix``.
        """

    def checks(self) -> list[dict[str, Any]]:
        """Return the compatibility checks: ``{"name", "ok", "detail", "fix"}`` each."""


class DomainProvider(Provider, Protocol):
    """Publishes a domain binding through a reverse proxy.

    A binding reaches the provider as a validated, read-only object (see
    ``open1panel_ai.domain.binding.ProxyBinding``): ``id``, ``domains`` (IDNA, lower case),
    ``target_kind`` (``"ollama"`` or ``"mcp"``), ``upstream`` (``scheme``, ``host``, ``port``),
    ``tls_mode`` (``"none"``, ``"existing"``, ``"acme"``) with ``certificate`` /
    ``certificate_key`` paths and ``force_https``, ``allowlist`` (canonical addresses and
    CIDRs), ``auth_mode`` (``"none"``, ``"basic"``, ``"bearer"``) with ``username`` /
    ``password_hash`` (bcrypt) or ``token``, ``keep_host`` (forward the client's Host header)
    and ``body_limit_mb`` (0: unlimited). Every value is safe to write into a config as is.
    """

    #: Whether the provider obtains certificates itself (ACME); bindings asking for ACME are
    #: refused with a 400 by providers that do not.
    acme: ClassVar[bool]

    def preview(self, binding: Any) -> str:
        """Return the configuration :meth:`apply` would write for ``binding``, as text."""

    def apply(self, binding: Any) -> None:
        """Create or replace the proxy configuration of ``binding``.

        On failure the previous configuration must keep serving; raise an exception whose text
        says what the proxy rejected.
        """

    def remove(self, binding_id: str) -> None:
        """Remove the proxy configuration of a binding. Removing a missing one is not an error."""

    def status(self, binding_id: str) -> dict[str, Any]:
        """Return ``{"state": "online" | "error" | "absent", "error": str | None}``."""

    def public_port(self, tls: bool) -> int:
        """Return the port clients reach a binding on, with TLS or without (for its URL)."""


@hookspec
def ai_ollama_providers() -> list[type[OllamaProvider]] | None:
    """Return the model-runtime provider classes this plugin offers.

    :return: a list of classes following :class:`OllamaProvider`, or None for none.
    """


@hookspec
def ai_mcp_providers() -> list[type[MCPProvider]] | None:
    """Return the MCP runtime provider classes this plugin offers.

    :return: a list of classes following :class:`MCPProvider`, or None for none.
    """


@hookspec
def ai_gpu_providers() -> list[type[GPUProvider]] | None:
    """Return the GPU monitoring provider classes this plugin offers.

    :return: a list of classes following :class:`GPUProvider`, or None for none.
    """


@hookspec
def ai_domain_providers() -> list[type[DomainProvider]] | None:
    """Return the reverse-proxy provider classes this plugin offers.

    :return: a list of classes following :class:`DomainProvider`, or None for none.
    """
