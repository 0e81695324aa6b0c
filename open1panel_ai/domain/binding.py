"""What a proxy provider receives: one binding, validated, with its target resolved.

The service builds a :class:`ProxyBinding` from a stored binding and the target's address;
providers turn it into proxy configuration and never see unvalidated text.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_KINDS = ("ollama", "mcp")
TLS_MODES = ("none", "existing", "acme")
AUTH_MODES = ("none", "basic", "bearer")

#: Request body limits: unlimited for Ollama (GGUF uploads go through ``/api/blobs``), and
#: above the MCP SDK's 4 MiB message limit for MCP.
BODY_LIMIT_MB = {"ollama": 0, "mcp": 8}


@dataclass(frozen=True)
class Upstream:
    """Where the proxy sends requests: ``scheme://host:port``, host already config-safe."""

    scheme: str
    host: str
    port: int

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.hostport}"


@dataclass(frozen=True)
class ProxyBinding:
    """A binding as a provider writes it.

    ``keep_host`` says whether the client's Host header is forwarded (MCP bridges check it
    against their allowed hosts) or replaced by the upstream's (Ollama, listening on loopback,
    refuses Host names that are not its own).
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
        return self.target_kind == "mcp"

    @property
    def body_limit_mb(self) -> int:
        return BODY_LIMIT_MB[self.target_kind]

    @property
    def tls(self) -> bool:
        return self.tls_mode != "none"
