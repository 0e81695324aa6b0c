"""Remote MCP server URLs as they may be shown.

A remote server's URL can carry a credential in its userinfo (``https://user:pass@host``) or
its query string (``?api_key=…``). Routes and logs show :func:`masked` instead of the URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

#: What replaces a hidden userinfo or query string.
MASK = "***"


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
