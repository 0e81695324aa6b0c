"""Authentication: the admin token, bearer clients, browser sessions with CSRF, Socket.IO."""

import os
import re
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from open1panel_ai import cli
from open1panel_ai.config import Settings
from open1panel_ai.standalone import auth
from open1panel_ai.standalone.host import create_host
from open1panel_ai.web import MAX_JSON_BODY
from tests.conftest import TOKEN
from tests.test_errors import FORM, CountingStream, big_form, chunked

SAMPLE_ARGUMENTS = {"task_id": "abc", "name": "ai", "filename": "ai.js", "path": "x"}


def test_every_route_but_healthz_answers_401_without_credentials(host):
    client = host.app.test_client()
    checked = 0
    for rule in host.app.url_map.iter_rules():
        url = rule.build({arg: SAMPLE_ARGUMENTS.get(arg, "x") for arg in rule.arguments})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if rule.endpoint == "healthz":
                assert response.status_code == 200
            else:
                assert response.status_code == 401, f"{method} {url} answered {response.status_code}"
                checked += 1
    assert checked >= 10  # the walk saw the host's, the plugin's and the static routes


def test_healthz_is_open_and_reveals_nothing(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert TOKEN not in response.get_data(as_text=True)


def test_a_bearer_token_opens_the_api_and_a_wrong_one_does_not(client, auth_headers):
    assert client.get("/api/v2/ai/status", headers=auth_headers).status_code == 200
    wrong = client.get("/api/v2/ai/status", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "unauthorized"


def test_a_generated_token_is_stored_owner_only_and_reused(panel_env, data_dir):
    panel_env.delenv("OPEN1PANEL_AI_TOKEN")
    first = create_host(Settings.from_environ())
    assert first.token_created
    path = data_dir / "admin-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == first.token and len(first.token) >= 32
    first.shutdown()
    second = create_host(Settings.from_environ())
    assert (second.token, second.token_created) == (first.token, False)
    second.shutdown()


def test_panels_starting_together_all_read_the_one_token_made(tmp_path):
    """Processes starting at once on a new data dir race to make the token file: exactly one
    makes it, and every other one reads it whole, never empty."""
    for attempt in range(10):
        data_dir = tmp_path / str(attempt)
        start = threading.Barrier(8)

        def load(start=start, data_dir=data_dir):
            start.wait()
            return auth.load_or_create_token(data_dir, environ={})

        with ThreadPoolExecutor(8) as pool:
            results = [future.result() for future in [pool.submit(load) for _ in range(8)]]
        tokens = {token for token, _ in results}
        assert len(tokens) == 1 and "" not in tokens
        assert sum(created for _, created in results) == 1
        assert os.listdir(data_dir) == ["admin-token"]  # no draft left beside it


def test_an_empty_token_file_is_refused_not_matched(data_dir, monkeypatch):
    monkeypatch.setattr(auth, "EMPTY_SECRET_WAIT", 0.2)
    data_dir.mkdir()
    (data_dir / "admin-token").write_text("\n")
    with pytest.raises(ValueError, match="admin-token is empty"):
        auth.load_or_create_token(data_dir, environ={})
    with pytest.raises(ValueError, match="must not be empty"):
        auth.TokenAuth("")


def test_an_empty_token_file_being_filled_is_waited_for(data_dir):
    data_dir.mkdir()
    path = data_dir / "admin-token"
    path.write_text("")
    filled = "filled-in-a-moment-0123456789abcdef"
    threading.Timer(0.2, path.write_text, [filled + "\n"]).start()
    assert auth.load_or_create_token(data_dir, environ={}) == (filled, False)


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda path: path.write_text("\n"), "is empty"),
        (lambda path: path.write_bytes(b"\xff\xfe\x00"), "(it is not text)"),
        (lambda path: path.mkdir(), "(Is a directory)"),
    ],
)
def test_serve_refuses_an_empty_or_unreadable_session_secret_with_a_clear_error(
    panel_env, data_dir, capsys, monkeypatch, spoil, reason
):
    monkeypatch.setattr(auth, "EMPTY_SECRET_WAIT", 0.2)
    data_dir.mkdir()
    spoil(data_dir / "session-secret")
    for name in ("HOST", "PORT"):  # serve sets them; the fixture puts them back afterwards
        panel_env.setenv(f"OPEN1PANEL_AI_{name}", "")
    assert cli.main(["serve", "--host", "127.0.0.1", "--port", "1"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("open1panel-ai: ") and reason in error and "Traceback" not in error
    assert f"{data_dir / 'session-secret'}" in error and "delete it" in error.lower()
    assert "OPEN1PANEL_AI_TOKEN" not in error  # the token has nothing to do with this file


def test_an_unreadable_token_file_is_a_clear_error(data_dir):
    (data_dir / "admin-token").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"Cannot read .*admin-token \(Is a directory\).*OPEN1PANEL_AI_TOKEN"):
        auth.load_or_create_token(data_dir, environ={})


def test_empty_credentials_sign_nobody_in(client):
    assert not auth.TokenAuth(TOKEN).matches("")
    assert client.get("/api/v2/ai/status", headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get("/api/v2/ai/status", headers={"Authorization": "Bearer"}).status_code == 401
    assert client.post("/login", data={"token": ""}).status_code == 401
    assert client.get("/api/v2/ai/status").status_code == 401


def _csrf_from(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _sign_in(client, token=TOKEN):
    return client.post("/login", data={"token": token, "next": "/ai/"})


def test_a_browser_signs_in_with_the_token_and_gets_a_session(client):
    page = client.get("/ai/")
    assert page.status_code == 401 and b'name="token"' in page.data  # the sign-in form
    wrong = _sign_in(client, "wrong")
    assert wrong.status_code == 401 and b"not right" in wrong.data
    signed_in = _sign_in(client)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/ai/"
    cookie = client.get_cookie("open1panel_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert client.get("/ai/").status_code == 200
    assert client.get("/api/v2/ai/status").status_code == 200


def test_sign_in_never_redirects_off_site(client):
    response = client.post("/login", data={"token": TOKEN, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_session_requests_that_change_state_need_the_csrf_token(client):
    _sign_in(client)
    csrf = _csrf_from(client.get("/ai/").get_data(as_text=True))
    refused = client.post("/api/v2/ai/tasks/abc/cancel")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    allowed = client.post("/api/v2/ai/tasks/abc/cancel", headers={"X-CSRF-Token": csrf})
    assert allowed.status_code == 404  # past the guard: the task does not exist
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/api/v2/ai/status").status_code == 401


def test_bearer_clients_need_no_csrf_token(client, auth_headers):
    assert client.post("/api/v2/ai/tasks/abc/cancel", headers=auth_headers).status_code == 404


def test_socketio_refuses_connections_without_credentials(host):
    anonymous = host.socketio.test_client(host.app, namespace="/ai")
    assert not anonymous.is_connected("/ai")
    wrong = host.socketio.test_client(host.app, namespace="/ai", auth={"token": "nope"})
    assert not wrong.is_connected("/ai")


@pytest.mark.parametrize("how", ["auth", "header"])
def test_socketio_accepts_the_token(host, how):
    kwargs = {"auth": {"token": TOKEN}} if how == "auth" else {"headers": {"Authorization": f"Bearer {TOKEN}"}}
    client = host.socketio.test_client(host.app, namespace="/ai", **kwargs)
    assert client.is_connected("/ai")
    client.disconnect(namespace="/ai")


def test_socketio_accepts_a_signed_in_browser_session(host):
    browser = host.app.test_client()
    _sign_in(browser)
    client = host.socketio.test_client(host.app, namespace="/ai", flask_test_client=browser)
    assert client.is_connected("/ai")
    client.disconnect(namespace="/ai")


def test_a_new_token_signs_existing_sessions_out(make_host, panel_env):
    first = make_host()
    browser = first.app.test_client()
    _sign_in(browser)
    assert browser.get("/api/v2/ai/status").status_code == 200
    first.shutdown()
    panel_env.setenv("OPEN1PANEL_AI_TOKEN", "a-brand-new-token-abcdefghijklmnopqrstuvwxyz")
    second = make_host()
    moved = second.app.test_client()
    moved.set_cookie("open1panel_session", browser.get_cookie("open1panel_session").value)
    assert moved.get("/api/v2/ai/status").status_code == 401


@pytest.mark.parametrize("path", ["/login", "/plugins/ai"])
def test_forms_from_the_signed_out_are_read_only_within_the_body_limit(client, path):
    """The sign-in form and page read a form's fields before anyone is signed in."""
    data = big_form(20 * 1024 * 1024)
    for extra, most_read in (({"content_length": len(data)}, 0), (chunked({}), MAX_JSON_BODY + 64 * 1024)):
        body = CountingStream(data)
        response = client.post(path, input_stream=body, content_type=FORM, **extra)
        assert response.status_code == 413
        assert response.get_json()["error"]["code"] == "payload_too_large"
        assert body.read_bytes <= most_read
