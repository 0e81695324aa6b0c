"""The caddy provider against a real Caddy through its admin API: one ``@id`` route per
binding, streaming, allowlist and auth, Caddy's own rollback, and removal."""

from __future__ import annotations

import json
import time

import bcrypt
import httpx
import pytest

from hookspecs.ai import ProviderUnavailable
from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.domain.caddy import CaddyProvider, ConcurrentChange, etag
from open1panel_ai.domain.nginx import ProxyRejected
from tests.conftest import free_port
from tests.domain.certificates import self_signed
from tests.domain.conftest import CaddyServer

DOMAIN = "ollama.example.test"


@pytest.fixture
def provider(caddy, tmp_path):
    provider = CaddyProvider(caddy.settings(tmp_path / "data"))
    provider.probe()
    return provider


def ollama_binding(ollama, **changes) -> ProxyBinding:
    fields = {
        "id": "c0ffee",
        "domains": (DOMAIN,),
        "target_kind": "ollama",
        "upstream": Upstream("http", "127.0.0.1", ollama.port),
    }
    return ProxyBinding(**{**fields, **changes})


def routes(caddy) -> list[dict]:
    return caddy.config("/config/apps/http/servers/open1panel_ai/routes") or []


def test_a_binding_is_one_tagged_route_that_reaches_ollama(provider, caddy, ollama):
    provider.apply(ollama_binding(ollama, domains=(DOMAIN, "llm.example.test")))

    assert [r["@id"] for r in routes(caddy)] == ["open1panel-ai-c0ffee"]
    for host in (DOMAIN, "llm.example.test"):
        response = caddy.get(host, "/api/version")
        assert response.status_code == 200 and response.json() == {"version": "0.12.6"}
    assert caddy.get("other.example.test", "/api/version").text == ""  # Caddy's empty 200: no route
    assert provider.status("c0ffee") == {"state": "online", "error": None}

    provider.apply(ollama_binding(ollama, domains=("renamed.example.test",)))  # domains change
    assert len(routes(caddy)) == 1
    assert caddy.get("renamed.example.test", "/api/version").status_code == 200
    assert caddy.get(DOMAIN, "/api/version").text == ""


def test_a_streamed_pull_arrives_line_by_line(provider, caddy, ollama):
    ollama.publish("tiny", [1_500_000])
    ollama.pull_speed = 600_000
    provider.apply(ollama_binding(ollama))

    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{caddy.http_port}/api/pull",
        timeout=30,
        headers={"Host": DOMAIN},
        json={"model": "tiny"},
    ) as response:
        lines = response.iter_lines()
        first = json.loads(next(lines))
        first_after = time.monotonic() - started
        rest = [json.loads(line) for line in lines if line]
    total = time.monotonic() - started

    assert first == {"status": "pulling manifest"} and rest[-1] == {"status": "success"}
    assert first_after < total / 2, (first_after, total)  # a buffering proxy sends it at the end


def test_bearer_and_basic_auth_answer_401_without_credentials(provider, caddy, ollama):
    provider.apply(ollama_binding(ollama, auth_mode="bearer", token="s3cret-token_value"))
    assert caddy.get(DOMAIN, "/api/version").status_code == 401
    assert caddy.get(DOMAIN, "/api/version", headers={"Authorization": "Bearer s3cret"}).status_code == 401
    assert caddy.get(DOMAIN, "/api/version", headers={"Authorization": "Bearer s3cret-token_value"}).status_code == 200

    password_hash = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(4)).decode()
    provider.apply(ollama_binding(ollama, auth_mode="basic", username="admin", password_hash=password_hash))
    assert caddy.get(DOMAIN, "/api/version").status_code == 401
    assert caddy.get(DOMAIN, "/api/version", auth=("admin", "nope")).status_code == 401
    assert caddy.get(DOMAIN, "/api/version", auth=("admin", "correct horse battery")).status_code == 200


