"""Finding 8 of the security review: browser sessions and the sign-in form.

Reproduced on the panel before the fix: a session cookie copied before sign-out still opened
everything afterwards (sign-out only cleared the browser's copy); the cookie was never marked
``Secure``, even behind an HTTPS proxy; the sign-in form took any number of guesses; a
one-character ``OPEN1PANEL_AI_TOKEN`` was accepted; and the cookie carried a fingerprint of the
admin token (16 hex digits of its SHA-256).
"""

import hashlib
import logging
import re
import time

import httpx
import pytest
import socketio
from playwright.sync_api import expect

from open1panel_ai import cli
from open1panel_ai.standalone import server
from open1panel_ai.standalone.host import SIGN_IN_ATTEMPTS, SIGN_IN_WINDOW
from open1panel_ai.standalone.sessions import DATABASE_FILE, HostDatabase, SignInThrottle, client_key
from tests.conftest import TOKEN

COOKIE = "open1panel_session"


def sign_in(client, token=TOKEN, **kwargs):
    return client.post("/login", data={"token": token, "next": "/ai/"}, **kwargs)


def csrf_of(client) -> str:
    page = client.get("/plugins").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_signing_out_ends_the_session_on_the_server(host):
    browser = host.app.test_client()
    assert sign_in(browser).status_code == 303
    stolen = browser.get_cookie(COOKIE).value
    assert browser.post("/logout", data={"csrf_token": csrf_of(browser)}).status_code == 303
    replay = host.app.test_client()
    replay.set_cookie(COOKIE, stolen)
    assert replay.get("/api/v2/ai/status").status_code == 401
    assert replay.get("/ai/").status_code == 401
    assert not host.socketio.test_client(host.app, namespace="/ai", flask_test_client=replay).is_connected("/ai")
    # Another browser's session lives on: sign-out ends one session, not all.
    other = host.app.test_client()
    sign_in(other)
    third = host.app.test_client()
    sign_in(third)
    third.post("/logout", data={"csrf_token": csrf_of(third)})
    assert other.get("/api/v2/ai/status").status_code == 200


def test_the_cookie_carries_no_token_fingerprint(host):
    browser = host.app.test_client()
    sign_in(browser)
    value = browser.get_cookie(COOKIE).value
    content = host.app.session_interface.get_signing_serializer(host.app).loads(value)
    assert set(content) <= {"user", "sid", "csrf", "_permanent"}
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    for text in [value, *map(str, content.values())]:
        assert TOKEN not in text and digest[:16] not in text and digest not in text
    # The session's id is kept on the server only as its hash.
    database = (host.data_dir / DATABASE_FILE).read_bytes()
    assert content["sid"].encode() not in database


def secure_cookie(client, **request_kwargs) -> bool:
    response = sign_in(client, **request_kwargs)
    assert response.status_code == 303
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return "; Secure" in cookie


def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy(make_host, panel_env):
    direct = make_host().app
    assert not secure_cookie(direct.test_client())
    assert secure_cookie(direct.test_client(), base_url="https://localhost")  # HTTPS straight to the panel
    # Nobody said to believe the header: a client cannot make the panel think it is behind HTTPS.
    assert not secure_cookie(direct.test_client(), headers={"X-Forwarded-Proto": "https"})
    panel_env.setenv("OPEN1PANEL_AI_TRUST_PROXY", "1")
    proxied = make_host().app
    assert secure_cookie(proxied.test_client(), headers={"X-Forwarded-Proto": "https"})
    assert not secure_cookie(proxied.test_client(), headers={"X-Forwarded-Proto": "http"})


