"""Strict parsing of every value a binding writes into a proxy configuration.

A proxy config is code: a domain, path or address holding ``;``, ``{``, ``}``, quotes, ``$``,
spaces or a newline could add directives. So nothing is escaped here; anything outside a
narrow, known-safe alphabet is refused, and what passes comes back in one canonical form.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re

import idna

#: A DNS label once in ASCII (IDNA A-label form included): letters, digits, inner hyphens.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
#: Characters a file path given to a proxy may hold.
_PATH = re.compile(r"^/[A-Za-z0-9._/@+=,-]{0,4095}\Z")
#: Characters of a username written to an htpasswd file and compared by the proxy.
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")


class InvalidValue(ValueError):
    """A value that must not reach a proxy configuration; the text says why."""


def domain_name(value: str) -> str:
    """Return ``value`` as a lower-case ASCII domain name (IDNA 2008, UTS #46 mapping).

    ``例子.测试`` becomes ``xn--fsqu00a.xn--0zwm56d``. A trailing dot is dropped. Wildcards,
    single labels, IP addresses and anything holding a character outside a hostname are
    refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue("A domain name is required.")
    if any(c in value for c in " \t\r\n;{}\"'$\\`#*/:?@[]<>|&=,") or not value.isprintable():
        raise InvalidValue(f"{value!r} is not a domain name: it holds a character no host name has.")
    text = value.rstrip(".")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise InvalidValue(f"{value!r} is not a valid domain name ({exc}).") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidValue(f"{value!r} needs at least two labels, such as ai.example.com.")
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidValue(f"{value!r} is not a valid domain name.")
    if labels[-1].isdigit():
        raise InvalidValue(f"{value!r} looks like an IP address; bind a domain name.")
    return ascii_name


def address_or_network(value: str) -> str:
    """Return an IP address or CIDR network in canonical form (``10.0.0.0/8``, ``2001:db8::1``).

    A network with host bits set (``10.0.0.1/8``) is refused rather than silently widened.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue("An IP address or CIDR network is required.")
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=True))
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise InvalidValue(f"{value!r} is not an IP address or CIDR network ({exc}).") from None


def file_path(value: str) -> str:
    """Return an absolute, normalised file path made only of safe characters.

    Whether the file exists is for the proxy to say (a missing certificate is an apply error
    that leaves the previous configuration serving, not bad input).
    """
    if not isinstance(value, str) or not _PATH.match(value):
        raise InvalidValue(
            f"{value!r} is not an absolute path of letters, digits and . _ / @ + = , - only.")
    normal = posixpath.normpath(value)
    if normal != value.rstrip("/") or ".." in normal.split("/"):
        raise InvalidValue(f"{value!r} must be written without '..', '//' or './'.")
    return normal


def username(value: str) -> str:
    """Return a basic-auth username of letters, digits and ``. _ @ -``."""
    if not isinstance(value, str) or not _USERNAME.match(value):
        raise InvalidValue("A username is 1–64 letters, digits or . _ @ - characters, starting with a letter or digit.")
    return value


def upstream_host(value: str) -> str:
    """Return an upstream host (an IP address or a host name, one label allowed, as on a LAN)
    fit to write into a config; IPv6 comes back in brackets."""
    try:
        address = ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        name = value.lower()
        if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
            raise InvalidValue(f"{value!r} is not a host name or IP address.") from None
        return name
    return f"[{address}]" if address.version == 6 else str(address)
