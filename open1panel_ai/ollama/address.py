"""Ollama server addresses, read the way Ollama reads ``OLLAMA_HOST``.

No scheme means ``http`` and port 11434; ``http://host`` means port 80 and ``https://host``
port 443; a bad port falls back to ``127.0.0.1:11434``. Addresses the panel stores are checked
strictly, since they may end up in a reverse-proxy configuration.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:11434"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$")


class InvalidAddress(ValueError):
    """The text is not an Ollama server address the panel accepts."""


def from_ollama_host(value: str | None) -> str:
    """The base URL Ollama's own client derives from an ``OLLAMA_HOST`` value."""
    text = (value or "").strip().strip("\"'")
    default_port = "11434"
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport)
    if host is None:
        host, port = "127.0.0.1", default_port
        bare = hostport.strip("[]")
        if bare:
            host = bare
    if not port.isdigit() or int(port) > 65535:
        return DEFAULT_URL
    if ":" in host:
        host = f"[{host}]"
    url = f"{scheme}://{host}:{port}"
    return f"{url}/{path}" if path else url


def _split_host_port(hostport: str) -> tuple[str | None, str]:
    """Go's ``net.SplitHostPort``: (None, "") when there is no port."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1:end + 2] != ":":
            return None, ""
        return hostport[1:end], hostport[end + 2:]
    if hostport.count(":") != 1:
        return None, ""
    host, port = hostport.split(":")
    return host, port


def normalise(url: str) -> str:
    """Check an address typed into the panel; return it as ``scheme://host:port``."""
    text = (url or "").strip()
    if "://" not in text:
        text = from_ollama_host(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidAddress(f"{url!r} is not an address; use http://HOST:PORT.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidAddress("The address must start with http:// or https://.")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise InvalidAddress("Give only scheme, host and port, e.g. http://10.0.0.5:11434.")
    host = parts.hostname or ""
    try:
        ip = ipaddress.ip_address(host)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise InvalidAddress(f"{host!r} is not a host name or IP address.") from None
        host = host.lower()
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}:{port}"