def test_sign_in_is_limited_per_client_address(make_host, panel_env, caplog):
    panel_env.setenv("OPEN1PANEL_AI_TRUST_PROXY", "1")
    host = make_host()
    client = host.app.test_client()
    attacker = {"headers": {"X-Forwarded-For": "203.0.113.7"}}
    caplog.set_level(logging.WARNING, logger="open1panel_ai.standalone.views")
    for _ in range(SIGN_IN_ATTEMPTS - 1):
        assert sign_in(client, "wrong", **attacker).status_code == 401
    blocked = sign_in(client, "wrong", **attacker)
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= SIGN_IN_WINDOW
    assert "Too many wrong tokens" in blocked.get_data(as_text=True)
    assert sign_in(client, TOKEN, **attacker).status_code == 429  # even the right one, until the window ends
    assert "203.0.113.7" in caplog.text and "refused" in caplog.text
    # Other addresses sign in as ever; a right token clears an address's count.
    assert sign_in(client, TOKEN, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 303
    chinese = sign_in(host.app.test_client(), "wrong", headers={**attacker["headers"], "Accept-Language": "zh-CN"})
    assert chinese.status_code == 429 and "错误令牌过多" in chinese.get_data(as_text=True)


def test_a_forged_forwarded_for_does_not_escape_the_limit(host):
    client = host.app.test_client()
    for number in range(SIGN_IN_ATTEMPTS):  # no proxy is trusted: the header is ignored
        sign_in(client, "wrong", headers={"X-Forwarded-For": f"198.51.100.{number}"})
    assert sign_in(client, TOKEN).status_code == 429
    # An IPv6 client is counted by its /64, all of which one host usually holds.
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") != client_key("2001:db8:0:1::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    ipv6 = host.app.test_client()
    for number in range(SIGN_IN_ATTEMPTS):
        sign_in(ipv6, "wrong", environ_base={"REMOTE_ADDR": f"2001:db8::{number + 1:x}"})
    assert sign_in(ipv6, TOKEN, environ_base={"REMOTE_ADDR": "2001:db8::abcd"}).status_code == 429
    assert sign_in(ipv6, TOKEN, environ_base={"REMOTE_ADDR": "2001:db8:0:1::1"}).status_code == 303


def test_the_count_is_shared_by_every_process_of_the_data_dir(data_dir):
    first = SignInThrottle(HostDatabase(data_dir / DATABASE_FILE), 3, 60)
    second = SignInThrottle(HostDatabase(data_dir / DATABASE_FILE), 3, 60)
    first.failed("192.0.2.1")
    second.failed("192.0.2.1")
    assert first.failed("192.0.2.1")[0] == 3
    assert second.retry_after("192.0.2.1") > 0 and second.retry_after("192.0.2.2") == 0


@pytest.mark.parametrize(
    "variable, value, error",
    [
        ("OPEN1PANEL_AI_TOKEN", "short-token", "OPEN1PANEL_AI_TOKEN holds a token of 11 characters"),
        ("OPEN1PANEL_AI_TOKEN", "x" * 31, "at least 32"),
        ("OPEN1PANEL_AI_METRICS_TOKEN", "scrape", "OPEN1PANEL_AI_METRICS_TOKEN holds a token of 6 characters"),
        ("OPEN1PANEL_AI_TRUST_PROXY", "yes", "OPEN1PANEL_AI_TRUST_PROXY must be the number of reverse proxies"),
    ],
)
def test_serve_refuses_a_short_token_at_start(panel_env, capsys, monkeypatch, variable, value, error):
    monkeypatch.setattr(server, "serve", lambda settings: pytest.fail("the panel started"))
    panel_env.setenv(variable, value)
    for name in ("HOST", "PORT"):  # serve sets them; the fixture puts them back afterwards
        panel_env.setenv(f"OPEN1PANEL_AI_{name}", "")
    assert cli.main(["serve", "--host", "127.0.0.1", "--port", "8788"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("open1panel-ai: ") and error in message and "Traceback" not in message
    if "TOKEN" in variable:
        assert value not in message  # a token is never echoed


def test_a_short_token_file_is_refused(make_host, panel_env, data_dir):
    panel_env.delenv("OPEN1PANEL_AI_TOKEN")
    data_dir.mkdir(parents=True)
    (data_dir / "admin-token").write_text("hunter2\n")
    with pytest.raises(ValueError, match=r"admin-token holds a token of 7 characters.*delete the file"):
        make_host()


@pytest.mark.browser
def test_in_chromium_sign_out_ends_the_session_and_guessing_is_stopped(served, page):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN, "OPEN1PANEL_AI_SIGN_IN_SECONDS": "2"})
    page.goto(panel.url + "/plugins")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
    assert httpx.get(panel.url + "/api/v2/ai/status", cookies={COOKIE: cookie}).status_code == 200
    # A live connection that the session let in (a copy of the cookie, say) is cut at sign-out.
    listener = socketio.Client(reconnection=False)
    listener.connect(
        panel.url,
        namespaces=["/ai"],
        transports=["websocket"],
        headers={"Cookie": f"{COOKIE}={cookie}"},
        wait_timeout=5,
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#token")).to_be_visible()
    assert httpx.get(panel.url + "/api/v2/ai/status", cookies={COOKIE: cookie}).status_code == 401
    deadline = time.monotonic() + 5
    while listener.connected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listener.connected

    for attempt in range(SIGN_IN_ATTEMPTS):
        page.fill("#token", f"guess-{attempt}")
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_contain_text(
            "Too many wrong tokens" if attempt == SIGN_IN_ATTEMPTS - 1 else "not right"
        )
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Try again in 15 minutes")
    page.goto(panel.url + "/login?lang=zh-CN")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("请在 15 分钟后重试")
    assert "sign-in from 127.0.0.1 refused for" in panel.log()
