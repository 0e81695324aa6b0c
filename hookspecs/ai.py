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

Every value a provider receives or returns is a type of this package: :mod:`hookspecs.ollama`,
:mod:`hookspecs.mcp`, :mod:`hookspecs.gpu` and :mod:`hookspecs.domain` hold them, and
:mod:`hookspecs.errors` the errors a provider raises. Members marked *optional* have a default
in :class:`MCPProviderDefaults` / :class:`DomainProviderDefaults`: a provider class may inherit
it, and the panel adds it to a class that does not, so every provider it holds has every member.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from hookspecs import hookspec
from hookspecs.domain import BindingStatus, ProviderWarning, ProxyBinding, SettingInUse
from hookspecs.errors import ProviderUnavailable as ProviderUnavailable  # re-exported
from hookspecs.gpu import CompatibilityCheck, GPUSample
from hookspecs.mcp import MCPServerSpec, MCPServerState, MCPTool
from hookspecs.ollama import (
    ChatLine,
    ChatRequest,
    EmbedReply,
    EmbedRequest,
    ModelEntry,
    ModelInfo,
    OllamaServerState,
    ProgressLine,
    RunningModel,
)

#: The provider kinds, in the order the status page shows them.
PROVIDER_KINDS = ("ollama", "mcp", "gpu", "domain")


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


@runtime_checkable
class ProgressStream(Protocol):
    """A stream of progress lines that another thread may close.

    ``close()`` cancels the work (the server keeps what it has); a reader waiting for a line
    then sees the iteration end without an error.
    """

    def __iter__(self) -> Iterator[ProgressLine]:
        """The lines, in the order the server sent them."""

    def close(self) -> None:
        """Stop the stream; safe to call more than once and from another thread."""


@runtime_checkable
class ChatStream(Protocol):
    """A streamed chat reply that another thread may close, as :class:`ProgressStream`.

    ``close()`` ends the reply (the server stops generating); a reader waiting for a line then
    sees the iteration end without an error.
    """

    def __iter__(self) -> Iterator[ChatLine]:
        """The lines, in the order the server sent them."""

    def close(self) -> None:
        """Stop the stream; safe to call more than once and from another thread."""


class OllamaProvider(Provider, Protocol):
    """A model runtime reached over HTTP, such as Ollama. ``base_url`` names the server.

    Methods raise :mod:`hookspecs.errors`: ``UpstreamUnavailable`` when the server cannot be
    reached or drops the connection, ``NotFound`` for an unknown model, ``BadRequest`` for
    input the server refused, ``UpstreamError`` for any other bad answer; each carries the
    server's own text in ``details["ollama"]`` where there is one.
    """

    def version(self, base_url: str) -> str:
        """Return the server's version string."""

    def list_models(self, base_url: str) -> list[ModelEntry]:
        """Return the local models (Ollama's ``/api/tags``)."""

    def running_models(self, base_url: str) -> list[RunningModel]:
        """Return the loaded models (Ollama's ``/api/ps``)."""

    def show(self, base_url: str, name: str) -> ModelInfo:
        """Return one model's details (Ollama's ``/api/show``)."""

    def delete(self, base_url: str, name: str) -> None:
        """Delete a model."""

    def copy(self, base_url: str, source: str, destination: str) -> None:
        """Copy a model to a new name."""

    def load(self, base_url: str, name: str, keep_alive: str | int, options: Mapping[str, Any]) -> None:
        """Load a model into memory and keep it there for ``keep_alive``."""

    def unload(self, base_url: str, name: str) -> None:
        """Drop a model from memory."""

    def pull(self, base_url: str, name: str) -> ProgressStream:
        """Download a model: a closable stream of Ollama's ``/api/pull`` progress lines."""

    def blob_exists(self, base_url: str, digest: str) -> bool:
        """Whether the server holds the blob ``sha256:<hex>`` already."""

    def upload_blob(self, base_url: str, digest: str, chunks: Iterable[bytes], size: int) -> None:
        """Send a blob of ``size`` bytes, streamed from ``chunks``, under its digest."""

    def create(
        self, base_url: str, name: str, files: Mapping[str, str], extra: Mapping[str, Any] | None = None
    ) -> ProgressStream:
        """Create a model from uploaded blobs (file name → ``sha256:<hex>``): progress lines
        of Ollama's ``/api/create`` stream, closable as :meth:`pull`'s. ``extra`` holds further
        fields of that request: ``template``, ``system``, ``parameters``, ``quantize``, or
        ``modelfile`` (with ``files`` empty) for servers older than 0.5.5."""

    def chat(self, base_url: str, request: ChatRequest) -> ChatStream:
        """Chat with a model: a closable stream of Ollama's ``/api/chat`` reply lines. An error
        before the first line (an unknown model, a refused request) is raised; one after it is
        a last line with ``error``."""

    def embed(self, base_url: str, request: EmbedRequest) -> EmbedReply:
        """Embed text with a model (Ollama's ``/api/embed``); a load may come first, so this
        may take as long as loading the model."""


