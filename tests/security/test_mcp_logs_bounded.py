"""Issue 19, finding 6: a server's logs are bounded, whatever the server writes.

One 30 MB stderr line from an MCP server broke everything at once: the rotated log file held
30 MB (against 1 MiB plus two rotations), ``GET /logs?tail=`` answered 30 MB, the bridge spent
6 s of CPU re-splitting a growing buffer, and the status carried whatever it quoted. Now every
line written to the log is cut at :data:`logfile.LINE_LIMIT` bytes and marked, the cap holds in
bytes, ``tail`` and ``last_error`` are bounded, splitting is linear, and the live follower
keeps the lines written just before a rotation.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time

import anyio
import psutil
import pytest
import socketio

from open1panel_ai.mcp import bridge, logfile
from open1panel_ai.mcp.supervisor import Supervised, Timing
from tests.conftest import TOKEN
from tests.helpers import wait_for

LONG = 30_000_000
#: A server that writes one 30 MB line between two short ones, then waits; on SIGTERM it says
#: its last words and exits 1. It needs no file of the test's, so it runs in any sandbox.
LOUD_SERVER = f"""
import signal, sys, time
def leave(*_):
    sys.stderr.write("the last words\\n")
    sys.stderr.flush()
    sys.exit(1)
signal.signal(signal.SIGTERM, leave)
sys.stderr.write("before the long line\\n")
sys.stderr.write("x" * {LONG} + "\\n")
sys.stderr.write("after the long line\\n")
sys.stderr.flush()
while True:
    time.sleep(1)
