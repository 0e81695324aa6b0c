"""``kill -9`` of the served panel in the middle of a domain apply through real nginx, at each
step of it: the site files are byte for byte the old ones or the new ones (never half), nginx
accepts them, and after a restart the binding's record agrees with what nginx serves."""

from __future__ import annotations

import threading

import httpx
import pytest

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


def test_a_domain_apply_killed_at_any_step_leaves_the_old_or_the_new_site(
        served, panel_env, pausing_nginx, tmp_path):
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
        ("test", "PUT", f"/domains/{binding}", {"auth": basic},
         lambda: through_nginx(nginx) == 401 and through_nginx(nginx, auth=("ops", basic["password"])) == 200),
        ("reload", "PUT", f"/domains/{binding}", {"allowlist": ["10.0.0.0/8"]},
         lambda: through_nginx(nginx, auth=("ops", basic["password"])) == 403),
        ("after-reload", "POST", "/domains", {"domains": ["second.example.test"], "auth": {"mode": "none"},
                                              "target": {"kind": "ollama", "name": "local"}},
         lambda: through_nginx(nginx, "second.example.test") == 200),
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
        changed = {name for name, content in during.items() if not name.endswith(LEFTOVER)
                   and content != before.get(name)}
        assert changed and all(after[name] == during[name] for name in changed), step
        # So what the kill left on disk was whole: each site the old text or the new one.
        assert all(content in (before.get(name), after.get(name)) for name, content in during.items()
                   if name.endswith(".conf"))
        assert serves_the_change(), step
        checked = nginx.config_test()
        assert checked.returncode == 0, checked.stderr
    assert integrity(data_dir) == "ok"
