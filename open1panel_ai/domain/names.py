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

from open1panel_ai.i18n import Message

#: A DNS label once in ASCII (IDNA A-label form included): letters, digits, inner hyphens.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
#: Characters a file path given to a proxy may hold.
_PATH = re.compile(r"^/[A-Za-z0-9._/@+=,-]{0,4095}\Z")
#: Characters of a username written to an htpasswd file and compared by the proxy.
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")


class InvalidValue(ValueError):
    """A value that must not reach a proxy configuration; the text (a Message whose
    ``value`` is the refused value, quoted) says why."""


def domain_name(value: str) -> str:
    """Return ``value`` as a lower-case ASCII domain name (IDNA 2008, UTS #46 mapping).

    ``例子.测试`` becomes ``xn--fsqu00a.xn--0zwm56d``. A trailing dot is dropped. Wildcards,
    single labels, IP addresses and anything holding a character outside a hostname are
    refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(Message("domain.name.required"))
    if any(c in value for c in " \t\r\n;{}\"'$\\`#*/:?@[]<>|&=,") or not value.isprintable():
        raise InvalidValue(Message("domain.name.bad_character", value=repr(value)))
    text = value.rstrip(".")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise InvalidValue(Message("domain.name.idna", value=repr(value), error=str(exc))) from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidValue(Message("domain.name.one_label", value=repr(value)))
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidValue(Message("domain.name.invalid", value=repr(value)))
    if labels[-1].isdigit():
        raise InvalidValue(Message("domain.name.ip_address", value=repr(value)))
    return ascii_name


def address_or_network(value: str) -> str:
    """Return an IP address or CIDR network in canonical form (``10.0.0.0/8``, ``2001:db8::1``).

    A network with host bits set (``10.0.0.1/8``) is refused rather than silently widened. An
    IPv6 zone (``fe80::1%eth0``) is refused: Python's parser takes any text after the ``%``
    (spaces, ``;``, braces, newlines), so what is returned is rebuilt from the parsed bytes.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(Message("domain.address.required"))
    if "%" in value:
        raise InvalidValue(Message("domain.address.zone_id", value=repr(value)))
    try:
        if "/" in value:
            network = ipaddress.ip_network(value, strict=True)
            return str(ipaddress.ip_network((packed(network.network_address), network.prefixlen)))
        return str(packed(ipaddress.ip_address(value)))
    except ValueError as exc:
        raise InvalidValue(Message("domain.address.invalid", value=repr(value), error=str(exc))) from None


def packed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``address`` rebuilt from its bytes: nothing but the address itself (no zone) survives."""
    return ipaddress.ip_address(address.packed)


def file_path(value: str) -> str:
    """Return an absolute, normalised file path made only of safe characters.

    Whether the file exists is checked when a binding is saved and before each change (see
    :mod:`open1panel_ai.domain.files`); what is in it is for the proxy to judge.
    """
    if not isinstance(value, str) or not _PATH.match(value):
        raise InvalidValue(Message("domain.path.invalid", value=repr(value)))
    normal = posixpath.normpath(value)
    if normal != value.rstrip("/") or ".." in normal.split("/"):
        raise InvalidValue(Message("domain.path.not_normal", value=repr(value)))
    return normal


def username(value: str) -> str:
    """Return a basic-auth username of letters, digits and ``. _ @ -``."""
    if not isinstance(value, str) or not _USERNAME.match(value):
        raise InvalidValue(Message("domain.username.invalid"))
    return value


def upstream_host(value: str) -> str:
    """Return an upstream host (an IP address or a host name, one label allowed, as on a LAN)
    fit to write into a config; IPv6 comes back in brackets. An IPv6 zone is refused, and an
    address is rebuilt from its parsed bytes (see :func:`address_or_network`)."""
    if not isinstance(value, str):
        raise InvalidValue(Message("domain.upstream.invalid", value=repr(value)))
    if "%" in value:
        raise InvalidValue(Message("domain.upstream.zone_id", value=repr(value)))
    try:
        address = packed(ipaddress.ip_address(value.removeprefix("[").removesuffix("]")))
    except ValueError:
        name = value.lower()
        if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
            raise InvalidValue(Message("domain.upstream.invalid", value=repr(value))) from None
        return name
    return f"[{address}]" if address.version == 6 else str(address)
