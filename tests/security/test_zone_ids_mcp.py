"""Issue 11, finding 1, for MCP: config injection through an IPv6 zone ID in ``bind_host``.

Python's ``ipaddress`` takes ``::1%<anything>`` (spaces, ``;``, braces, newlines). As an MCP
server's listen address it was stored as written, even by a PUT that kept the port (no bind was
tried then), and reached a proxy's site file through a domain bound to the server. Now only a
plain address is taken, stored as rebuilt from its parsed form, and no value causes a 500.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import TOKEN

HOSTILE = ["::1%eth0", "::1%25x", "fe80::1%lo", "::1%x;}server{listen 80;}", "::1%\n}", "::1% ", "::1%{", "127.0.0.1%x"]
#: Values that are no plain address; none may be taken, and none may cause a 500.
NOT_ADDRESSES = [
    "",
    " ",
    "::1%",
    "localhost",
    "[::1]",
    "127.0.0.1:8080",
    "10.0.0.0/8",
    "01.2.3.4",
    " 127.0.0.1",
    "127.0.0.1\n",
    "\x00",
    "x" * 100_000,
    "::1\x00",
    5,
    1.5,
    True,
    None,
    [],
    {},
]


def create(api, **fields):
    return api("post", "/mcp/servers", json={"name": "zoned", "command": ["true"], "autostart": False, **fields})


@pytest.mark.parametrize("value", HOSTILE + NOT_ADDRESSES)
def test_a_bind_host_that_is_not_a_plain_address_is_a_400_naming_it(api, value):
    status, body = create(api, bind_host=value)
    assert status == 400, body
    assert list(body["error"]["details"]["fields"]) == ["bind_host"]
    assert api("get", "/mcp/servers")[1]["servers"] == []


def test_a_put_that_keeps_the_port_cannot_bring_a_zone_id_in(api, data_dir):
    status, server = create(api, bind_host="::1")
    assert status == 201, server
    path = f"/mcp/servers/{server['id']}"
    for value in HOSTILE + NOT_ADDRESSES:
        status, body = api("put", path, json={"bind_host": value})
        assert status == 400, (value, body)
        status, body = api("put", path, json={"bind_host": value, "port": server["port"]})
        assert status == 400, (value, body)
    assert api("get", path)[1]["bind_host"] == "::1"


def test_the_address_kept_is_rebuilt_from_its_parsed_form(api, data_dir):
    status, server = create(api, bind_host="0:0:0:0:0:0:0:1")
    assert status == 201, server
    assert server["bind_host"] == "::1"
    assert server["endpoints"]["streamable_http"].startswith("http://[::1]:")
    status, server = api("put", f"/mcp/servers/{server['id']}", json={"bind_host": "127.0.0.1"})
    assert status == 200 and server["bind_host"] == "127.0.0.1"


def test_a_zone_id_stored_by_an_earlier_version_is_dropped_at_start(api, data_dir, make_host, auth_headers):
    status, server = create(api, bind_host="::1")
    assert status == 201
    db = sqlite3.connect(data_dir / "open1panel-ai.sqlite3")
    with db:
        db.execute(
            "UPDATE mcp_servers SET definition = json_set(definition, '$.bind_host', ?)", ("::1%x;}server{listen 80;}",)
        )
    db.close()
    client = make_host().app.test_client()
    again = client.get(f"/api/v2/ai/mcp/servers/{server['id']}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.status_code == 200
    assert again.get_json()["bind_host"] == "::1"
    assert "server{" not in json.dumps(client.get("/api/v2/ai/mcp/servers", headers=auth_headers).get_json())