"""
#: What the bridge may cost, start included (about 0.6 s here); the quadratic split took 6 s.
BRIDGE_CPU_SECONDS = 2.0
#: What one ``tail`` answers at most, as docs/mcp.md says (lines, newlines counted).
TAIL_BYTES = 512 * 1024
#: An ``mcp`` event or ``GET /mcp/servers`` carries a short reason, never what a server wrote.
SMALL = 16 * 1024


def log_files(data_dir, server_id):
    return sorted((data_dir / "mcp" / "logs").glob(f"{server_id}.log*"))


def is_cut(line: str) -> bool:
    return line.endswith(logfile.CUT_MARK) and len(line.encode()) <= logfile.LINE_LIMIT + 200


@pytest.mark.server
def test_one_30_mb_stderr_line_leaves_the_log_the_api_the_status_and_the_bridge_bounded(served, tmp_path):
    panel = served(env={"OPEN1PANEL_AI_TOKEN": TOKEN})
    events = {"mcp": [], "mcp_log": []}
    client = socketio.Client(reconnection=False)
    client.on("mcp", lambda data: events["mcp"].append(json.dumps(data)), namespace="/ai")
    client.on("mcp_log", lambda data: events["mcp_log"].append(json.dumps(data)), namespace="/ai")
    client.connect(panel.url, namespaces=["/ai"], transports=["websocket"], auth={"token": TOKEN})
    try:
        assert client.call("subscribe", {"topic": "mcp"}, namespace="/ai", timeout=5)["ok"]
        server = panel.api(
            "POST",
            "/mcp/servers",
            json={
                "name": "loud",
                "command": [sys.executable, "-c", LOUD_SERVER],
                "restart_policy": "never",
                "autostart": False,
            },
        ).json()
        server_id = server["id"]
        topic = f"mcp:{server_id}:logs"
        assert client.call("subscribe", {"topic": topic}, namespace="/ai", timeout=5)["ok"]
        time.sleep(0.6)  # the follower starts at the log's end: let it start before the server
        assert panel.api("POST", f"/mcp/servers/{server_id}/start").status_code == 200

        def logged():
            lines = panel.api("GET", f"/mcp/servers/{server_id}/logs?tail=5000").json()["lines"]
            return lines if any(line.endswith("after the long line") for line in lines) else None

        lines = wait_for(logged, timeout=60, interval=0.2, what="the lines after the long one")
        # The bridge split 30 MB in linear time.
        pid = panel.api("GET", f"/mcp/servers/{server_id}").json()["pid"]
        bridge_process = psutil.Process(pid)
        cpu = bridge_process.cpu_times()
        assert cpu.user + cpu.system < BRIDGE_CPU_SECONDS, cpu
        # The long line is kept as its first 8 KiB, marked as cut; the tail is small.
        long_lines = [line for line in lines if "xxxxxxxx" in line]
        assert len(long_lines) == 1 and is_cut(long_lines[0]), [line[:100] for line in long_lines]
        response = panel.api("GET", f"/mcp/servers/{server_id}/logs?tail=5000")
        assert len(response.content) <= TAIL_BYTES + 64 * 1024
        # The log files hold 1 MiB at most each, and never more than 1 MiB plus two rotations.
        files = log_files(panel.data_dir, server_id)
        assert all(path.stat().st_size <= logfile.MAX_BYTES for path in files), files
        assert sum(path.stat().st_size for path in files) <= (logfile.BACKUPS + 1) * logfile.MAX_BYTES

        # The server goes down: the status quotes its last lines, cut, and stays small.
        child = next(
            p for p in bridge_process.children(recursive=True) if p.cmdline()[1:3] == ["-c", LOUD_SERVER]
        )  # the server itself, in any sandbox
        child.send_signal(signal.SIGTERM)
        down = wait_for(
            lambda: (s := panel.api("GET", f"/mcp/servers/{server_id}").json())["status"] == "error" and s,
            timeout=30,
            what="the server's error",
        )
        assert "the last words" in down["last_error"] and "x" * 100 in down["last_error"]
        assert len(down["last_error"].encode()) <= 2048
        assert len(panel.api("GET", "/mcp/servers").content) <= SMALL
        wait_for(
            lambda: any(json.loads(event).get("status") == "error" for event in events["mcp"]),
            timeout=10,
            what="the mcp event of the error",
        )
        assert max(len(event.encode()) for event in events["mcp"]) <= SMALL
        # The live follower sent every line, the long one cut, and each event is bounded.
        wait_for(
            lambda: any("the last words" in event for event in events["mcp_log"]),
            timeout=10,
            what="the last words, live",
        )
        live = [line for event in events["mcp_log"] for line in json.loads(event)["lines"]]
        said = [line.split(" ", 2)[2] for line in live if line.split(" ", 2)[1:2] == ["child"]]
        shown = [line[:120] for line in live]
        assert said[:2] == ["before the long line", said[1]] and is_cut(said[1]), shown
        assert said[2:] == ["after the long line", "the last words"], shown
        assert max(len(event.encode()) for event in events["mcp_log"]) <= logfile.EVENT_BYTES + 64 * 1024
    finally:
        client.disconnect()


async def _chunks(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_the_bridge_splits_a_30_mb_line_in_linear_time_and_logs_it_cut():
    logger = logging.getLogger("test-child-lines")
    handler = Lines()
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    data = b"first\n" + b"y" * LONG + b"\nsecond\r\n" + "tail without newline é".encode()
    started = time.process_time()
    anyio.run(bridge._log_lines, _chunks(data, 65536), logger)
    assert time.process_time() - started < 1.0
    first, long_line, second, last = handler.lines
    assert (first, second, last) == ("first", "second", "tail without newline é")
    assert long_line == "y" * logfile.LINE_LIMIT + logfile.CUT_MARK


def test_the_live_follower_keeps_the_lines_written_just_before_a_rotation(tmp_path):
    path = tmp_path / "s.log"
    path.write_text("old\n")
    follower = logfile.Follower(path)
    with open(path, "a") as file:
        file.write("one\n")
    assert follower.read_new() == ["one"]
    # Written, then rotated before the next read: nothing is lost, and the order holds.
    with open(path, "a") as file:
        file.write("two\nthree\n")
    path.rename(tmp_path / "s.log.1")
    path.write_text("four\n")
    assert follower.read_new() == ["two", "three", "four"]
    # Two rotations between reads: the file in between is read whole.
    with open(path, "a") as file:
        file.write("five\n")
    (tmp_path / "s.log.1").rename(tmp_path / "s.log.2")
    path.rename(tmp_path / "s.log.1")
    path.write_text("six\n")
    (tmp_path / "s.log.1").rename(tmp_path / "s.log.2")
    path.rename(tmp_path / "s.log.1")
    path.write_text("seven\n")
    assert follower.read_new() == ["five", "six", "seven"]
    follower.close()


def test_tail_is_bounded_in_bytes_over_a_log_written_before_the_bound(api, data_dir):
    status, server = api("post", "/mcp/servers", json={"name": "old", "command": ["true"], "autostart": False})
    assert status == 201
    logs = data_dir / "mcp" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{server['id']}.log.1").write_bytes(b"older\n" * 1000)
    (logs / f"{server['id']}.log").write_bytes(b"z" * LONG + b"\n" + b"a short line\n" * 3 + b"w" * 50_000)
    status, body = api("get", f"/mcp/servers/{server['id']}/logs?tail=5000")
    assert status == 200
    lines = body["lines"]
    assert sum(len(line.encode()) + 1 for line in lines) <= TAIL_BYTES
    assert lines[-4:-1] == ["a short line"] * 3
    assert is_cut(lines[-1]) and lines[-1].startswith("w" * 100)
    assert is_cut(lines[-5]) and lines[-5].startswith("z" * 100)
    assert lines[:-5] == ["older"] * len(lines[:-5]) and len(lines[:-5]) >= 900
    # Many long lines: the byte bound comes before the line count, keeping the newest.
    (logs / f"{server['id']}.log").write_bytes(b"".join(b"%06d " % n + b"q" * 9000 + b"\n" for n in range(500)))
    lines = api("get", f"/mcp/servers/{server['id']}/logs?tail=5000")[1]["lines"]
    assert sum(len(line.encode()) + 1 for line in lines) <= TAIL_BYTES
    assert lines[-1].startswith("000499 ") and len(lines) < 500
    assert [int(line[:6]) for line in lines] == list(range(500 - len(lines), 500))


def test_the_cap_holds_in_bytes_for_every_writer_and_the_status_quotes_little(tmp_path):
    """The supervisor's own writes (notes, and what the bridge process prints on its stdout and
    stderr) are cut and rotated like the bridge's lines. Here the "bridge" is a program that
    prints 30 MB on stderr and fails."""
    log_path = tmp_path / "s.log"
    for n in range(40_000):
        logfile.note(log_path, f"supervisor: note {n:05d} " + "n" * 100)
    files = sorted(tmp_path.glob("s.log*"))
    assert [path.name for path in files if not path.name.endswith(".lock")] == ["s.log", "s.log.1", "s.log.2"]
    assert all(path.stat().st_size <= logfile.MAX_BYTES for path in files)
    assert logfile.tail(log_path, 1)[0].split(" ", 1)[1].startswith("supervisor: note 39999 ")
    logfile.note(log_path, "supervisor: " + "m" * LONG)
    assert is_cut(logfile.tail(log_path, 1)[0])

    script = f"import sys; sys.stderr.write('v' * {LONG} + '\\nthe end\\n'); sys.exit(3)"
    changes = []
    supervised = Supervised(
        {
            "id": "abc",
            "name": "loud",
            "command": None,
            "url": "http://127.0.0.1:9/mcp",
            "bind_host": "127.0.0.1",
            "port": 9,
            "token": "t",
            "transports": ["streamable-http"],
            "restart_policy": "never",
        },
        [sys.executable, "-c", script],
        tmp_path / "abc.json",
        log_path,
        Timing(),
        changes.append,
    )
    supervised.start()
    wait_for(lambda: supervised.state()["status"] == "error", timeout=30, what="the error")
    files = sorted(path for path in tmp_path.glob("s.log*") if not path.name.endswith(".lock"))
    assert all(path.stat().st_size <= logfile.MAX_BYTES for path in files)
    tail = logfile.tail(log_path, 50)
    assert "the end" in tail and sum(is_cut(line) and line.startswith("vvvv") for line in tail) == 1
    assert len(str(supervised.state()["last_error"]).encode()) <= 2048
    supervised.stop()
