"""Choosing the reverse proxy: a provider plugin's ``ai_domain_providers`` comes before the
built-in nginx and Caddy, and the setting picks one by name."""

from __future__ import annotations

from hookspecs import hookimpl
from open1panel_ai.domain import builtin
from open1panel_ai.domain.caddy import CaddyProvider
from open1panel_ai.domain.nginx import NginxProvider
from tests.conftest import TOKEN
from tests.ollama_standin import OllamaStandIn


class ListProxy:
    """A third-party provider that keeps its 'sites' in a list."""

    name = "list"
    acme = True
    published: dict = {}

    def __init__(self, settings):
        self.settings = settings

    def probe(self):
        pass

    def preview(self, binding):
        return f"{binding.id} -> {binding.upstream.url}"

    def apply(self, binding):
        ListProxy.published[binding.id] = binding

    def remove(self, binding_id):
        ListProxy.published.pop(binding_id, None)

    def status(self, binding_id):
        return {"state": "online" if binding_id in ListProxy.published else "absent", "error": None}

    def public_port(self, tls):
        return 8443 if tls else 8080


class ListProxyPlugin:
    @hookimpl
    def ai_domain_providers(self):
        return [ListProxy]


def test_the_built_ins_are_nginx_then_caddy_and_come_last():
    assert builtin.ai_domain_providers() == [NginxProvider, CaddyProvider]
    assert builtin.ai_domain_providers.open1panel_impl["trylast"] is True


def test_a_provider_plugin_is_chosen_before_the_built_ins(make_host, panel_env, tmp_path):
    with OllamaStandIn(tmp_path / "ollama") as ollama:
        panel_env.setenv("OLLAMA_HOST", ollama.url)
        host = make_host(("listproxy", ListProxyPlugin()))
        client = host.app.test_client()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        status = client.get("/api/v2/ai/status", headers=headers).get_json()
        domain = next(p for p in status["providers"] if p["kind"] == "domain")
        assert domain["provider"] == "list"
        assert [c["name"] for c in domain["candidates"]] == ["list", "nginx", "caddy"]

        created = client.post(
            "/api/v2/ai/domains",
            headers=headers,
            json={
                "domains": ["ai.example.test"],
                "target": {"kind": "ollama", "name": "local"},
                "tls": {"mode": "acme"},
            },
        ).get_json()
        assert created["state"] == "online" and created["provider"] == "list"
        assert created["url"] == "https://ai.example.test:8443"
        assert ListProxy.published[created["id"]].upstream.url == ollama.url


def test_no_usable_proxy_is_a_503_that_says_why(make_host, panel_env, tmp_path):
    panel_env.setenv("OPEN1PANEL_AI_DOMAIN_PROVIDER", "nginx")
    panel_env.setenv("OPEN1PANEL_AI_NGINX_SITES_DIR", str(tmp_path / "missing"))
    client = make_host().app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/v2/ai/domains", headers=headers).status_code == 200
    reply = client.post(
        "/api/v2/ai/domains",
        headers=headers,
        json={"domains": ["ai.example.test"], "target": {"kind": "ollama", "name": "local"}},
    )
    assert reply.status_code == 503
    assert "missing or not writable" in reply.get_json()["error"]["message"]
