"""The owner lock and what a panel that does not hold it does, within one test process.

``flock`` locks belong to an open file, so two claims in one process exclude each other just
as two processes do.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from open1panel_ai.config import Settings
from open1panel_ai.ownership import LOCK_FILE, Ownership
from open1panel_ai.standalone.host import create_host


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
        panel_env, redis_url, data_dir, auth_headers):
    panel_env.setenv("OPEN1PANEL_AI_REDIS_URL", redis_url)
    panel_env.setenv("OPEN1PANEL_AI_GPU_PROVIDER", "cpu")
    panel_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0.5")
    data_dir.mkdir(parents=True)
    # Another process's claim: a lock on the file, and no owner's socket to answer.
    other = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)
    host = create_host(Settings.from_environ())
    try:
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
        deadline = time.monotonic() + 5
        while not (context.is_owner and history_rows(context)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert context.is_owner and history_rows(context) > 0
        assert client.get("/api/v2/ai/tasks", headers=auth_headers).status_code == 200
        assert (data_dir / "run" / "owner.sock").is_socket()
    finally:
        host.shutdown()
    assert not (data_dir / "run" / "owner.sock").exists()
