"""Domain bindings through the API, published by real nginx and real Caddy: bearer by default
for Ollama, the token shown once and rotatable, domains that change, strict input that never
reaches a config file, a rejected change that leaves the old site serving, and removal."""

from __future__ import annotations

import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from open1panel_ai.store import timestamp
from tests.domain.certificates import self_signed
from tests.domain.conftest import DomainPanel, _panel

DOMAIN = "ollama.example.test"


def bind(panel, **fields):
    body = {"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, **fields}
    return panel.api("post", "/domains", json=body)


def config_text(panel) -> str:
    """Everything the panel has written into the proxy's configuration: nginx's site files, or
    every key and string of the config Caddy holds, decoded (so a newline is a newline)."""
    proxy = panel.proxy
    if hasattr(proxy, "sites"):
        return "".join(p.read_text() for p in sorted(proxy.sites.iterdir()))
    return "\n".join(_strings(proxy.config()))


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (str(key), *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def version_through(panel, host=DOMAIN, **kwargs):
    return panel.proxy.get(host, "/api/version", **kwargs)


def test_an_ollama_binding_gets_a_bearer_token_shown_once(panel):
    status, created = bind(panel)
    assert status == 201, created
    token = created["token"]
    assert created["state"] == "online" and created["error"] is None
    assert created["auth"] == {"mode": "bearer", "username": None, "has_secret": True}
    assert created["provider"] == panel.proxy.kind
    assert created["url"] == f"http://{DOMAIN}:{panel.proxy.http_port}"  # the proxy's real port

    assert version_through(panel).status_code == 401
    ok = version_through(panel, headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json() == {"version": "0.12.6"}

    listed = panel.api("get", "/domains")[1]["bindings"]
    shown = panel.api("get", f"/domains/{created['id']}")[1]
    assert [b["id"] for b in listed] == [created["id"]]
    assert "token" not in listed[0] and "token" not in shown and token not in str(listed + [shown])
    assert shown["state"] == "online"


def test_a_rotated_token_replaces_the_old_one(panel):
    created = bind(panel)[1]
    status, rotated = panel.api("post", f"/domains/{created['id']}/token")
    assert status == 200 and rotated["token"] != created["token"]
    assert version_through(panel, headers={"Authorization": f"Bearer {created['token']}"}).status_code == 401
    assert version_through(panel, headers={"Authorization": f"Bearer {rotated['token']}"}).status_code == 200


def test_domains_can_be_changed_later(panel):
    created = bind(panel, auth={"mode": "none"})[1]
    status, changed = panel.api(
        "put", f"/domains/{created['id']}", json={"domains": ["例子.example.test", "llm.example.test"]}
    )
    assert status == 200, changed
    assert changed["domains"] == ["xn--fsqu00a.example.test", "llm.example.test"]
    assert changed["state"] == "online" and "token" not in changed
    assert version_through(panel, "llm.example.test").status_code == 200
    assert version_through(panel, "xn--fsqu00a.example.test").status_code == 200
    assert version_through(panel).text in ("", "\n") or version_through(panel).status_code == 421


def test_the_bindings_and_their_domains_are_listed_in_one_read(nginx_panel, monkeypatch):
    """``GET /domains`` is asked for often, and under load each call into SQLite is a wait for
    the interpreter: every binding with its domains, in their order, is one read (taken once
    to check the proxy's files and once to answer), and the removals, none pending, another."""
    first = bind(nginx_panel, auth={"mode": "none"})[1]
    second = bind(nginx_panel, domains=["b.example.test", "a.example.test"], auth={"mode": "none"})[1]
    store = nginx_panel.context.store
    reads = []
    query, query_one = store.query, store.query_one
    monkeypatch.setattr(store, "query", lambda sql, params=(): reads.append(sql) or query(sql, params))
    monkeypatch.setattr(store, "query_one", lambda sql, params=(): reads.append(sql) or query_one(sql, params))
    status, listed = nginx_panel.api("get", "/domains")
    assert status == 200, listed
    assert [(b["id"], b["domains"]) for b in listed["bindings"]] == [
        (first["id"], [DOMAIN]),
        (second["id"], ["b.example.test", "a.example.test"]),
    ]
    assert len(reads) == 3, reads


def test_a_domain_is_bound_once(panel):
    first = bind(panel)[1]
    status, body = bind(panel, domains=["other.example.test", DOMAIN.upper()])
    assert status == 409 and body["error"]["code"] == "domain_taken"
    assert body["error"]["details"]["domains"] == {DOMAIN: first["id"]}
    assert [b["id"] for b in panel.api("get", "/domains")[1]["bindings"]] == [first["id"]]


def test_the_allowlist_answers_403_and_basic_auth_401(panel):
    status, created = bind(panel, allowlist=["10.0.0.0/8"], auth={"mode": "none"})
    assert status == 201 and created["allowlist"] == ["10.0.0.0/8"]
    assert version_through(panel).status_code == 403

    status, changed = panel.api(
        "put",
        f"/domains/{created['id']}",
        json={
            "allowlist": ["127.0.0.1", "::1"],
            "auth": {"mode": "basic", "username": "ops", "password": "a long enough secret"},
        },
    )
    assert status == 200, changed
    assert changed["auth"] == {"mode": "basic", "username": "ops", "has_secret": True}
    assert version_through(panel).status_code == 401
    assert version_through(panel, auth=("ops", "a long enough secret")).status_code == 200
    assert "a long enough secret" not in config_text(panel)

    # The password may be left out to keep it.
    status, kept = panel.api("put", f"/domains/{created['id']}", json={"auth": {"mode": "basic", "username": "ops"}})
    assert status == 200 and kept["state"] == "online"
    assert version_through(panel, auth=("ops", "a long enough secret")).status_code == 200


def test_a_change_the_proxy_rejects_keeps_the_old_site_and_records_the_error(panel, tmp_path):
    created = bind(panel, auth={"mode": "none"})[1]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    status, refused = panel.api(
        "put",
        f"/domains/{created['id']}",
        json={"tls": {"mode": "existing", "certificate": str(garbage), "key": str(garbage)}},
    )
    # Never a 2xx for a change the proxy did not take; the binding keeps the new settings.
    assert status == 502 and refused["error"]["code"] == "proxy_rejected", refused
    assert "did not take the change" in refused["error"]["message"]
    changed = refused["error"]["details"]["binding"]
    assert changed["state"] == "error" and changed["tls"]["certificate"] == str(garbage)
    assert version_through(panel).status_code == 200  # the previous site still serves
    assert panel.api("get", f"/domains/{created['id']}")[1]["state"] == "error"

    certificate, key = self_signed(tmp_path / "tls", DOMAIN)
    status, fixed = panel.api(
        "put",
        f"/domains/{created['id']}",
        json={"tls": {"mode": "existing", "certificate": str(certificate), "key": str(key), "force_https": False}},
    )
    assert status == 200 and fixed["state"] == "online" and fixed["error"] is None
    assert fixed["url"].startswith("https://ollama.example.test")


def test_a_certificate_that_does_not_exist_is_a_400_naming_the_field_and_nothing_changes(panel, tmp_path):
    created = bind(panel, auth={"mode": "none"})[1]
    missing = tmp_path / "missing" / "cert.pem"
    certificate, _ = self_signed(tmp_path / "tls", DOMAIN)
    status, refused = panel.api(
        "put",
        f"/domains/{created['id']}",
        json={"tls": {"mode": "existing", "certificate": str(certificate), "key": str(missing)}},
    )
    assert status == 400 and refused["error"]["code"] == "file_missing", refused
    assert refused["error"]["details"]["fields"] == {"tls": {"key": [f"{missing} does not exist."]}}
    shown = panel.api("get", f"/domains/{created['id']}")[1]
    assert shown["state"] == "online" and shown["tls"]["mode"] == "none"
    assert version_through(panel).status_code == 200
    status, refused = bind(
        panel, domains=["new.example.test"], tls={"mode": "existing", "certificate": str(missing), "key": str(missing)}
    )
    assert status == 400 and set(refused["error"]["details"]["fields"]["tls"]) == {"certificate", "key"}
    assert len(panel.api("get", "/domains")[1]["bindings"]) == 1


def test_delete_removes_the_site(panel):
    created = bind(panel, auth={"mode": "none"})[1]
    assert version_through(panel).status_code == 200
    assert panel.api("delete", f"/domains/{created['id']}")[0] == 204
    assert version_through(panel).status_code != 200 or version_through(panel).text == ""
    assert panel.api("get", f"/domains/{created['id']}")[0] == 404
    assert created["id"] not in config_text(panel)
    assert panel.api("delete", f"/domains/{created['id']}")[0] == 404


def test_a_binding_is_removed_while_nginx_is_stopped_and_stays_gone_once_it_starts(nginx_panel):
    created = bind(nginx_panel, auth={"mode": "none"})[1]
    nginx = nginx_panel.proxy
    nginx.stop()
    # A change cannot be loaded, so the binding ends in error; removing it still works.
    status, refused = nginx_panel.api("put", f"/domains/{created['id']}", json={"allowlist": ["10.0.0.0/8"]})
    assert status == 502 and "nginx is not running" in refused["error"]["message"]
    changed = refused["error"]["details"]["binding"]
    assert changed["state"] == "error" and "nginx is not running" in changed["error"]
    assert nginx_panel.api("delete", f"/domains/{created['id']}")[0] == 204
    assert nginx_panel.api("get", f"/domains/{created['id']}")[0] == 404
    assert list(nginx.sites.iterdir()) == []

    nginx.start()
    assert version_through(nginx_panel).status_code == 421  # nginx came up without the site


def test_once_the_status_knows_nginx_is_stopped_changes_are_refused_but_removals_go_through(nginx_panel):
    removed = bind(nginx_panel, auth={"mode": "none"})[1]
    kept = bind(nginx_panel, domains=["kept.example.test"], auth={"mode": "none"})[1]
    nginx = nginx_panel.proxy
    nginx.stop()
    domain = next(kind for kind in nginx_panel.api("get", "/status")[1]["providers"] if kind["kind"] == "domain")
    assert not domain["usable"] and "nginx is not running" in domain["reason"]
    status, refused = nginx_panel.api("put", f"/domains/{kept['id']}", json={"allowlist": ["10.0.0.0/8"]})
    assert status == 503 and "nginx is not running" in refused["error"]["message"]

    assert nginx_panel.api("delete", f"/domains/{removed['id']}")[0] == 204
    assert nginx_panel.api("get", f"/domains/{removed['id']}")[0] == 404
    assert [b["id"] for b in nginx_panel.api("get", "/domains")[1]["bindings"]] == [kept["id"]]
    assert sorted(p.name for p in nginx.sites.iterdir()) == [f"open1panel-ai-{kept['id']}.conf"]

    nginx.start()
    assert version_through(nginx_panel).status_code == 421  # nginx came up without the site
    assert version_through(nginx_panel, host="kept.example.test").status_code == 200


def caddy_route_ids(caddy) -> list[str]:
    routes = caddy.config("/config/apps/http/servers/open1panel_ai/routes") or []
    return [route["@id"] for route in routes]


def test_a_binding_removed_while_caddy_is_down_is_taken_out_once_caddy_answers(caddy_panel):
    removed = bind(caddy_panel, auth={"mode": "none"})[1]
    kept = bind(caddy_panel, domains=["kept.example.test"], auth={"mode": "none"})[1]
    caddy = caddy_panel.proxy
    caddy.stop()
    assert caddy_panel.api("delete", f"/domains/{removed['id']}")[0] == 204
    status, listed = caddy_panel.api("get", "/domains")
    assert [b["id"] for b in listed["bindings"]] == [kept["id"]]
    [pending] = listed["removals"]
    assert pending["id"] == removed["id"] and pending["domains"] == [DOMAIN]
    assert "caddy could not take this binding out while it is down" in pending["note"]
    assert "once caddy answers again" in pending["note"]

    caddy.start(resume=True)  # back on the config it held, the removed route included
    assert caddy_route_ids(caddy) == [f"open1panel-ai-{kept['id']}", f"open1panel-ai-{removed['id']}"]
    # The listing itself asks Caddy again; nothing else has to notice that it is back.
    assert caddy_panel.api("get", "/domains")[1]["removals"] == []
    assert caddy_route_ids(caddy) == [f"open1panel-ai-{kept['id']}"]
    assert version_through(caddy_panel, host="kept.example.test").status_code == 200


def test_a_removal_caddy_was_down_for_is_done_by_the_restarted_panel(caddy_panel, make_host):
    removed = bind(caddy_panel, auth={"mode": "none"})[1]
    caddy = caddy_panel.proxy
    caddy.stop()
    caddy_panel.api("get", "/status")  # the panel knows Caddy is down: DELETE goes on anyway
    assert caddy_panel.api("delete", f"/domains/{removed['id']}")[0] == 204
    caddy_panel.host.shutdown()

    caddy.start(resume=True)
    assert caddy_route_ids(caddy) == [f"open1panel-ai-{removed['id']}"]
    restarted = DomainPanel(make_host(), caddy)
    assert caddy_route_ids(caddy) == []
    assert restarted.api("get", "/domains")[1] == {"bindings": [], "removals": []}


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """An HTTP server on a unix socket, as Caddy's admin API is."""

    daemon_threads = True

    def server_bind(self):
        Path(self.server_address).unlink(missing_ok=True)
        super().server_bind()


class HungCaddyAdmin(BaseHTTPRequestHandler):
    """An admin API that answers the probe, then never answers the config read of a change,
    as a Caddy stuck provisioning does; it counts those reads."""

    changes_asked = 0
    released = threading.Event()

    def do_GET(self):
        if self.path == "/config/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        type(self).changes_asked += 1
        self.released.wait(10)

    def log_message(self, *args):
        pass


def test_a_hung_caddy_costs_one_timeout_when_the_bindings_are_listed_not_one_per_removal(caddy_panel, monkeypatch):
    monkeypatch.setattr("open1panel_ai.domain.caddy.ADMIN_TIMEOUT", 0.5)
    first = bind(caddy_panel, auth={"mode": "none"})[1]
    second = bind(caddy_panel, domains=["second.example.test"], auth={"mode": "none"})[1]
    caddy = caddy_panel.proxy
    caddy.stop()
    for binding in (first, second):
        assert caddy_panel.api("delete", f"/domains/{binding['id']}")[0] == 204

    admin = UnixHTTPServer(str(caddy.admin_socket), HungCaddyAdmin)  # where Caddy's admin API was
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    try:
        removals = caddy_panel.api("get", "/domains")[1]["removals"]
    finally:
        HungCaddyAdmin.released.set()
        admin.shutdown()
        admin.server_close()
    assert HungCaddyAdmin.changes_asked == 1
    assert sorted(r["id"] for r in removals) == sorted([first["id"], second["id"]])
    assert sum("did not take this binding out" in r["note"] for r in removals) == 1


def test_a_removal_waits_for_its_own_proxy_when_the_panel_moved_to_another(
    caddy_panel, nginx, panel_env, make_host, ollama, data_dir
):
    removed = bind(caddy_panel, auth={"mode": "none"})[1]
    caddy = caddy_panel.proxy
    caddy.stop()
    assert caddy_panel.api("delete", f"/domains/{removed['id']}")[0] == 204
    caddy_panel.host.shutdown()

    on_nginx = _panel(nginx, "nginx", panel_env, make_host, ollama, data_dir)
    [pending] = on_nginx.api("get", "/domains")[1]["removals"]  # nginx never had Caddy's route
    assert pending["id"] == removed["id"] and "once caddy answers again" in pending["note"]
    on_nginx.host.shutdown()

    caddy.start(resume=True)
    assert caddy_route_ids(caddy) == [f"open1panel-ai-{removed['id']}"]
    back_on_caddy = _panel(caddy, "caddy", panel_env, make_host, ollama, data_dir)
    assert caddy_route_ids(caddy) == []
    assert back_on_caddy.api("get", "/domains")[1]["removals"] == []


def test_a_domain_whose_nginx_site_is_still_to_be_removed_cannot_be_bound_again_until_it_is(nginx_panel):
    removed = bind(nginx_panel, auth={"mode": "none"})[1]
    nginx = nginx_panel.proxy
    nginx.stop()
    broken = nginx.sites / "broken.conf"
    broken.write_text("this is not nginx config\n")  # nginx -t fails, with or without our site
    assert nginx_panel.api("delete", f"/domains/{removed['id']}")[0] == 204
    site = nginx.sites / f"open1panel-ai-{removed['id']}.conf"
    assert site.exists()

    broken.unlink()
    nginx.start()  # on the old site, which still serves the domain
    assert nginx_panel.api("get", "/status")[0] == 200  # the panel sees nginx running again
    status, refused = bind(nginx_panel, auth={"mode": "none"})
    assert status == 409 and refused["error"]["code"] == "domain_being_removed"
    assert refused["error"]["details"] == {"domains": [DOMAIN]}

    assert nginx_panel.api("get", "/domains")[1]["removals"] == []  # nginx takes it out now
    assert not site.exists()
    status, created = bind(nginx_panel, auth={"mode": "none"})
    assert status == 201 and created["state"] == "online"
    assert version_through(nginx_panel).status_code == 200


def test_the_preview_shows_what_will_be_written_with_the_secret_masked(panel):
    status, preview = panel.api(
        "post",
        "/domains/preview",
        json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}, "allowlist": ["10.1.0.0/16"]},
    )
    assert status == 200 and preview["provider"] == panel.proxy.kind
    assert DOMAIN in preview["config"] and "10.1.0.0/16" in preview["config"]
    assert "<token>" in preview["config"]
    assert preview["url"].startswith(f"http://{DOMAIN}")
    assert panel.api("get", "/domains")[1]["bindings"] == []  # nothing saved


def test_acme_needs_caddy(nginx_panel):
    status, body = bind(nginx_panel, tls={"mode": "acme"})
    assert status == 400 and body["error"]["code"] == "acme_unsupported"
    assert list(nginx_panel.proxy.sites.iterdir()) == []


def test_an_unknown_target_is_bad_input(nginx_panel):
    status, body = bind(nginx_panel, target={"kind": "ollama", "name": "nowhere"})
    assert status == 400 and body["error"]["details"]["fields"]["target"]["name"]
    status, body = bind(nginx_panel, target={"kind": "mcp", "name": "no-such-server"})
    assert status == 400 and body["error"]["code"] == "unknown_target"


HOSTILE = [
    "evil.test;",
    "evil.test{",
    "evil.test}",
    'evil".test',
    "evil'.test",
    "$host.test",
    "evil .test",
    "evil.test\nserver_name x",
    "evil.test\r\n",
    "/etc/passwd;",
    "..",
    "a.test; include /etc/passwd",
    "`id`.test",
    "*.evil.test",
    "evil.test#",
    "1.2.3.4/33",
    "/etc/ssl/ok.pem\n",
    "local\n",
    "ops\n",
    "10.0.0.0/8\n",
]


def field_bodies(value):
    """A create body with ``value`` in each field in turn."""
    base = {"domains": ["fine.example.test"], "target": {"kind": "ollama", "name": "local"}}
    yield "domains", {**base, "domains": [value]}
    yield "target.name", {**base, "target": {"kind": "ollama", "name": value}}
    yield "target.kind", {**base, "target": {"kind": value, "name": "local"}}
    yield "allowlist", {**base, "allowlist": [value]}
    yield "tls.certificate", {**base, "tls": {"mode": "existing", "certificate": value, "key": "/k.pem"}}
    yield "tls.key", {**base, "tls": {"mode": "existing", "certificate": "/c.pem", "key": value}}
    yield "tls.mode", {**base, "tls": {"mode": value}}
    yield "tls.force_https", {**base, "tls": {"mode": "none", "force_https": value}}
    yield "auth.mode", {**base, "auth": {"mode": value}}
    yield "auth.username", {**base, "auth": {"mode": "basic", "username": value, "password": "long enough password"}}


def test_hostile_values_in_any_field_are_400_and_never_reach_a_config_file(panel):
    kept = bind(panel, domains=["kept.example.test"])[1]
    before = config_text(panel)
    for value in HOSTILE:
        for field, body in field_bodies(value):
            for method, path in (("post", "/domains"), ("put", f"/domains/{kept['id']}"), ("post", "/domains/preview")):
                status, reply = panel.api(method, path, json=body)
                assert status == 400, (field, value, method, reply)
                assert reply["error"]["code"] == "validation_error"
    after = config_text(panel)
    assert after == before and "kept.example.test" in after
    for value in HOSTILE:
        assert value not in after, value
    assert [b["id"] for b in panel.api("get", "/domains")[1]["bindings"]] == [kept["id"]]
    assert panel.api("get", f"/domains/{kept['id']}")[1]["domains"] == ["kept.example.test"]


def test_a_password_is_only_ever_written_as_its_hash(nginx_panel):
    password = 'pass"; } include /etc/passwd; {$x'
    status, created = bind(nginx_panel, auth={"mode": "basic", "username": "ops", "password": password})
    assert status == 201 and created["state"] == "online"
    written = config_text(nginx_panel) + "".join(p.read_text() for p in nginx_panel.proxy.sites.glob("*.htpasswd"))
    assert password not in written and "include /etc/passwd" not in written
    assert "ops:$2b$12$" in written
    assert version_through(nginx_panel, auth=("ops", password)).status_code == 200


def test_other_bad_input_is_400_with_field_errors(nginx_panel):
    cases = [
        ({}, "domains"),
        ({"domains": [], "target": {"kind": "ollama", "name": "local"}}, "domains"),
        ({"domains": ["a.example.test", "A.example.test"], "target": {"kind": "ollama", "name": "local"}}, "domains"),
        (
            {"domains": ["a.example.test"], "target": {"kind": "ollama", "name": "local"}, "tls": {"mode": "existing"}},
            "tls",
        ),
        (
            {
                "domains": ["a.example.test"],
                "target": {"kind": "ollama", "name": "local"},
                "auth": {"mode": "basic", "username": "u", "password": "short"},
            },
            "auth",
        ),
        ({"domains": ["a.example.test"], "target": {"kind": "ollama", "name": "local"}, "surprise": 1}, "surprise"),
        (
            {"domains": ["a.example.test"], "target": {"kind": "ollama", "name": "local"}, "allowlist": ["10.0.0.1/8"]},
            "allowlist",
        ),
    ]
    for body, field in cases:
        status, reply = nginx_panel.api("post", "/domains", json=body)
        assert status == 400, body
        assert field in reply["error"]["details"]["fields"], reply
    status, reply = bind(nginx_panel, auth={"mode": "basic", "username": "ops"})
    assert status == 400 and "password" in reply["error"]["details"]["fields"]["auth"]
    assert nginx_panel.api("get", "/domains")[1]["bindings"] == []
    assert list(nginx_panel.proxy.sites.iterdir()) == []


def test_times_are_stored_to_the_millisecond_like_the_rest_of_the_panel(nginx_panel):
    shape = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    created = bind(nginx_panel, auth={"mode": "none"})[1]
    changed = nginx_panel.api("put", f"/domains/{created['id']}", json={"allowlist": ["10.0.0.0/8"]})[1]
    for value in (created["created_at"], created["updated_at"], changed["updated_at"], timestamp()):
        assert shape.match(value), value
    assert changed["created_at"] == created["created_at"] <= changed["updated_at"]
