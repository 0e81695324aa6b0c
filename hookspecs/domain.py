"""The values a reverse-proxy (domain) provider receives and returns.

A binding reaches the provider as a validated, read-only :class:`ProxyBinding`: every value in
it has been parsed and rebuilt by the panel (IDNA names, canonical addresses and CIDRs, bcrypt
hashes), so it is safe to write into a proxy configuration as is.
"""

from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict

#: What a binding can point at.
TargetKind = Literal["ollama", "mcp"]
TARGET_KINDS: tuple[TargetKind, ...] = ("ollama", "mcp")
#: ``none``: plain HTTP; ``existing``: certificate files on disk; ``acme``: the proxy obtains one.
TLSMode = Literal["none", "existing", "acme"]
TLS_MODES: tuple[TLSMode, ...] = ("none", "existing", "acme")
#: ``basic``: user name and bcrypt hash; ``bearer``: a token in ``Authorization``.
AuthMode = Literal["none", "basic", "bearer"]
AUTH_MODES: tuple[AuthMode, ...] = ("none", "basic", "bearer")

#: Request body limits in MiB by target: unlimited for Ollama (GGUF uploads go through
#: ``/api/blobs``), and above the MCP SDK's 4 MiB message limit for MCP.
BODY_LIMIT_MB: dict[str, int] = {"ollama": 0, "mcp": 8}


@dataclass(frozen=True)
class Upstream:
    """Where the proxy sends requests: ``scheme://host:port``, host already config-safe."""

    scheme: str
    host: str
    port: int

    @property
    def hostport(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``scheme://host:port``."""
        return f"{self.scheme}://{self.hostport}"


@dataclass(frozen=True)
class ProxyBinding:
    """One binding as a provider writes it: domains, upstream, TLS, allowlist and auth.

    :param id: the binding's id, stable for its life (name its files or routes after it).
    :param domains: IDNA names in lower case; the first is the one its URL uses.
    :param target_kind: ``"ollama"`` or ``"mcp"``.
    :param upstream: where requests go.
    :param tls_mode: ``"none"``, ``"existing"`` (``certificate`` and ``certificate_key`` are
        paths) or ``"acme"``.
    :param force_https: redirect plain HTTP to HTTPS.
    :param allowlist: canonical addresses and CIDRs allowed in; empty allows everyone.
    :param auth_mode: ``"none"``, ``"basic"`` (``username``, ``password_hash`` in bcrypt) or
        ``"bearer"`` (``token``).
    """

    id: str
    domains: tuple[str, ...]
    target_kind: str
    upstream: Upstream
    tls_mode: str = "none"
    certificate: str | None = None
    certificate_key: str | None = None
    force_https: bool = False
    allowlist: tuple[str, ...] = ()
    auth_mode: str = "none"
    username: str | None = None
    password_hash: str | None = None
    token: str | None = None

    @property
    def keep_host(self) -> bool:
        """Whether the client's Host header is forwarded (MCP bridges check it against their
        allowed hosts) rather than replaced by the upstream's (Ollama, listening on loopback,
        refuses Host names that are not its own)."""
        return self.target_kind == "mcp"

    @property
    def body_limit_mb(self) -> int:
        """The largest request body in MiB; 0 is unlimited."""
        return BODY_LIMIT_MB[self.target_kind]

    @property
    def tls(self) -> bool:
        """Whether the binding serves HTTPS."""
        return self.tls_mode != "none"


class BindingStatus(TypedDict):
    """What the proxy is doing with one binding now (``DomainProvider.status``)."""

    state: Literal["online", "error", "absent"]
    error: str | None


class SettingInUse(TypedDict):
    """One thing the provider reads or writes, and the setting that changes it
    (``DomainProvider.settings_in_use``), shown when the provider cannot be used."""

    label: str
    value: str
    #: The environment variable, ``OPEN1PANEL_AI_<NAME>``.
    setting: str


class ProviderWarning(TypedDict):
    """Something about how the provider is set up that an admin should change
    (``DomainProvider.warnings``)."""

    warning: str
    fix: NotRequired[str | None]


__all__ = [
    "AUTH_MODES",
    "AuthMode",
    "BODY_LIMIT_MB",
    "BindingStatus",
    "ProviderWarning",
    "ProxyBinding",
    "SettingInUse",
    "TARGET_KINDS",
    "TLSMode",
    "TLS_MODES",
    "TargetKind",
    "Upstream",
]