class MCPProvider(Provider, Protocol):
    """Runs MCP servers and exposes them over HTTP."""

    def start(self, server: MCPServerSpec) -> None:
        """Start (or adopt) ``server``; starting a running server replaces it."""

    def stop(self, server_id: str) -> None:
        """Stop the server and every process it started; stopping a stopped one does nothing."""

    def state(self, server_id: str) -> MCPServerState:
        """Return how the server is doing, measured now (``stopped`` for an unknown id)."""

    def logs(self, server_id: str, tail: int) -> list[str]:
        """Return the last ``tail`` log lines of the server and its bridge."""

    def tools(self, server_id: str) -> list[MCPTool]:
        """Return the live tool list of a running server; ``Conflict`` when it is not running."""

    def set_hosts(self, server_id: str, hosts: list[str]) -> None:
        """Make the running server accept requests whose Host is one of ``hosts`` (the domains
        bound to it) besides loopback, without restarting it or any other server. A server that
        is not running takes them from the definition when it starts."""

    def forget(self, server_id: str) -> None:
        """*Optional.* Remove what a deleted server left behind (its home, caches)."""

    def log_path(self, server_id: str) -> Path | None:
        """*Optional.* The file the server's log lines are appended to, for following it live;
        None when the runtime keeps no such file (the panel then polls :meth:`logs`)."""


class MCPProviderDefaults:
    """Defaults of :class:`MCPProvider`'s optional members."""

    def forget(self, server_id: str) -> None:
        """Nothing is kept per server."""

    def log_path(self, server_id: str) -> Path | None:
        """No log file to follow."""
        return None


class GPUProvider(Provider, Protocol):
    """Reads accelerators (or, for the CPU provider, the host) for monitoring."""

    def sample(self) -> GPUSample:
        """Return one reading of every device (see :class:`hookspecs.gpu.GPUSample`)."""

    def checks(self) -> list[CompatibilityCheck]:
        """Return the compatibility checks, in the order they ran."""


class DomainProvider(Provider, Protocol):
    """Publishes a domain binding (:class:`hookspecs.domain.ProxyBinding`) through a reverse
    proxy. ``apply`` and ``remove`` raise :class:`hookspecs.errors.ProxyRejected` with the
    proxy's text when it refuses, and :class:`hookspecs.errors.ProxyUnreachable` when it cannot
    be reached at all."""

    #: Whether the provider obtains certificates itself (ACME); bindings asking for ACME are
    #: refused with a 400 by providers that do not.
    acme: ClassVar[bool]
    #: *Optional.* Whether a new configuration wins over an old one for the same names that is
    #: still to be removed (Caddy puts new routes first); when False, such names must wait.
    new_routes_first: ClassVar[bool]

    def preview(self, binding: ProxyBinding) -> str:
        """Return the configuration :meth:`apply` would write for ``binding``, as text."""

    def apply(self, binding: ProxyBinding) -> None:
        """Create or replace the proxy configuration of ``binding``; applying the same binding
        twice leaves the proxy as applying it once.

        On failure the previous configuration must keep serving.
        """

    def remove(self, binding_id: str) -> None:
        """Remove the proxy configuration of a binding. Removing a missing one is not an error."""

    def status(self, binding_id: str) -> BindingStatus:
        """Return what the proxy does with the binding now."""

    def public_port(self, tls: bool) -> int:
        """Return the port clients reach a binding on, with TLS or without (for its URL)."""

    def remove_many(self, binding_ids: list[str]) -> None:
        """*Optional.* Remove several bindings in one change (each may fail a check of a
        configuration that still holds the others)."""

    def settings_in_use(self) -> list[SettingInUse]:
        """*Optional.* What the provider reads and writes, and the setting that changes each."""

    def warnings(self) -> list[ProviderWarning]:
        """*Optional.* What about its setup an admin should change (empty: nothing)."""


