"""The nginx provider against a real nginx: one site file per binding, streaming-safe, guarded
by allowlist and auth, and a rejected change that leaves the previous site serving."""

from __future__ import annotations

import json
import time

import bcrypt
import httpx
import pytest

from hookspecs.ai import ProviderUnavailable
from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.domain.nginx import NginxProvider, ProxyRejected
from tests.domain.certificates import self_signed

DOMAIN = "ollama.example.test"


@pytest.fixture
def provider(nginx, tmp_path):
    provider = NginxProvider(nginx.settings(tmp_path / "data"))
    provider.probe()
    return provider


def ollama_binding(ollama, **changes) -> ProxyBinding:
    fields = {
        "id": "b0a1",
        "domains": (DOMAIN,),
        "target_kind": "ollama",
        "upstream": Upstream("http", "127.0.0.1", ollama.port),
    }
    return ProxyBinding(**{**fields, **changes})


def test_a_binding_reaches_ollama_through_nginx_by_its_host_name(provider, nginx, ollama):
    provider.apply(ollama_binding(ollama, domains=(DOMAIN, "llm.example.test")))

    for host in (DOMAIN, "llm.example.test"):
        response = nginx.get(host, "/api/version")
        assert response.status_code == 200 and response.json() == {"version": "0.12.6"}
    assert nginx.get("other.example.test", "/api/version").status_code == 421
    assert provider.status("b0a1") == {"state": "online", "error": None}
    assert [p.name for p in nginx.sites.iterdir()] == ["open1panel-ai-b0a1.conf"]


def test_the_site_uses_the_streaming_settings_and_forwards_client_details(provider, nginx, ollama):
    provider.apply(ollama_binding(ollama))
    site = provider.site_path("b0a1").read_text()
    for directive in (
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_buffering off;",
        "proxy_cache off;",
        "proxy_request_buffering off;",
        "gzip off;",
        "proxy_read_timeout 3600s;",
        "proxy_send_timeout 3600s;",
        "client_max_body_size 0m;",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Real-IP",
        f"listen 127.0.0.1:{nginx.http_port};",
    ):
        assert directive in site
    assert f"proxy_pass http://127.0.0.1:{ollama.port};" in site  # the path is never rewritten
    assert "proxy_ssl_server_name" not in site
    remote = provider.preview(ollama_binding(ollama, upstream=Upstream("https", "gpu-box.lan", 443)))
    assert "proxy_pass https://gpu-box.lan:443;" in remote and "proxy_ssl_server_name on;" in remote


def test_a_streamed_pull_arrives_line_by_line(provider, nginx, ollama):
    ollama.publish("tiny", [1_500_000])
    ollama.pull_speed = 600_000  # about 2.5 s of progress lines
    provider.apply(ollama_binding(ollama))

    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"http://127.0.0.1:{nginx.http_port}/api/pull",
        timeout=30,
        headers={"Host": DOMAIN},
        json={"model": "tiny"},
    ) as response:
        lines = response.iter_lines()
        first = json.loads(next(lines))
        first_after = time.monotonic() - started
        rest = [json.loads(line) for line in lines if line]
    total = time.monotonic() - started

    assert first == {"status": "pulling manifest"}
    assert rest[-1] == {"status": "success"}
    # Buffered, the first line would come with the last; streamed, at the start.
    assert first_after < total / 2, (first_after, total)  # a buffering proxy sends it at the end


