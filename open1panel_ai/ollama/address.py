"""Ollama server addresses, read the way Ollama reads ``OLLAMA_HOST``.

No scheme means ``http`` and port 11434; ``http://host`` means port 80 and ``https://host``
port 443; a bad port falls back to ``127.0.0.1:11434``. Addresses the panel stores are checked
strictly, since they may end up in a reverse-proxy configuration: the host is a host name or an
IP address rebuilt from its parsed bytes. An IPv6 zone (``fe80::1%eth0``) is refused, because
Python's parser takes any text after the ``%`` (spaces, ``;``, braces, newlines).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from open1panel_ai.i18n import Message

DEFAULT_URL = "http://127.0.0.1:11434"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$")


class InvalidAddress(ValueError):
    """The text is not an Ollama server address the panel accepts."""


def from_ollama_host(value: str | None) -> str:
    """The base URL Ollama's own client derives from an ``OLLAMA_HOST`` value.

    Where Ollama would keep what the panel cannot write safely, the URL is made safe: an IP
    address is rebuilt from its bytes (a zone after ``%`` is dropped), a host that is neither
    an IP address nor a host name falls back to ``127.0.0.1:11434`` as a bad port does, and the
    path is percent-encoded.
    """
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
    try:
        host = _host(host)
    except InvalidAddress:
        return DEFAULT_URL
    url = f"{scheme}://{host}:{port}"
    return f"{url}/{quote(path, safe='/-._~')}" if path else url


def _split_host_port(hostport: str) -> tuple[str | None, str]:
    """Go's ``net.SplitHostPort``: (None, "") when there is no port."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1 : end + 2] != ":":
            return None, ""
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None, ""
    host, port = hostport.split(":")
    return host, port


def normalise(url: str) -> str:
    """Check an address typed into the panel; return it as ``scheme://host:port``.

    Raises :class:`InvalidAddress` (its text a Message) for anything else, a stored address
    of an earlier version included: callers check a stored address again before they use it.
    """
    text = url.strip() if isinstance(url, str) else ""
    if not text or not text.isprintable() or any(c.isspace() or not c.isascii() for c in text):
        raise InvalidAddress(Message("ollama.address.not_address", text=_shown(url)))
    if "%" in text:  # an IPv6 zone, or an escaped character in a host name
        raise InvalidAddress(Message("ollama.address.bad_host", host=_shown(url)))
    if "://" not in text:
        text = from_ollama_host(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidAddress(Message("ollama.address.not_address", text=_shown(url))) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidAddress(Message("ollama.address.scheme"))
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise InvalidAddress(Message("ollama.address.only_host_port"))
    host = _host(parts.hostname or "")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    if not 0 < port < 65536:
        raise InvalidAddress(Message("ollama.address.not_address", text=_shown(url)))
    return f"{parts.scheme}://{host}:{port}"


def _host(host: str) -> str:
    """``host`` as a URL holds it: an IP address rebuilt from its bytes (IPv6 in brackets, any
    zone dropped), or a host name in lower case; :class:`InvalidAddress` for anything else."""
    try:
        ip = ipaddress.ip_address(ipaddress.ip_address(host).packed)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise InvalidAddress(Message("ollama.address.bad_host", host=_shown(host))) from None
        return host.lower()
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _shown(text: object) -> str:
    """A refused value as an error repeats it: printable, and at most its first 60 characters."""
    shown = repr(text)[1:-1] if isinstance(text, str) else repr(text)
    return shown if len(shown) <= 60 else shown[:60] + "…"