def test_the_allowlist_answers_403_to_other_addresses(provider, caddy, ollama):
    provider.apply(ollama_binding(ollama, allowlist=("10.0.0.0/8",), auth_mode="bearer", token="t"))
    assert caddy.get(DOMAIN, "/api/version").status_code == 403
    provider.apply(ollama_binding(ollama, allowlist=("10.0.0.0/8", "127.0.0.1")))
    assert caddy.get(DOMAIN, "/api/version").status_code == 200


def test_a_change_caddy_rejects_keeps_the_previous_route_serving(provider, caddy, ollama, tmp_path):
    provider.apply(ollama_binding(ollama))
    before = routes(caddy)
    missing = tmp_path / "no-such-certificate.pem"

    with pytest.raises(ProxyRejected, match="no-such-certificate.pem"):
        provider.apply(
            ollama_binding(
                ollama,
                tls_mode="existing",
                certificate=str(missing),
                certificate_key=str(missing),
                auth_mode="bearer",
                token="x",
            )
        )

    assert routes(caddy) == before
    assert caddy.get(DOMAIN, "/api/version").status_code == 200


def test_a_concurrent_edit_is_refused_not_overwritten(provider, caddy, ollama):
    provider.apply(ollama_binding(ollama))
    path = "/config/apps"
    body = caddy.admin_request("GET", path).content
    stale = etag(path, body)
    caddy.admin_request(
        "POST",
        "/config/apps/http/servers/open1panel_ai/routes",
        json={"@id": "someone-else", "handle": [{"handler": "static_response", "body": "x"}]},
    )
    refused = caddy.admin_request(
        "PATCH", path, content=body, headers={"If-Match": stale, "Content-Type": "application/json"}
    )
    assert refused.status_code == 412
    assert ConcurrentChange.__mro__[1] is ProxyRejected


def test_remove_takes_the_route_away_and_leaves_others(provider, caddy, ollama):
    provider.apply(ollama_binding(ollama))
    provider.apply(ollama_binding(ollama, id="other", domains=("other.example.test",)))
    provider.remove("c0ffee")

    assert [r["@id"] for r in routes(caddy)] == ["open1panel-ai-other"]
    assert caddy.get(DOMAIN, "/api/version").text == ""
    assert caddy.get("other.example.test", "/api/version").status_code == 200
    assert provider.status("c0ffee")["state"] == "absent"
    provider.remove("c0ffee")
    elsewhere = CaddyProvider({**caddy.settings(caddy.root), "caddy_server": "elsewhere"})
    elsewhere.remove("c0ffee")  # creates no server just to remove nothing from it
    assert list(caddy.config("/config/apps/http/servers")) == ["open1panel_ai"]


def test_the_probe_fails_when_the_admin_api_does_not_answer(tmp_path):
    with pytest.raises(ProviderUnavailable, match="does not answer"):
        CaddyProvider({"data_dir": str(tmp_path), "caddy_admin": f"http://127.0.0.1:{free_port()}"}).probe()


def test_the_etag_is_caddys_own_format_with_all_eight_hex_digits():
    # Caddy hex-encodes the 4-byte FNV-1a sum, leading zeros included.
    tags = [etag("/config/apps", str(n).encode()) for n in range(300)]
    assert all(len(tag.split()[1].rstrip('"')) == 8 for tag in tags)
    assert any(tag.split()[1].startswith("0") for tag in tags)
    assert (
        etag("/config/apps/http/servers/open1panel_ai/routes", b"[]\n")
        == '"/config/apps/http/servers/open1panel_ai/routes 6dfb3b7d"'
    )


