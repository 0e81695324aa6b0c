"""The owner lock and what a panel that does not hold it does, within one test process.

``flock`` locks belong to an open file, so two claims in one process exclude each other just
as two processes do.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time

import pytest

from open1panel_ai import cli
from open1panel_ai.config import Settings
from open1panel_ai.ownership import LOCK_FILE, Ownership
from open1panel_ai.standalone.host import create_host
from tests.conftest import TOKEN
from tests.helpers import wait_for
from tests.test_errors import FORM, CountingStream, big_form, sign_in


def test_one_claim_holds_the_lock_and_the_next_takes_it_when_it_goes(tmp_path):
    first, second = Ownership(tmp_path), Ownership(tmp_path)
    assert first.try_acquire() and first.held
    assert not second.try_acquire() and not second.held
    assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"

    took_over = threading.Event()
    second.acquire_later(took_over.set)
    assert not took_over.wait(0.8)  # the first still holds it
    first.release()
    assert took_over.wait(5) and second.held
    second.release()


def test_release_stops_waiting_for_the_lock(tmp_path):
    first, second = Ownership(tmp_path), Ownership(tmp_path)
    assert first.try_acquire()
    called = threading.Event()
    second.acquire_later(called.set)
    second.release()
    first.release()
    assert not called.wait(1)


def history_rows(context) -> int:
    return context.store.query_one("SELECT count(*) AS n FROM gpu_history")["n"]


def test_a_panel_that_is_not_the_owner_relays_and_answers_503_until_it_takes_over(
    panel_env, redis_url, data_dir, auth_headers
):
    panel_env.setenv("OPEN1PANEL_AI_REDIS_URL", redis_url)
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "cpu")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0.5")
    data_dir.mkdir(parents=True)
    # Another process's claim: a lock on the file, and no owner's socket to answer.
    other = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    host = None
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        host = create_host(Settings.from_environ())
        client = host.app.test_client()
        response = client.get("/api/v2/ai/tasks", headers=auth_headers)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "owner_unavailable"
        assert client.get("/api/v2/ai/tasks").status_code == 401  # checked before relaying
        assert client.get("/ai/", headers=auth_headers).status_code == 200  # pages are its own
        context = host.app.extensions["open1panel_ai"]
        time.sleep(0.6)
        assert history_rows(context) == 0  # the owner keeps the GPU history, not this one

        os.close(other)  # the other process ends
        other = None
        wait_for(
            lambda: context.is_owner and history_rows(context), what="the panel taking over and keeping the GPU history"
        )
        assert client.get("/api/v2/ai/tasks", headers=auth_headers).status_code == 200
        assert (data_dir / "run" / "owner.sock").is_socket()
    finally:
        if other is not None:
            os.close(other)
        if host is not None:
            host.shutdown()
    assert not (data_dir / "run" / "owner.sock").exists()


@pytest.fixture
def shared_dir_env(panel_env, redis_url, data_dir):
    """The environment of panels that may share ``data_dir`` with other processes."""
    panel_env.setenv("OPEN1PANEL_AI_REDIS_URL", redis_url)
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "cpu")
    data_dir.mkdir(parents=True)
    return panel_env


def block_owner_socket(data_dir):
    """Put a folder where the owner's socket goes, so that binding it fails for real."""
    (data_dir / "run" / "owner.sock" / "in-the-way").mkdir(parents=True)


def lock_is_free(data_dir) -> bool:
    claim = Ownership(data_dir)
    try:
        return claim.try_acquire()
    finally:
        claim.release()


def test_a_panel_that_cannot_take_over_gives_the_lock_up_and_relays(shared_dir_env, data_dir, auth_headers, caplog):
    other = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    host = None
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        host = create_host(Settings.from_environ())
        context = host.app.extensions["open1panel_ai"]
        block_owner_socket(data_dir)
        os.close(other)  # the owner ends; taking over fails at the socket
        other = None
        wait_for(lambda: "could not become the owner" in caplog.text, what="the failed takeover")
        assert wait_for(lambda: lock_is_free(data_dir), what="the lock given up")
        assert not context.is_owner
        response = host.app.test_client().get("/api/v2/ai/tasks", headers=auth_headers)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "owner_unavailable"
    finally:
        if other is not None:
            os.close(other)
        if host is not None:
            host.shutdown()


