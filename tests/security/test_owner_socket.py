"""Finding 7: a failed owner start does not crash-loop.

The owner of a data dir listens on ``run/owner.sock``. Something left in that place (a link, a
file, a socket of an owner that died) must neither end the process (a worker that exits is
started again, and resumes the tasks again, in a loop) nor kill the thread that took the owner
lock while it holds it. The panel binds the socket itself: a stale socket is replaced, anything
else is left alone and refused, and the process gives the lock up and relays the API.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import threading

import httpx
import pytest

from open1panel_ai.config import Settings
from open1panel_ai.ownership import LOCK_FILE
from open1panel_ai.standalone.host import create_host
from tests.helpers import wait_for
from tests.multiprocess.test_ownership import lock_is_free


def context_of(host):
    return host.app.extensions["open1panel_ai"]


def relayed_tasks(host, auth_headers):
    return host.app.test_client().get("/api/v2/ai/tasks", headers=auth_headers)


def dangling_link(run, outside):
    (run / "owner.sock").symlink_to(outside / "nothing-here.sock")
    return lambda: (
        os.readlink(run / "owner.sock") == str(outside / "nothing-here.sock")
        and not (outside / "nothing-here.sock").exists()
    )


def link_to_a_file(run, outside):
    (outside / "precious").write_text("keep me")
    (run / "owner.sock").symlink_to(outside / "precious")
    return lambda: (run / "owner.sock").is_symlink() and (outside / "precious").read_text() == "keep me"


def regular_file(run, outside):
    (run / "owner.sock").write_text("not a socket")
    return lambda: (run / "owner.sock").read_text() == "not a socket"


def run_folder_is_a_link(run, outside):
    run.rmdir()
    (outside / "elsewhere").mkdir()
    (outside / "elsewhere").chmod(0o755)  # whatever the process's umask
    run.symlink_to(outside / "elsewhere")
    return lambda: (
        run.is_symlink()
        and list((outside / "elsewhere").iterdir()) == []
        and stat.S_IMODE((outside / "elsewhere").stat().st_mode) == 0o755
    )


@pytest.mark.parametrize("in_the_way", [dangling_link, link_to_a_file, regular_file, run_folder_is_a_link])
def test_what_is_in_the_owner_sockets_place_is_refused_left_alone_and_the_lock_given_up(
    multiprocess_env, data_dir, tmp_path, auth_headers, caplog, in_the_way
):
    run = data_dir / "run"
    run.mkdir(mode=0o700)
    outside = tmp_path / "outside"
    outside.mkdir()
    untouched = in_the_way(run, outside)

    host = create_host(Settings.from_environ())  # must return: no SystemExit, no exception
    try:
        context = context_of(host)
        assert "could not become the owner" in caplog.text
        assert "not the socket of an earlier owner" in caplog.text or "not a folder" in caplog.text
        assert not context.is_owner and lock_is_free(data_dir)
        answer = relayed_tasks(host, auth_headers)
        assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "owner_unavailable"
        assert untouched()
    finally:
        host.shutdown()
    assert untouched()  # stopping leaves it alone too


def test_a_stale_socket_of_an_owner_that_died_is_replaced(multiprocess_env, data_dir, auth_headers):
    run = data_dir / "run"
    run.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run / "owner.sock"))
    stale.close()  # the file stays, nobody listens: what a killed owner leaves
    host = create_host(Settings.from_environ())
    try:
        assert context_of(host).is_owner
        path = run / "owner.sock"
        assert path.is_socket() and stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://owner") as owner:
            assert owner.get("/api/v2/ai/tasks", headers=auth_headers).status_code == 200
    finally:
        host.shutdown()
    assert not (run / "owner.sock").exists()


def hold_lock(data_dir) -> int:
    """Another process's claim on the owner lock: a descriptor holding the flock."""
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def take_lock_when_free(data_dir) -> int | None:
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def test_a_takeover_that_meets_a_bad_socket_gives_up_and_the_next_owner_starts_its_work(
    multiprocess_env, data_dir, tmp_path, auth_headers, caplog
):
    multiprocess_env.setenv("OPEN1PANEL_AI_GPU_HISTORY_INTERVAL", "0.5")
    other = hold_lock(data_dir)
    hosts = []
    try:
        first = create_host(Settings.from_environ())
        hosts.append(first)
        assert not context_of(first).is_owner
        (data_dir / "run").mkdir(mode=0o700, exist_ok=True)
        (data_dir / "run" / "owner.sock").symlink_to(tmp_path / "gone.sock")
        os.close(other)  # the owner ends; the first panel takes the lock and meets the link
        other = None
        wait_for(lambda: "could not become the owner" in caplog.text, what="the failed takeover")
        # It gave the lock up (its thread did not die holding it) and relays.
        other = wait_for(lambda: take_lock_when_free(data_dir), what="the lock given up")
        assert not context_of(first).is_owner
        assert relayed_tasks(first, auth_headers).status_code == 503

        # A second panel waits for the lock; once the link is gone and the lock free, it takes
        # over, and the owner's start-up work runs in it.
        second = create_host(Settings.from_environ())
        hosts.append(second)
        started = threading.Event()
        context_of(second).when_owner(started.set)
        (data_dir / "run" / "owner.sock").unlink()
        os.close(other)
        other = None
        assert started.wait(10) and context_of(second).is_owner
        wait_for(
            lambda: context_of(second).store.query_one("SELECT count(*) AS n FROM gpu_history")["n"],
            what="the GPU history kept by the new owner",
        )
        # The panel that gave up relays to it.
        assert relayed_tasks(first, auth_headers).status_code == 200
        assert not context_of(first).is_owner
    finally:
        if other is not None:
            os.close(other)
        for host in hosts:
            host.shutdown()
