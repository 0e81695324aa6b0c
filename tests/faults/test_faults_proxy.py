"""``kill -9`` of the served panel in the middle of a domain apply through real nginx, at each
step of it: the site files are byte for byte the old ones or the new ones (never half), nginx
accepts them, and after a restart the binding's record agrees with what nginx serves. An apply
cut short is undone by the next one, whatever becomes of that. Caddy takes a change in one
request, so there the question is only whether the record and Caddy agree after the restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.domain.nginx import NginxProvider, ProxyRejected
from tests.faults.conftest import integrity, kill_panel

pytestmark = pytest.mark.server

DOMAIN = "models.example.test"
LEFTOVER = (".new", ".previous", ".absent")


def in_background(panel, method: str, path: str, **kwargs) -> threading.Thread:
    """Send a request that will be cut short by the kill; its answer does not matter."""

    def send():
        try:
            panel.api(method, path, **kwargs)
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def through_nginx(nginx, host=DOMAIN, **kwargs) -> int:
    return nginx.server.get(host, "/api/version", **kwargs).status_code


def test_a_domain_apply_killed_at_any_step_leaves_the_old_or_the_new_site(served, panel_env, pausing_nginx, tmp_path):
    nginx = pausing_nginx
    env = {**panel_env, **nginx.env()}
    data_dir = tmp_path / "panel"
    panel = served(env=env, data_dir=data_dir)
    made = panel.api("POST", "/domains", json={"domains": [DOMAIN], "target": {"kind": "ollama", "name": "local"}})
    assert made.status_code == 201, made.text
    binding, token = made.json()["id"], made.json()["token"]
    assert through_nginx(nginx, headers={"Authorization": f"Bearer {token}"}) == 200

    # Each step of an apply, with a change whose effect nginx shows from outside.
    basic = {"mode": "basic", "username": "ops", "password": "a long enough secret"}
    steps = [
        (
            "test",
            "PUT",
            f"/domains/{binding}",
            {"auth": basic},
            lambda: through_nginx(nginx) == 401 and through_nginx(nginx, auth=("ops", basic["password"])) == 200,
        ),
        (
            "reload",
            "PUT",
            f"/domains/{binding}",
            {"allowlist": ["10.0.0.0/8"]},
            lambda: through_nginx(nginx, auth=("ops", basic["password"])) == 403,
        ),
        (
            "after-reload",
            "POST",
            "/domains",
            {
                "domains": ["second.example.test"],
                "auth": {"mode": "none"},
                "target": {"kind": "ollama", "name": "local"},
            },
            lambda: through_nginx(nginx, "second.example.test") == 200,
        ),
    ]
    for step, method, path, body, serves_the_change in steps:
        before = nginx.site_files()
        nginx.pause(step)
        in_background(panel, method, path, json=body)
        nginx.wait_paused(step)
        during = nginx.site_files()
        kill_panel(panel)
        assert integrity(data_dir) == "ok"
        nginx.release()

        panel = served(env=env, data_dir=data_dir)
        listed = panel.api("GET", "/domains").json()["bindings"]
        assert all(b["state"] == "online" for b in listed), listed
        after = nginx.site_files()
        assert not [name for name in after if name.endswith(LEFTOVER)], after
        # The change was applied again from the record: its new text, and nginx serves it.
        changed = {
            name for name, content in during.items() if not name.endswith(LEFTOVER) and content != before.get(name)
        }
        assert changed and all(after[name] == during[name] for name in changed), step
        # So what the kill left on disk was whole: each site the old text or the new one.
        assert all(
            content in (before.get(name), after.get(name)) for name, content in during.items() if name.endswith(".conf")
        )
        assert serves_the_change(), step
        checked = nginx.config_test()
        assert checked.returncode == 0, checked.stderr
    assert integrity(data_dir) == "ok"


#: Applies one binding through the nginx provider in a process of its own, to be killed.
APPLY = """
import json, sys
from open1panel_ai.domain.binding import ProxyBinding, Upstream
from open1panel_ai.domain.nginx import NginxProvider
settings, fields = json.loads(sys.argv[1]), json.loads(sys.argv[2])
NginxProvider(settings).apply(ProxyBinding(**{**fields, "upstream": Upstream(**fields["upstream"])}))
"""


def test_an_apply_cut_short_is_undone_before_the_next_even_one_nginx_rejects(pausing_nginx, standin, tmp_path):
    nginx = pausing_nginx
    settings = {**nginx.server.settings(tmp_path / "data"), "nginx_bin": str(nginx.binary)}
    upstream = Upstream("http", "127.0.0.1", standin.port)
    provider = NginxProvider(settings)
    provider.apply(ProxyBinding(id="kept", domains=(DOMAIN,), target_kind="ollama", upstream=upstream))
    served_before = nginx.site_files()
    assert through_nginx(nginx) == 200

    nginx.pause("test")
    fields = {
        "id": "kept",
        "domains": [DOMAIN],
        "target_kind": "ollama",
        "allowlist": ["10.0.0.0/8"],
        "upstream": {"scheme": "http", "host": "127.0.0.1", "port": standin.port},
    }
    crashing = subprocess.Popen(
        [sys.executable, "-c", APPLY, json.dumps(settings), json.dumps(fields)], start_new_session=True
    )
    nginx.wait_paused("test")
    os.killpg(crashing.pid, signal.SIGKILL)
    crashing.wait()
    nginx.release()
    assert nginx.site_files() != served_before  # the new site in place, not yet tested or loaded

    # The next apply, of another binding that nginx refuses, first puts the killed one back.
    with pytest.raises(ProxyRejected):
        provider.apply(
            ProxyBinding(
                id="broken",
                domains=("broken.example.test",),
                target_kind="ollama",
                upstream=upstream,
                tls_mode="existing",
                certificate=str(tmp_path / "missing.pem"),
                certificate_key=str(tmp_path / "missing.key"),
            )
        )
    assert nginx.site_files() == served_before
    assert nginx.config_test().returncode == 0
    assert through_nginx(nginx) == 200


def test_a_caddy_change_killed_before_or_after_caddy_took_it_ends_applied(served, panel_env, pausing_caddy, tmp_path):
    relay, caddy = pausing_caddy, pausing_caddy.caddy
    env = {**panel_env, "OPEN1PANEL_AI_DOMAIN_PROVIDER": "caddy", "OPEN1PANEL_AI_CADDY_ADMIN": relay.url}
    data_dir = tmp_path / "panel"
    panel = served(env=env, data_dir=data_dir)
    made = panel.api(
        "POST",
        "/domains",
        json={"domains": [DOMAIN], "auth": {"mode": "none"}, "target": {"kind": "ollama", "name": "local"}},
    )
    assert made.status_code == 201 and made.json()["state"] == "online", made.text
    binding = made.json()["id"]
    assert caddy.get(DOMAIN, "/api/version").status_code == 200

    # Killed before Caddy got the change, then after Caddy took it but before the panel knew.
    # The answers through Caddy while the change is held there, and once the panel is back.
    for at, allowlist, while_held, at_the_end in (("before", ["10.0.0.0/8"], 200, 403), ("after", [], 200, 200)):
        relay.pause(at)
        in_background(panel, "PUT", f"/domains/{binding}", json={"allowlist": allowlist})
        assert relay.reached.wait(30), at
        assert caddy.get(DOMAIN, "/api/version").status_code == while_held, at
        kill_panel(panel)
        assert integrity(data_dir) == "ok"
        # A change the killed panel never got to Caddy is lost with it: only the restarted
        # panel, applying the record again, can bring it there.
        relay.release(forward=at != "before")
        assert caddy.get(DOMAIN, "/api/version").status_code == while_held, at

        panel = served(env=env, data_dir=data_dir)
        shown = panel.api("GET", f"/domains/{binding}").json()
        assert shown["state"] == "online" and shown["allowlist"] == allowlist, shown
        assert caddy.get(DOMAIN, "/api/version").status_code == at_the_end, at
