"""Issue 19, finding 1: revocation revokes, or says it did not, on nginx and on Caddy.

Binding A serves an ``existing`` certificate whose file is later moved (as a renewal may do);
binding B uses bearer auth. The proxy checks its whole configuration on every change, A's
missing file included, so B's token rotation used to fail there while the API answered 200
with a new token, and the old token kept working; removing B answered 502. Now a binding whose
files are gone is left out of the proxy (marked ``error``) before a change, so B's rotation and
removal go through, and A comes back by itself once its file does. A rotation the proxy still
refuses answers an error that says the old token is still valid, and why. Each outcome is
checked with a real request through the proxy, with the old token.
"""

from __future__ import annotations

import pytest

from tests.domain.certificates import self_signed
from tests.domain.conftest import _panel, ollama, proxy  # noqa: F401  (fixtures)

A, B = "a.example.test", "b.example.test"
VERSION = {"version": "0.12.6"}


@pytest.fixture
def panel(proxy, panel_env, make_host, ollama, data_dir):  # noqa: F811
    """A panel publishing through each real proxy in turn (nginx, then Caddy)."""
    return _panel(proxy, proxy.kind, panel_env, make_host, ollama, data_dir)


def served(panel, host: str, token: str | None = None) -> bool:
    """Whether the proxy hands ``host``'s request to Ollama (with ``token`` as bearer)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = panel.proxy.get(host, "/api/version", headers=headers)
    return answer.status_code == 200 and answer.text.startswith("{") and answer.json() == VERSION


def a_and_b(panel, tmp_path):
    """A with its own certificate files, and B with a bearer token; both online."""
    certificate, key = self_signed(tmp_path / "tls", A)
    status, a = panel.api(
        "post",
        "/domains",
        json={
            "domains": [A],
            "target": {"kind": "ollama", "name": "local"},
            "auth": {"mode": "none"},
            "tls": {"mode": "existing", "certificate": str(certificate), "key": str(key), "force_https": False},
        },
    )
    assert status == 201 and a["state"] == "online", a
    status, b = panel.api("post", "/domains", json={"domains": [B], "target": {"kind": "ollama", "name": "local"}})
    assert status == 201 and b["state"] == "online" and b["auth"]["mode"] == "bearer", b
    assert served(panel, A) and served(panel, B, b["token"]) and not served(panel, B)
    return a, b, certificate


def test_a_moved_certificate_of_one_binding_does_not_stop_another_from_revoking(panel, tmp_path):
    a, b, certificate = a_and_b(panel, tmp_path)
    old_token = b["token"]
    # A third binding's key goes too: each of the two would fail a check that holds the other.
    other_certificate, other_key = self_signed(tmp_path / "tls-c", "c.example.test")
    status, c = panel.api(
        "post",
        "/domains",
        json={
            "domains": ["c.example.test"],
            "target": {"kind": "ollama", "name": "local"},
            "auth": {"mode": "none"},
            "tls": {
                "mode": "existing",
                "certificate": str(other_certificate),
                "key": str(other_key),
                "force_https": False,
            },
        },
    )
    assert status == 201 and c["state"] == "online", c
    other_key.unlink()
    moved = certificate.with_name("renewed.pem")
    certificate.rename(moved)  # a renewal moved A's certificate away

    status, rotated = panel.api("post", f"/domains/{b['id']}/token")
    assert status == 200, rotated
    assert rotated["state"] == "online" and rotated["token"] != old_token
    assert not served(panel, B, old_token)  # the old token is refused by the proxy itself
    assert served(panel, B, rotated["token"])

    # A was left out so that it could not hold B up, and says why.
    listed = {x["id"]: x for x in panel.api("get", "/domains")[1]["bindings"]}
    assert listed[a["id"]]["state"] == "error"
    assert listed[a["id"]]["error_i18n"]["key"] == "domain.error.files_missing"
    assert str(certificate) in listed[a["id"]]["error"] and "Left out of the proxy" in listed[a["id"]]["error"]
    assert listed[c["id"]]["state"] == "error" and str(other_key) in listed[c["id"]]["error"]
    assert not served(panel, A) and not served(panel, "c.example.test")

    # A removal of B goes through as well (it used to be a 502), and B is gone from the proxy.
    assert panel.api("delete", f"/domains/{b['id']}")[0] == 204
    assert not served(panel, B, rotated["token"])

    # Once the file is back, A is served again by itself.
    moved.rename(certificate)
    listed = {x["id"]: x for x in panel.api("get", "/domains")[1]["bindings"]}
    assert listed[a["id"]]["state"] == "online" and listed[a["id"]]["error"] is None
    assert served(panel, A)


def test_a_rotation_the_proxy_refuses_says_the_old_token_is_still_valid_and_why(panel, tmp_path):
    a, b, certificate = a_and_b(panel, tmp_path)
    old_token = b["token"]
    # A's certificate file is still there, but a renewal wrote something no proxy can load:
    # the panel does not judge what is in a file, so the proxy refuses every change now.
    certificate.write_text("not a certificate\n")

    status, refused = panel.api("post", f"/domains/{b['id']}/token")
    assert status == 502 and refused["error"]["code"] == "proxy_rejected", refused
    message = refused["error"]["message"]
    assert message.startswith(
        "The token was not changed: the old token is still valid, because "
        f"{panel.proxy.kind} did not take the new one: "
    )
    assert "PEM" in message  # why: the proxy's own words about A's file
    assert refused["error"]["details"]["old_token_valid"] is True
    assert "token" not in refused["error"]["details"]["binding"]
    assert served(panel, B, old_token)  # true: the proxy still serves the old token

    shown = panel.api("get", f"/domains/{b['id']}")[1]
    assert shown["state"] == "online" and shown["updated_at"] == b["updated_at"]

    # Once the file is fixed, the rotation takes effect.
    self_signed(certificate.parent, A)
    status, rotated = panel.api("post", f"/domains/{b['id']}/token")
    assert status == 200 and rotated["state"] == "online", rotated
    assert not served(panel, B, old_token) and served(panel, B, rotated["token"])


def test_a_binding_whose_own_certificate_is_gone_serves_no_token_after_a_rotation(panel, tmp_path):
    certificate, key = self_signed(tmp_path / "tls", B)
    status, b = panel.api(
        "post",
        "/domains",
        json={
            "domains": [B],
            "target": {"kind": "ollama", "name": "local"},
            "tls": {"mode": "existing", "certificate": str(certificate), "key": str(key), "force_https": False},
        },
    )
    assert status == 201 and served(panel, B, b["token"]), b
    certificate.unlink()

    status, refused = panel.api("post", f"/domains/{b['id']}/token")
    assert status == 409 and refused["error"]["code"] == "files_missing", refused
    assert refused["error"]["details"]["old_token_valid"] is False
    assert refused["error"]["message"].startswith("The old token no longer works")
    assert not served(panel, B, b["token"])  # out of the proxy: the old token reaches nothing
    shown = panel.api("get", f"/domains/{b['id']}")[1]
    assert shown["state"] == "error" and str(certificate) in shown["error"]

    # Back with its file, it is served again, and never with the old token.
    self_signed(certificate.parent, B)
    assert panel.api("get", "/domains")[1]["bindings"][0]["state"] == "online"
    assert not served(panel, B, b["token"])
    status, rotated = panel.api("post", f"/domains/{b['id']}/token")
    assert status == 200 and served(panel, B, rotated["token"])