def test_bearer_auth_answers_401_without_the_token(provider, nginx, ollama):
    provider.apply(ollama_binding(ollama, auth_mode="bearer", token="s3cret-token_value"))

    assert provider.site_path("b0a1").stat().st_mode & 0o777 == 0o600  # it holds the token
    assert nginx.get(DOMAIN, "/api/version").status_code == 401
    assert nginx.get(DOMAIN, "/api/version", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = nginx.get(DOMAIN, "/api/version", headers={"Authorization": "Bearer s3cret-token_value"})
    assert ok.status_code == 200


def test_basic_auth_answers_401_without_the_password(provider, nginx, ollama):
    password_hash = bcrypt.hashpw(b"correct horse battery", bcrypt.gensalt(4)).decode()
    provider.apply(ollama_binding(ollama, auth_mode="basic", username="admin", password_hash=password_hash))

    assert nginx.get(DOMAIN, "/api/version").status_code == 401
    assert nginx.get(DOMAIN, "/api/version", auth=("admin", "wrong")).status_code == 401
    assert nginx.get(DOMAIN, "/api/version", auth=("admin", "correct horse battery")).status_code == 200
    assert provider.htpasswd_path("b0a1").read_text() == f"admin:{password_hash}\n"

    provider.apply(ollama_binding(ollama))  # auth off: the password file goes too
    assert not provider.htpasswd_path("b0a1").exists()
    assert nginx.get(DOMAIN, "/api/version").status_code == 200


def test_the_allowlist_answers_403_to_other_addresses_before_asking_for_auth(provider, nginx, ollama):
    provider.apply(ollama_binding(ollama, allowlist=("10.0.0.0/8", "2001:db8::/32"), auth_mode="bearer", token="t0ken"))
    assert nginx.get(DOMAIN, "/api/version").status_code == 403

    provider.apply(ollama_binding(ollama, allowlist=("10.0.0.0/8", "127.0.0.1")))
    assert nginx.get(DOMAIN, "/api/version").status_code == 200


def test_an_existing_certificate_serves_https_and_plain_http_is_redirected(provider, nginx, ollama, tmp_path):
    certificate, key = self_signed(tmp_path / "tls", DOMAIN)
    provider.apply(
        ollama_binding(
            ollama, tls_mode="existing", certificate=str(certificate), certificate_key=str(key), force_https=True
        )
    )

    redirect = nginx.get(DOMAIN, "/api/version?x=1")
    assert redirect.status_code == 308
    assert redirect.headers["location"] == f"https://{DOMAIN}:{nginx.https_port}/api/version?x=1"
    secure = httpx.get(
        f"https://127.0.0.1:{nginx.https_port}/api/version", verify=False, headers={"Host": DOMAIN}, timeout=10
    )
    assert secure.status_code == 200 and secure.json() == {"version": "0.12.6"}
    assert provider.public_port(True) == nginx.https_port


def test_a_change_nginx_rejects_leaves_the_previous_site_serving(provider, nginx, ollama, tmp_path):
    provider.apply(ollama_binding(ollama))
    before = provider.site_path("b0a1").read_text()
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

    assert provider.site_path("b0a1").read_text() == before
    assert sorted(p.name for p in nginx.sites.iterdir()) == ["open1panel-ai-b0a1.conf"]
    assert nginx.get(DOMAIN, "/api/version").status_code == 200  # no token asked: the old site


def test_a_rejected_new_site_leaves_nothing_behind(provider, nginx, ollama, tmp_path):
    with pytest.raises(ProxyRejected):
        provider.apply(
            ollama_binding(
                ollama,
                tls_mode="existing",
                certificate=str(tmp_path / "x.pem"),
                certificate_key=str(tmp_path / "x.key"),
            )
        )
    assert list(nginx.sites.iterdir()) == []
    assert provider.status("b0a1") == {"state": "absent", "error": None}


def test_remove_takes_the_site_away(provider, nginx, ollama):
    password_hash = bcrypt.hashpw(b"pw-pw-pw-pw-pw", bcrypt.gensalt(4)).decode()
    provider.apply(ollama_binding(ollama, auth_mode="basic", username="u", password_hash=password_hash))
    provider.remove("b0a1")

    assert list(nginx.sites.iterdir()) == []
    assert nginx.get(DOMAIN, "/api/version").status_code == 421
    assert provider.status("b0a1")["state"] == "absent"
    provider.remove("b0a1")  # removing a missing binding is not an error


def test_the_probe_says_what_is_missing(tmp_path, nginx):
    settings = nginx.settings(tmp_path / "data")
    with pytest.raises(ProviderUnavailable, match="not found"):
        NginxProvider({**settings, "nginx_bin": "/nonexistent/nginx"}).probe()
    with pytest.raises(ProviderUnavailable, match="missing or not writable"):
        NginxProvider({**settings, "nginx_sites_dir": str(tmp_path / "nowhere")}).probe()
    with pytest.raises(ProviderUnavailable, match="not a port"):
        NginxProvider({**settings, "nginx_http_port": "80; include /etc/passwd"}).probe()
    NginxProvider(settings).probe()
    nginx.stop()
    with pytest.raises(ProviderUnavailable, match="not running"):
        NginxProvider(settings).probe()


def test_a_failed_reload_puts_the_previous_files_back(provider, nginx, ollama):
    provider.apply(ollama_binding(ollama))
    before = provider.site_path("b0a1").read_text()
    pid_file = nginx.root / "nginx.pid"
    hidden = pid_file.rename(nginx.root / "nginx.pid.hidden")  # nginx runs, but -s reload fails

    with pytest.raises(ProxyRejected):
        provider.apply(ollama_binding(ollama, auth_mode="bearer", token="never-activated"))

    assert provider.site_path("b0a1").read_text() == before
    assert sorted(p.name for p in nginx.sites.iterdir()) == ["open1panel-ai-b0a1.conf"]
    hidden.rename(pid_file)
    # The next unrelated reload activates nothing of the failed change.
    provider.apply(ollama_binding(ollama, id="other", domains=("other.example.test",)))
    assert nginx.get(DOMAIN, "/api/version").status_code == 200
    assert nginx.get("other.example.test", "/api/version").status_code == 200


def test_a_binding_can_be_removed_while_nginx_is_stopped(provider, nginx, ollama):
    provider.apply(ollama_binding(ollama))
    provider.apply(ollama_binding(ollama, id="kept", domains=("kept.example.test",)))
    nginx.stop()
    # A change cannot be confirmed by a stopped nginx, so it is refused and leaves nothing behind...
    before = provider.site_path("b0a1").read_bytes()
    with pytest.raises(ProxyRejected, match="not running"):
        provider.apply(ollama_binding(ollama, auth_mode="bearer", token="never-activated"))
    assert provider.site_path("b0a1").read_bytes() == before
    # ...but a removal stands: nginx reads the tree when it starts.
    provider.remove("b0a1")
    assert sorted(p.name for p in nginx.sites.iterdir()) == ["open1panel-ai-kept.conf"]
    assert provider.status("b0a1")["state"] == "absent"

    nginx.start()
    assert nginx.get(DOMAIN, "/api/version").status_code == 421
    assert nginx.get("kept.example.test", "/api/version").status_code == 200