def test_acme_goes_through_caddys_automatic_https(tmp_path, ollama):
    caddy = CaddyServer(tmp_path / "caddy-https", automatic_https=True).start()
    try:
        provider = CaddyProvider(caddy.settings(tmp_path / "data"))
        provider.apply(ollama_binding(ollama, tls_mode="acme"))
        provider.apply(ollama_binding(ollama, id="plain", domains=("plain.example.test",)))

        server = caddy.config("/config/apps/http/servers/open1panel_ai")
        assert server["automatic_https"]["skip"] == ["plain.example.test"]  # no certificate for it
        deadline = time.monotonic() + 20
        while True:  # Caddy obtains the certificate in the background
            try:
                with httpx.Client(verify=False, timeout=5) as client:
                    secure = client.send(
                        client.build_request(
                            "GET",
                            f"https://127.0.0.1:{caddy.https_port}/api/version",
                            headers={"Host": DOMAIN},
                            extensions={"sni_hostname": DOMAIN},
                        )
                    )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert secure.status_code == 200 and secure.json() == {"version": "0.12.6"}
        redirect = httpx.get(f"http://127.0.0.1:{caddy.http_port}/api/version", headers={"Host": DOMAIN})
        assert redirect.status_code in (301, 308) and redirect.headers["location"].startswith(f"https://{DOMAIN}")
    finally:
        caddy.stop()


def test_an_old_route_taken_out_leaves_the_skip_of_a_name_a_newer_route_without_tls_serves(tmp_path, ollama):
    caddy = CaddyServer(tmp_path / "caddy-https", automatic_https=True).start()
    try:
        provider = CaddyProvider(caddy.settings(tmp_path / "data"))
        provider.apply(ollama_binding(ollama, id="old"))
        # A new binding took the name over while the old one waited to be taken out.
        provider.apply(ollama_binding(ollama, id="new"))
        provider.remove("old")

        server = caddy.config("/config/apps/http/servers/open1panel_ai")
        assert [r["@id"] for r in server["routes"]] == ["open1panel-ai-new"]
        assert server["automatic_https"]["skip"] == [DOMAIN]  # still plain HTTP, no certificate

        provider.apply(ollama_binding(ollama, id="new", tls_mode="acme"))
        server = caddy.config("/config/apps/http/servers/open1panel_ai")
        assert server["automatic_https"]["skip"] == []
    finally:
        caddy.stop()


def test_ports_come_from_the_servers_listen_and_force_https_is_honoured(tmp_path, ollama):
    caddy = CaddyServer(tmp_path / "caddy-both", automatic_https=True, both_ports=True).start()
    try:
        provider = CaddyProvider(caddy.settings(tmp_path / "data"))
        assert (provider.public_port(False), provider.public_port(True)) == (caddy.http_port, caddy.https_port)
        certificate, key = self_signed(tmp_path / "tls", DOMAIN)
        secured = ollama_binding(
            ollama, tls_mode="existing", certificate=str(certificate), certificate_key=str(key), force_https=True
        )
        provider.apply(secured)

        redirect = caddy.get(DOMAIN, "/api/version?x=1")
        assert redirect.status_code == 308
        assert redirect.headers["location"] == f"https://{DOMAIN}:{caddy.https_port}/api/version?x=1"
        with httpx.Client(verify=False, timeout=10) as client:
            secure = client.send(
                client.build_request(
                    "GET",
                    f"https://127.0.0.1:{caddy.https_port}/api/version",
                    headers={"Host": DOMAIN},
                    extensions={"sni_hostname": DOMAIN},
                )
            )
        assert secure.status_code == 200 and secure.json() == {"version": "0.12.6"}

        provider.apply(ProxyBinding(**{**secured.__dict__, "force_https": False}))
        plain = caddy.get(DOMAIN, "/api/version")
        assert plain.status_code == 200 and plain.json() == {"version": "0.12.6"}
    finally:
        caddy.stop()


def test_a_missing_server_is_created_on_the_http_apps_own_ports(caddy, ollama):
    elsewhere = CaddyProvider({**caddy.settings(caddy.root), "caddy_server": "elsewhere"})
    http_port, https_port = free_port(), free_port()
    for name, port in (("http_port", http_port), ("https_port", https_port)):
        assert caddy.admin_request("PUT", f"/config/apps/http/{name}", json=port).status_code == 200

    elsewhere.apply(ollama_binding(ollama, domains=("elsewhere.example.test",)))

    server = caddy.config("/config/apps/http/servers/elsewhere")
    assert server["listen"] == [f":{http_port}", f":{https_port}"]
    assert elsewhere.public_port(False) == http_port and elsewhere.public_port(True) == https_port
