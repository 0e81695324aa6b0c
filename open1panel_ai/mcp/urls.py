"""URLs of MCP servers: where a bridge is reached, the Host headers it accepts, and remote URLs
as they may be shown.

A remote server's URL can carry a credential in its userinfo (``https://user:pass@host``) or
its query string (``?api_key=…``). Routes and logs show :func:`masked` instead of the URL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

#: What replaces a hidden userinfo or query string.
MASK = "***"


def base_url(bind_host: str, port: int) -> str:
    """The bridge's base URL for a client on this machine: a wildcard bind is reached on
    loopback, an IPv6 address goes in brackets."""
    host = bind_host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def masked(url: str | None) -> str | None:
    """``url`` with its userinfo and query string replaced by ``***``; None stays None."""
    if not url:
        return url
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    query = MASK if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def loopback_hosts() -> list[str]:
    """Host header patterns always accepted: the loopback names on any port."""
    return ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]


def host_patterns(config: Mapping[str, Any]) -> list[str]:
    """The Host header values the bridge accepts: loopback, its bind address, bound domains."""
    hosts = loopback_hosts()
    bind = config["bind_host"]
    if bind not in ("0.0.0.0", "::"):
        hosts += [bind, f"{bind}:*"]
    else:
        hosts += _interface_hosts()
    for name in config.get("allowed_hosts") or []:
        hosts += [name, f"{name}:*"]
    return hosts


def _interface_hosts() -> list[str]:
    """Every address of this machine's interfaces, for a bridge bound to all of them."""
    import psutil

    hosts = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name in ("AF_INET", "AF_INET6"):
                ip = address.address.split("%")[0]
                ip = f"[{ip}]" if ":" in ip else ip
                hosts += [ip, f"{ip}:*"]
    return hosts


class MaskedURL(logging.Filter):
    """Writes a remote URL's userinfo and query string as ``***`` in every log line."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.parts = [part for part in _secret_parts(url) if part]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for part in self.parts:
            message = message.replace(part, MASK)
        record.msg, record.args = message, ()
        return True


def _secret_parts(url: str) -> list[str]:
    """The userinfo and query of ``url``, each as written and decoded."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    found = [userinfo, parts.query]
    found += [unquote(part) for part in found]
    return sorted(set(found), key=len, reverse=True)
