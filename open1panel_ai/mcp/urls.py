"""URLs of MCP servers: where a bridge is reached, and remote URLs as they may be shown.

A remote server's URL can carry a credential in its userinfo (``https://user:pass@host``) or
its query string (``?api_key=…``). Routes and logs show :func:`masked` instead of the URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

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