def test_a_first_panel_that_cannot_open_the_owner_socket_gives_the_lock_up(
    shared_dir_env, data_dir, auth_headers, caplog
):
    block_owner_socket(data_dir)
    host = create_host(Settings.from_environ())
    try:
        context = host.app.extensions["open1panel_ai"]
        assert "could not become the owner" in caplog.text
        assert not context.is_owner and lock_is_free(data_dir)
        assert host.app.test_client().get("/api/v2/ai/tasks", headers=auth_headers).status_code == 503
    finally:
        host.shutdown()


def test_a_data_dir_too_deep_for_the_owner_socket_is_refused_with_the_reason(panel_env, redis_url, tmp_path, capsys):
    deep = tmp_path / ("d" * (110 - len(str(tmp_path))))
    panel_env.setenv("OPEN1PANEL_AI_REDIS_URL", redis_url)
    assert cli.main(["serve", "--port", "1", "--data-dir", str(deep)]) == 2
    error = capsys.readouterr().err
    assert "too deep for processes to share it" in error and "at most 107" in error

    host = create_host(Settings.from_environ())  # a host other than the CLI hears it too
    try:
        assert "too deep for processes to share it" in host.plugin_errors["ai"]
        assert not (deep / LOCK_FILE).exists()
    finally:
        host.shutdown()


def test_a_signed_in_form_post_is_relayed_with_its_body(shared_dir_env, make_host):
    """A browser form carries its CSRF token in a field; reading it must not lose the body
    that the owner, which checks the token again, is sent."""
    owner, relaying = make_host(), make_host()
    assert owner.app.extensions["open1panel_ai"].is_owner
    assert not relaying.app.extensions["open1panel_ai"].is_owner
    browser = relaying.app.test_client()
    browser.post("/login", data={"token": TOKEN, "next": "/ai/"})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/ai/").get_data(as_text=True)).group(1)
    answer = browser.post("/api/v2/ai/tasks/no-such-task/cancel", data={"csrf_token": csrf})
    assert answer.status_code == 404, answer.get_data(as_text=True)  # the owner's answer
    assert answer.get_json()["error"]["code"] == "not_found"
    refused = browser.post("/api/v2/ai/tasks/no-such-task/cancel", data={"csrf_token": "wrong"})
    assert refused.status_code == 403


def test_a_big_form_is_refused_by_the_relaying_panel_or_streamed_to_the_owner(shared_dir_env, make_host, auth_headers):
    """A signed-in browser's form is read for its CSRF field before it is relayed: over the
    body limit it is refused there, unread. A token client's form is not read there at all:
    the owner has its request while most of the body is still unsent, and its JSON route
    refuses the media type."""
    owner, relaying = make_host(), make_host()
    assert not relaying.app.extensions["open1panel_ai"].is_owner
    data = big_form(20 * 1024 * 1024)
    sent_when_the_owner_began = []
    owner.app.before_request(lambda: sent_when_the_owner_began.append(body.read_bytes) and None)
    browser = relaying.app.test_client()
    sign_in(browser)
    body = CountingStream(data)
    refused = browser.post("/api/v2/ai/ollama/pulls", input_stream=body, content_type=FORM, content_length=len(data))
    assert refused.status_code == 413 and refused.get_json()["error"]["code"] == "payload_too_large"
    assert body.read_bytes == 0 and sent_when_the_owner_began == []
    body = CountingStream(data)
    answer = relaying.app.test_client().post(
        "/api/v2/ai/ollama/pulls", headers=auth_headers, input_stream=body, content_type=FORM, content_length=len(data)
    )
    assert answer.status_code == 400, answer.get_data(as_text=True)  # the owner's answer
    assert answer.get_json()["error"]["code"] == "unsupported_media_type"
    assert sent_when_the_owner_began[0] < len(data) // 4