class DomainProviderDefaults:
    """Defaults of :class:`DomainProvider`'s optional members."""

    new_routes_first: ClassVar[bool] = False

    def remove(self, binding_id: str) -> None:
        """The provider's own :meth:`DomainProvider.remove` comes first in its class."""
        raise NotImplementedError

    def remove_many(self, binding_ids: list[str]) -> None:
        """One :meth:`DomainProvider.remove` per binding; every one is tried, then the first
        failure is raised."""
        failure: Exception | None = None
        for binding_id in binding_ids:
            try:
                self.remove(binding_id)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def settings_in_use(self) -> list[SettingInUse]:
        """Nothing to show."""
        return []

    def warnings(self) -> list[ProviderWarning]:
        """Nothing to warn about."""
        return []


#: The defaults of optional members, by kind; kinds without optional members have none.
DEFAULTS: dict[str, type] = {"mcp": MCPProviderDefaults, "domain": DomainProviderDefaults}
#: The optional members of each kind's protocol, which :data:`DEFAULTS` supplies.
OPTIONAL_MEMBERS: dict[str, tuple[str, ...]] = {
    "mcp": ("forget", "log_path"),
    "domain": ("new_routes_first", "remove_many", "settings_in_use", "warnings"),
}
#: The protocol of each kind.
PROTOCOLS: dict[str, type] = {
    "ollama": OllamaProvider,
    "mcp": MCPProvider,
    "gpu": GPUProvider,
    "domain": DomainProvider,
}


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


class OllamaServerProvider(Provider, Protocol):
    """Runs the local Ollama server one way (a systemd unit, a process the panel supervises)
    and changes its settings.

    :meth:`Provider.probe` says whether the local server runs this way here; its
    ``ProviderUnavailable`` reason is what the page shows when no way does ("not managed
    here"). Settings are ``ollama serve`` environment variables (``OLLAMA_MODELS`` → its value),
    validated by the panel before they reach :meth:`write`; every value is free of quotes,
    backslashes, ``%``, control characters and line breaks.
    """

    def settings(self) -> dict[str, str]:
        """Return the settings the panel gave the server (names left out are at their defaults)."""

    def inherited(self) -> dict[str, str]:
        """Return what the server uses for a setting the panel does not give, where that is not
        Ollama's own default (the service user's models folder, the panel's ``OLLAMA_HOST``)."""

    def write(self, values: Mapping[str, str]) -> None:
        """Make ``values``, whole, the settings the server starts with next (a drop-in and a
        ``daemon-reload``, or the supervised process's environment); no restart."""

    def start(self) -> None:
        """Start the server; starting a running server does nothing."""

    def stop(self) -> None:
        """Stop the server; stopping a stopped one does nothing."""

    def restart(self) -> None:
        """Stop the server if it runs, then start it with the settings last written."""

    def state(self) -> OllamaServerState:
        """Return the server's state measured now."""

    def logs(self, tail: int) -> list[str]:
        """Return the last ``tail`` lines of the server's log, oldest first."""

    def attach(self) -> None:
        """The panel now runs its background work: a provider that runs the server itself
        starts it again if it was running when the panel last stopped."""

    def detach(self) -> None:
        """The panel is stopping: a provider that runs the server itself stops it (a systemd
        unit keeps running)."""


PROTOCOLS["ollama_server"] = OllamaServerProvider


@hookspec
def ai_ollama_server_providers() -> list[type[OllamaServerProvider]] | None:
    """Return the classes that run the local Ollama server one way or another.

    The panel picks one by ``OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER`` (``auto``: the first whose
    probe passes; ``none``: never manage the server). With none usable, the page shows the
    local server as not managed here, with the reasons.

    :return: a list of classes following :class:`OllamaServerProvider`, or None for none.
    """
