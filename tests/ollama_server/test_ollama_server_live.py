"""The server page's live log and state: followed only while somebody is subscribed, the
follower (a real process for ``journalctl --follow``) stopped when the last one leaves, and
bounded in line length and rate whatever the server writes."""

from __future__ import annotations

import os
import sys
import threading

import psutil

from open1panel_ai.features import Topic
from open1panel_ai.ollama.server import live
from open1panel_ai.ollama.server.live import CommandFollower, FileFollower, ServerLive
from open1panel_ai.ollama.server.systemd import SystemdServer
from open1panel_ai.realtime import Realtime
from tests.helpers import wait_for


class Emitted:
    """The Socket.IO server's ``emit``, recorded: what a subscribed page would receive."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def emit(self, event, payload, namespace=None, to=None, ignore_queue=False):
        with self.lock:
            self.events.append((event, payload, list(to or []), ignore_queue))

    def of(self, event):
        with self.lock:
            return [payload for name, payload, _, _ in self.events if name == event]


def realtime_of(emitted):
    return Realtime(
        emitted, [Topic("ollama:server", "ollama:server"), Topic("ollama:server:logs", "ollama:server:logs")]
    )


def program(tmp_path, body):
    """A small real program standing in for ``journalctl --follow``: it writes its pid, then
    runs ``body`` (Python) with ``out`` as its binary stdout."""
    script = tmp_path / "follow.py"
    script.write_text(
        "import os, sys, time\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "out = sys.stdout.buffer\n" + body,
        encoding="utf-8",
    )
    return [sys.executable, str(script)]


class Provider:
    """A server provider whose log is a command's output, as systemd's is."""

    def __init__(self, argv):
        self.argv = argv

    def follow_command(self):
        return self.argv

    def state(self):
        return {"status": "running", "pid": 1, "since": None, "restarts": 0, "last_error": None}


def test_the_journal_is_followed_only_while_somebody_listens(tmp_path):
    emitted = Emitted()
    realtime = realtime_of(emitted)
    argv = program(
        tmp_path, "n = 0\nwhile True:\n    n += 1\n    out.write(b'line %d\\n' % n); out.flush(); time.sleep(0.05)\n"
    )
    server_live = ServerLive(realtime, lambda: Provider(argv))
    realtime.subscribed("page-1", "ollama:server:logs")
    realtime.subscribed("page-2", "ollama:server:logs")
    wait_for(lambda: len(emitted.of("ollama_server_log")) >= 2, what="log lines pushed")
    pid_file = tmp_path / "pid"
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the pid"))
    lines = [line for event in emitted.of("ollama_server_log") for line in event["lines"]]
    assert lines[:2] == ["line 1", "line 2"]
    assert all(
        to == ["ollama:server:logs"] and local for name, _, to, local in emitted.events if name == "ollama_server_log"
    )
    realtime.unsubscribed("page-1", "ollama:server:logs")
    assert server_live.following() and psutil.pid_exists(pid)  # one page still listens
    realtime.disconnected("page-2")
    assert not server_live.following()
    wait_for(
        lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
        what="journalctl --follow ended",
    )
    server_live.close()


def test_a_flood_is_cut_to_bounded_lines_and_rate(tmp_path):
    argv = program(
        tmp_path,
        "out.write(b'x' * 100000 + b'\\n')\n"
        "out.write(b'a \\x1b[31mred\\x1b[0m word\\n')\n"
        "out.write(b''.join(b'flood %d\\n' % n for n in range(5000)))\n"
        "out.flush(); time.sleep(30)\n",
    )
    follower = CommandFollower(argv)
    per_tick = int(live.MAX_LINES_PER_SECOND * live.TICK)
    try:
        wait_for(lambda: follower.skipped == 5002 - per_tick, what="the flood read")
        lines = follower.read_new()
        assert len(lines) == per_tick and lines[-1] == "flood 4999"  # the newest are kept
    finally:
        follower.close()
    assert not psutil.pid_exists(follower.pid)
    cut = live._Lines().feed(b"x" * 100000 + b"\n" + b"a \x1b[31mred\x1b[0m word\n")
    assert len(cut[0]) == live.LINE_LIMIT and cut[1] == "a \ufffd[31mred\ufffd[0m word"


def test_a_log_file_is_tailed_across_a_rotation(tmp_path):
    path = tmp_path / "ollama.log"
    path.write_text("old line\n", encoding="utf-8")
    follower = FileFollower(path)
    try:
        assert follower.read_new() == []  # only what comes after
        with path.open("a", encoding="utf-8") as log:
            log.write("new line\nhalf")
        assert follower.read_new() == ["new line"]
        with path.open("a", encoding="utf-8") as log:
            log.write(" a line\nlast before rotating\n")
        os.replace(path, tmp_path / "ollama.log.1")
        path.write_text("first after rotating\n", encoding="utf-8")
        assert follower.read_new() == ["half a line", "last before rotating", "first after rotating"]
    finally:
        follower.close()


def test_the_state_is_pushed_when_it_changes(tmp_path):
    emitted = Emitted()
    realtime = realtime_of(emitted)
    states = [{"status": "starting", "pid": 7, "since": None, "restarts": 0, "last_error": None}]

    class Changing:
        def state(self):
            return dict(states[-1])

    server_live = ServerLive(realtime, Changing)
    realtime.subscribed("page", "ollama:server")
    wait_for(lambda: emitted.of("ollama_server"), what="the first state")
    states.append({**states[-1], "status": "running"})
    server_live.wake()
    wait_for(lambda: len(emitted.of("ollama_server")) == 2, what="the new state")
    assert [e["state"]["status"] for e in emitted.of("ollama_server")] == ["starting", "running"]
    realtime.unsubscribed("page", "ollama:server")
    wait_for(lambda: not server_live._stops, what="the state watch stopped")
    server_live.close()


def test_systemd_follows_its_unit_journal_with_an_argv():
    provider = SystemdServer({"ollama_systemd_unit": "ollama.service"}, runner=lambda argv: None)
    assert provider.follow_command() == [
        "journalctl",
        "-u",
        "ollama.service",
        "--follow",
        "--lines=0",
        "--no-pager",
        "-o",
        "short-iso",
    ]
