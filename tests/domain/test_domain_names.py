"""What may reach a proxy config: domain names, addresses, paths and usernames, strictly."""

from __future__ import annotations

import pytest

from open1panel_ai.domain import names

INJECTIONS = [";", "{", "}", '"', "'", "$", " ", "\n", "\r", "\t", "\\", "`", "#", "\x00"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("ai.example.com", "ai.example.com"),
        ("AI.Example.COM.", "ai.example.com"),
        ("例子.example.com", "xn--fsqu00a.example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("a-b.c-d.example", "a-b.c-d.example"),
    ],
)
def test_domain_names_come_back_in_their_ascii_form(value, expected):
    assert names.domain_name(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "localhost",
        "*.example.com",
        "1.2.3.4",
        "-ai.example.com",
        "ai-.example.com",
        "a..example.com",
        "ai.example.com:80",
        "ai.example.com/x",
        "user@ai.example.com",
        "a" * 64 + ".example.com",
        ".".join(["abcdefgh"] * 32) + ".com",
        *(f"ai{c}.example.com" for c in INJECTIONS),
        *(f"ai.example.com{c}" for c in INJECTIONS if c not in "."),
    ],
)
def test_anything_else_is_refused(value):
    with pytest.raises(names.InvalidValue):
        names.domain_name(value)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("192.168.1.7", "192.168.1.7"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("::1", "::1"),
    ],
)
def test_addresses_and_networks_are_parsed_by_ipaddress(value, expected):
    assert names.address_or_network(value) == expected


@pytest.mark.parametrize(
    "value", ["10.0.0.1/8", "10.0.0.0/33", "300.1.1.1", "10.0.0.0/8; allow all", "all", "", "10.0.0.0 /8", "::g"]
)
def test_other_addresses_are_refused(value):
    with pytest.raises(names.InvalidValue):
        names.address_or_network(value)


@pytest.mark.parametrize("value", ["/etc/ssl/certs/ai.pem", "/srv/tls/ai.example.com/fullchain.pem"])
def test_paths_are_absolute_and_plain(value):
    assert names.file_path(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "relative.pem",
        "/etc/../etc/passwd",
        "/etc//ssl",
        "/etc/./ssl",
        "/etc/ssl/a.pem\n",
        "/etc/ssl/a.pem\ninclude /x",
        *(f"/etc/ssl/a{c}b.pem" for c in INJECTIONS),
    ],
)
def test_other_paths_are_refused(value):
    with pytest.raises(names.InvalidValue):
        names.file_path(value)


@pytest.mark.parametrize("value", ["", ".hidden", "a:b", "a b", "x" * 65, "ops\n", *(f"u{c}" for c in INJECTIONS)])
def test_usernames_are_plain(value):
    with pytest.raises(names.InvalidValue):
        names.username(value)
    assert names.username("ops.admin@example") == "ops.admin@example"


def test_upstream_hosts_are_addresses_or_names():
    assert names.upstream_host("127.0.0.1") == "127.0.0.1"
    assert names.upstream_host("::1") == "[::1]"
    assert names.upstream_host("localhost") == "localhost"
    assert names.upstream_host("gpu-box.lan.example") == "gpu-box.lan.example"
    assert names.upstream_host("GPU-Box") == "gpu-box"
    for hostile in ("evil;host", "evil host", "evil\n", "a..b", "-a", "$host"):
        with pytest.raises(names.InvalidValue):
            names.upstream_host(hostile)
