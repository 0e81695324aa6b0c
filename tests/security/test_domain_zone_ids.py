"""Issue 11, finding 1, for domain bindings: config injection through IPv6 zone IDs.

Python's ``ipaddress`` takes ``::1%<anything>`` (spaces, ``;``, braces, newlines). An allowlist
entry, an Ollama endpoint's address (typed, stored by an earlier version, or read from
``OLLAMA_HOST``) and an MCP server's address all reached a site file that way. ``nginx -t`` did
not catch it: a ``$host`` in the zone makes ``proxy_pass`` a variable URL, checked only at
request time, so a binding was created ``online`` while nginx served an injected ``server {}``.
Now every address is parsed with zones refused, and what is written is rebuilt from the parsed
bytes. Each hostile value is refused with a 400 naming its field (or, stored earlier, leaves
the binding in ``error``), and a real request shows that no injected server answers.
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from open1panel_ai.domain import names
from tests.conftest import free_port
from tests.domain.conftest import DomainPanel, _panel, nginx, ollama, proxy  # noqa: F401  (fixtures)

DOMAIN = "ollama.example.test"
#: Zone IDs as Python's parser takes them: every one of these is "an IPv6 address".
ZONED = [
    "::1%eth0",
    "fe80::1%lo",
    "::1%25x",
    "::1%x;}server{listen 80;}",
    "::1%\n}",
    "::1% ",
    "::1%{",
    "::1%$host",
    "::1%x/128",
    "fe80::%a b/64",
    "2001:db8::%x;/32",
]


def injection(port: int, decoy_port: int) -> str:
    """A zone that, written after ``proxy_pass http://[::1%``, would close the site and add a
    server on ``port`` answering ``injected`` (and one more to soak up the rest of the site's
    lines). ``$host`` makes the URL a variable, so ``nginx -t`` never parses it."""
    return (
        f"$host;}}}}server{{listen 127.0.0.1:{port};return 200 injected;}}"
        f"server{{listen 127.0.0.1:{decoy_port};location x{{return 200 x"
    )


def nothing_answers_on(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=3)
    except httpx.TransportError:
        return True
    return False


def config_text(panel) -> str:
    """Everything the panel wrote into the proxy's configuration."""
    if hasattr(panel.proxy, "sites"):
        return "".join(p.read_text() for p in sorted(panel.proxy.sites.iterdir()))
    return str(panel.proxy.config())


@pytest.fixture
def panel(proxy, panel_env, make_host, ollama, data_dir):  # noqa: F811
    return _panel(proxy, proxy.kind, panel_env, make_host, ollama, data_dir)


def test_a_zone_id_in_an_allowlist_entry_is_a_400_naming_it_on_every_route(panel):
    status, kept = panel.api(
        "post",
        "/domains",
        json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "allowlist": ["::1"]},
    )
    assert status == 201 and kept["state"] == "online", kept
    before = config_text(panel)
    base = {"domains": ["other.example.test"], "target": {"kind": "ollama", "name": "local"}}
    for value in ZONED:
        for method, path in (
            ("post", "/domains"),
            ("put", f"/domains/{kept['id']}"),
            ("post", "/domains/preview"),
            ("post", f"/domains/{kept['id']}/preview"),
        ):
            status, reply = panel.api(method, path, json={**base, "allowlist": ["127.0.0.1", value]})
            assert status == 400, (value, method, path, reply)
            assert list(reply["error"]["details"]["fields"]) == ["allowlist"], reply
    assert config_text(panel) == before
    assert panel.api("get", f"/domains/{kept['id']}")[1]["allowlist"] == ["::1"]
    assert len(panel.api("get", "/domains")[1]["bindings"]) == 1


def test_an_allowlist_entry_is_written_as_rebuilt_from_its_bytes(panel):
    status, created = panel.api(
        "post",
        "/domains",
        json={
            "domains": [DOMAIN],
            "target": {"kind": "ollama", "name": "local"},
            "allowlist": ["0:0:0:0:0:0:0:1", "2001:DB8:0::/32", "127.0.0.1"],
        },
    )
    assert status == 201 and created["allowlist"] == ["::1", "2001:db8::/32", "127.0.0.1"]
    assert "2001:db8::/32" in config_text(panel)


