"""Issue 11, finding 6: a basic-auth password over 72 bytes gave a 500 from bcrypt.

bcrypt reads at most 72 bytes of a password, and the bcrypt module refuses a longer one with a
ValueError, which became a 500. Now it is a 400 naming the field, counted in UTF-8 bytes (40
``é`` are 80 bytes), on create and on change; a password of exactly 72 bytes works, proven
with a request through nginx.
"""

from __future__ import annotations

import pytest

from tests.domain.conftest import nginx, nginx_panel, ollama  # noqa: F401  (fixtures)

DOMAIN = "ollama.example.test"
TOO_LONG = ["x" * 73, "é" * 40, "密码" * 13, "x" * 100_000]


def basic(password):
    return {
        "domains": [DOMAIN],
        "target": {"kind": "ollama", "name": "local"},
        "auth": {"mode": "basic", "username": "ops", "password": password},
    }


@pytest.mark.parametrize("password", TOO_LONG)
def test_a_password_over_72_bytes_is_a_400_naming_the_field(nginx_panel, password):  # noqa: F811
    status, reply = nginx_panel.api("post", "/domains", json=basic(password))
    assert status == 400 and reply["error"]["code"] == "validation_error", reply
    [said] = reply["error"]["details"]["fields"]["auth"]["password"]
    assert said == f"At most 72 bytes in UTF-8, all that bcrypt reads; this one has {len(password.encode())}."
    assert nginx_panel.api("get", "/domains")[1]["bindings"] == []

    status, created = nginx_panel.api("post", "/domains", json=basic("a long enough secret"))
    assert status == 201
    status, reply = nginx_panel.api("put", f"/domains/{created['id']}", json={"auth": basic(password)["auth"]})
    assert status == 400 and list(reply["error"]["details"]["fields"]["auth"]) == ["password"]
    chinese = nginx_panel.api(
        "put", f"/domains/{created['id']}", json={"auth": basic(password)["auth"]}, headers={"Accept-Language": "zh-CN"}
    )[1]
    assert chinese["error"]["details"]["fields"]["auth"]["password"][0].startswith("UTF-8 编码下最多 72 字节")
    assert nginx_panel.proxy.get(DOMAIN, "/api/version", auth=("ops", "a long enough secret")).status_code == 200


def test_a_password_of_exactly_72_bytes_works(nginx_panel):  # noqa: F811
    password = "é" * 30 + "x" * 12  # 72 bytes, 42 characters
    status, created = nginx_panel.api("post", "/domains", json=basic(password))
    assert status == 201 and created["state"] == "online", created
    assert nginx_panel.proxy.get(DOMAIN, "/api/version", auth=("ops", password)).status_code == 200
    assert nginx_panel.proxy.get(DOMAIN, "/api/version", auth=("ops", password[:-1])).status_code == 401