def test_a_zone_id_in_an_ollama_endpoint_address_is_a_400_naming_the_url(panel):
    for value in ZONED[:8]:
        for url in (f"http://[{value}]:11434", f"[{value}]:11434", value):
            status, reply = panel.api("post", "/ollama/endpoints", json={"name": "zoned", "url": url})
            assert status == 400, (url, reply)
            assert list(reply["error"]["details"]["fields"]) == ["url"], reply
    assert [e["name"] for e in panel.api("get", "/ollama/endpoints")[1]["endpoints"]] == ["local"]


def test_an_endpoint_address_stored_by_an_earlier_version_never_reaches_the_proxy(panel, data_dir):
    port, decoy = free_port(), free_port()
    status, kept = panel.api(
        "post",
        "/domains",
        json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "auth": {"mode": "none"}},
    )
    assert status == 201
    assert panel.api("post", "/ollama/endpoints", json={"name": "box", "url": "http://127.0.0.1:9"})[0] == 201
    status, bound = panel.api(
        "post",
        "/domains",
        json={"domains": ["box.example.test"], "target": {"kind": "ollama", "name": "box"}, "auth": {"mode": "none"}},
    )
    assert status == 201 and bound["state"] == "online"
    before = config_text(panel)
    db = sqlite3.connect(data_dir / "open1panel-ai.sqlite3")
    with db:  # as an earlier version, which took zones, stored them
        db.execute(
            "UPDATE ollama_endpoints SET url = ? WHERE name = 'box'", (f"http://[::1%{injection(port, decoy)}]:11434",)
        )
        db.execute(
            "INSERT INTO ollama_endpoints (name, url, created_at) VALUES ('zoned', ?, '')",
            (f"http://[::1%{injection(port, decoy)}]:11434",),
        )
    db.close()

    status, refused = panel.api(
        "post", "/domains", json={"domains": ["zoned.example.test"], "target": {"kind": "ollama", "name": "zoned"}}
    )
    assert status == 400 and refused["error"]["code"] == "unknown_target", refused
    assert "target" in refused["error"]["details"]["fields"]
    listed = {b["id"]: b for b in panel.api("get", "/domains")[1]["bindings"]}
    assert listed[bound["id"]]["state"] == "error" and "IPv6 zone" in listed[bound["id"]]["error"]
    assert listed[kept["id"]]["state"] == "online"
    status, refused = panel.api("put", f"/domains/{bound['id']}", json={"allowlist": ["10.0.0.0/8"]})
    assert status == 400 and refused["error"]["code"] == "unknown_target"

    assert config_text(panel) == before and "injected" not in config_text(panel)
    assert nothing_answers_on(port) and nothing_answers_on(decoy)
    assert panel.proxy.get(DOMAIN, "/api/version").json() == {"version": "0.12.6"}


def test_ollama_host_with_a_zone_never_reaches_nginx_proven_with_a_request(
    nginx,  # noqa: F811
    ollama,  # noqa: F811
    panel_env,
    make_host,
    data_dir,
):
    """The way in that nginx -t let through: the binding was created online, and nginx
    answered on the injected server."""
    port, decoy = free_port(), free_port()
    for key, value in nginx.settings(data_dir).items():
        if key != "data_dir":
            panel_env.setenv("OPEN1PANEL_AI_" + key.upper(), value)
    panel_env.setenv("OPEN1PANEL_AI_DOMAIN_PROVIDER", "nginx")
    panel_env.setenv("OLLAMA_HOST", f"[::1%{injection(port, decoy)}]:{ollama.port}")
    panel = DomainPanel(make_host(), nginx)
    [local] = panel.api("get", "/ollama/endpoints")[1]["endpoints"]
    assert local["url"] == f"http://[::1]:{ollama.port}"  # the zone is dropped, the address kept

    status, created = panel.api(
        "post",
        "/domains",
        json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "auth": {"mode": "none"}},
    )
    assert status == 201, created
    site = config_text(panel)
    assert f"proxy_pass http://[::1]:{ollama.port};" in site
    assert "injected" not in site and f"127.0.0.1:{port}" not in site
    assert nothing_answers_on(port) and nothing_answers_on(decoy)
    assert nginx.get("anything.example.test").status_code == 421  # only the sites it should have


@pytest.mark.parametrize("value", ZONED[:8] + ["[::1%x]", "::1%"])
def test_an_upstream_address_with_a_zone_is_refused_whatever_feature_hands_it_over(value):
    with pytest.raises(names.InvalidValue):
        names.upstream_host(value)
    assert names.upstream_host("0:0::1") == "[::1]" and names.upstream_host("[::1]") == "[::1]"
