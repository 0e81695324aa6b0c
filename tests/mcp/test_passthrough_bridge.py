"""Bridge v2 (``python -m open1panel_ai.mcp.passthrough``) as a process: the same routes, token,
Host and Origin checks as the v1 bridge; the child started with exactly its argv, environment
and folder, its stderr logged; a dying child answering every request; streams resumed; bounded
memory; and no file descriptor or child left behind by many sessions.

Real parts: ``mcp-server-time`` from PyPI, small Python servers written here where a test needs
a server to misbehave, the official ``mcp`` client, and raw HTTP where the wire itself is tested.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import httpx
import httpx2
import mcp_types as types
import psutil
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from open1panel_ai.mcp import logfile
from tests.mcp.conftest import CHILD_ENV, Passthrough

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


@contextlib.asynccontextmanager
async def connect(
    path: str,
    bridge: Passthrough | None = None,
    command: list[str] | None = None,
    version: str | None = None,
    **callbacks,
):
    """An initialized official client session: ``path`` is ``stdio`` (``command`` directly),
    ``http`` (Streamable HTTP through ``bridge``) or ``sse``; ``version`` forces the revision."""
    async with contextlib.AsyncExitStack() as stack:
        if path == "stdio":
            streams = await stack.enter_async_context(
                stdio_client(StdioServerParameters(command=command[0], args=command[1:], env=CHILD_ENV))
            )
        elif path == "sse":
            streams = await stack.enter_async_context(sse_client(bridge.url("/sse"), headers=bridge.headers))
        else:
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=bridge.headers, timeout=30))
            streams = await stack.enter_async_context(streamable_http_client(bridge.url(), http_client=http))
        session = await stack.enter_async_context(ClientSession(*streams[:2], **callbacks))
        await initialize_at(session, version)
        yield session


async def initialize_at(session: ClientSession, version: str | None) -> types.InitializeResult:
    """``initialize`` offering ``version`` (the client's newest when None), as the client would."""
    if version is None:
        return await session.initialize()
    result = await session.send_request(
        types.InitializeRequest(
            params=types.InitializeRequestParams(
                protocol_version=version,
                capabilities=session._build_capabilities(version),
                client_info=types.Implementation(name="passthrough-tests", version="1"),
            )
        ),
        types.InitializeResult,
    )
    assert result.protocol_version == version
    session.adopt(result)
    await session.send_notification(types.InitializedNotification())
    return result


def rpc(method: str, params: dict | None = None, request_id=1) -> dict:
    message = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if request_id is not None:
        message["id"] = request_id
    return message


INITIALIZE = rpc(
    "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
)
ACCEPT = {"Accept": "application/json, text/event-stream"}


def raw_session(bridge: Passthrough, client: httpx.Client) -> dict[str, str]:
    """Initialize over raw HTTP; the headers that carry the session on."""
    answer = client.post(bridge.url(), json=INITIALIZE, headers={**bridge.headers, **ACCEPT})
    assert answer.status_code == 200, answer.text
    headers = {
        **bridge.headers,
        **ACCEPT,
        "Mcp-Session-Id": answer.headers["mcp-session-id"],
        "MCP-Protocol-Version": "2025-06-18",
    }
    assert (
        client.post(bridge.url(), json=rpc("notifications/initialized", request_id=None), headers=headers).status_code
        == 202
    )
    return headers


def script(tmp_path: Path, name: str, source: str) -> list[str]:
    """A small stdio MCP server written for one test, run with this Python."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return [sys.executable, str(path)]


#: A line-by-line stdio server: answers initialize, and each tools/call as its arguments say.
SCRIPTED_SERVER = """
    import json, os, sys, time
    def send(message):
        sys.stdout.write(json.dumps(message) + "\\n"); sys.stdout.flush()
    for line in sys.stdin:
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": ident, "result": {"protocolVersion": "2025-11-25",
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "scripted", "version": "1"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": ident, "result": {"tools": [
                  {"name": "anything", "inputSchema": {"type": "object"}}]}})
        elif method == "tools/call":
            args = message["params"].get("arguments") or {}
            if args.get("stderr"):
                sys.stderr.write(args["stderr"]); sys.stderr.flush()
            if args.get("env"):
                send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text",
                      "text": json.dumps({"env": dict(os.environ), "cwd": os.getcwd()})}]}})
            elif args.get("die"):
                os._exit(7)
            elif args.get("hang"):
                pass
            else:
                send({"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": "ok"}]}})
        elif method == "notifications/cancelled":  # noted, and answered late anyway
            cancelled = message["params"]["requestId"]
            sys.stderr.write(f"cancelled {cancelled}\\n"); sys.stderr.flush()
            send({"jsonrpc": "2.0", "id": cancelled, "result": {"content": [{"type": "text", "text": "late"}]}})
        elif ident is not None and method is not None:
            send({"jsonrpc": "2.0", "id": ident, "result": {}})
"""


# -- routes, token, Host and Origin: as the v1 bridge ---------------------------------------


def test_token_host_origin_and_healthz_are_checked_as_the_v1_bridge_does(passthrough):
    bridge = passthrough()
    base = bridge.url("")
    health = httpx.get(base + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"ok": True}
    for method, path in [("POST", "/mcp"), ("GET", "/sse"), ("POST", "/messages/?session_id=x"), ("GET", "/elsewhere")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = httpx.request(method, base + path, json={}, headers=headers, timeout=5)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.json() == {
                "error": {"code": "unauthorized", "message": "Send 'Authorization: Bearer <server token>'."}
            }
            assert refused.headers["www-authenticate"] == 'Bearer realm="mcp"'
    assert httpx.get(base + "/elsewhere", headers=bridge.headers, timeout=5).status_code == 404
    headers = {**bridge.headers, **ACCEPT}
    assert httpx.post(bridge.url(), json=INITIALIZE, headers=headers, timeout=5).status_code == 200
    evil = httpx.post(bridge.url(), json=INITIALIZE, headers={**headers, "Host": "evil.test"}, timeout=5)
    assert (evil.status_code, evil.text) == (421, "Invalid Host header")
    foreign = httpx.post(bridge.url(), json=INITIALIZE, headers={**headers, "Origin": "https://evil.test"}, timeout=5)
    assert (foreign.status_code, foreign.text) == (403, "Invalid Origin header")
    own = httpx.post(
        bridge.url(), json=INITIALIZE, headers={**headers, "Origin": f"http://127.0.0.1:{bridge.port}"}, timeout=5
    )
    assert own.status_code == 200
    text = httpx.post(
        bridge.url(), content=json.dumps(INITIALIZE), headers={**headers, "Content-Type": "text/plain"}, timeout=5
    )
    assert (text.status_code, text.text) == (400, "Invalid Content-Type header")
    with httpx.stream("GET", bridge.url("/sse"), headers={**bridge.headers, "Host": "evil.test"}, timeout=5) as sse:
        assert sse.status_code == 421
    put = httpx.put(bridge.url(), json=INITIALIZE, headers=headers, timeout=5)
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST, DELETE"


def test_a_host_bound_later_is_accepted_on_sighup_without_a_restart(passthrough):
    bridge = passthrough()
    headers = {**bridge.headers, **ACCEPT, "Host": "mcp.example.test"}
    assert httpx.post(bridge.url(), json=INITIALIZE, headers=headers, timeout=5).status_code == 421
    bridge.config_path.write_text(json.dumps({**bridge.config, "allowed_hosts": ["mcp.example.test"]}))
    os.kill(bridge.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while httpx.post(bridge.url(), json=INITIALIZE, headers=headers, timeout=5).status_code == 421:
        assert time.monotonic() < deadline, bridge.log()
        time.sleep(0.05)
    own = {**headers, "Origin": "https://mcp.example.test"}
    assert httpx.post(bridge.url(), json=INITIALIZE, headers=own, timeout=5).status_code == 200
    assert bridge.process.poll() is None
    assert "allowed hosts now: mcp.example.test" in bridge.log()


def test_the_bridge_serves_without_the_mcp_sdk_and_small(passthrough):
    bridge = passthrough()
    assert anyio.run(_time_in_utc, "http", bridge)
    with open(f"/proc/{bridge.process.pid}/maps") as maps:
        mapped = maps.read()
    assert "pydantic_core" not in mapped, "the SDK's pydantic core is loaded"
    modules = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['ssl'] = None; "
            "import open1panel_ai.mcp.passthrough.app; print(sorted(sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'mcp'" not in modules and "'pydantic'" not in modules and "'anyio'" not in modules
    rss = psutil.Process(bridge.process.pid).memory_info().rss / 2**20
    assert rss < 32, f"the bridge holds {rss:.1f} MiB"


async def _time_in_utc(path, bridge, version=None):
    async with connect(path, bridge, version=version) as session:
        result = await session.call_tool("get_current_time", {"timezone": "UTC"})
        return '"timezone": "UTC"' in result.content[0].text


@pytest.mark.parametrize("version", HANDSHAKE_VERSIONS)
def test_every_handshake_revision_is_served_on_both_transports(passthrough, version):
    bridge = passthrough()
    for path in ("http", "sse"):
        assert anyio.run(_time_in_utc, path, bridge, version), (path, version)


# -- the child: argv, environment, folder, stderr -------------------------------------------


def test_the_child_gets_exactly_the_configured_environment_and_folder(passthrough, tmp_path, monkeypatch):
    monkeypatch.setenv("OPEN1PANEL_AI_TOKEN", "x" * 40)  # the bridge's own environment
    folder = tmp_path / "work"
    folder.mkdir()
    env = {"PATH": os.defpath, "ONLY_THIS": "1"}
    bridge = passthrough(script(tmp_path, "scripted", SCRIPTED_SERVER), env=env, cwd=str(folder))

    async def run():
        async with connect("http", bridge) as session:
            result = await session.call_tool("anything", {"env": True})
            return json.loads(result.content[0].text)

    seen = anyio.run(run)
    assert {k: v for k, v in seen["env"].items() if k not in ("PWD", "LC_CTYPE")} == env
    assert seen["cwd"] == str(folder)


def test_child_stderr_is_logged_line_by_line_with_long_lines_cut(passthrough, tmp_path):
    bridge = passthrough(script(tmp_path, "scripted", SCRIPTED_SERVER))
    long_line = "x" * 20000

    async def run():
        async with connect("http", bridge) as session:
            await session.call_tool("anything", {"stderr": f"first line\nsecond line\n{long_line}\nlast"})
            await session.call_tool("anything", {"stderr": " words\n"})

    anyio.run(run)
    lines = [line.split(" ", 2)[2] for line in bridge.log().splitlines() if " child " in line]
    assert lines[:2] == ["first line", "second line"]
    assert lines[2] == "x" * 8192 + logfile.CUT_MARK
    assert lines[3] == "last words"


def test_a_program_that_cannot_run_is_reported_and_ends_the_bridge(tmp_path):
    bridge = Passthrough(tmp_path, ["/nonexistent/server"], wait=False)
    try:
        assert bridge.process.wait(10) == 1
        assert "the bridge stopped: cannot run '/nonexistent/server'" in bridge.log()
    finally:
        bridge.close()


# -- a child that dies, a client that cancels, a client that stops reading ------------------


@pytest.mark.parametrize("sessions", ["shared", "per_client"])
def test_a_child_killed_mid_request_answers_every_pending_request_with_an_error(passthrough, tmp_path, sessions):
    bridge = passthrough(script(tmp_path, "scripted", SCRIPTED_SERVER), sessions=sessions)

    async def run():
        async with connect("http", bridge) as session:
            outcomes = []

            async def hang():
                try:
                    await session.call_tool("anything", {"hang": True})
                except Exception as exc:  # noqa: BLE001 - the error is what is tested
                    outcomes.append(str(exc))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(hang)
                    group.start_soon(hang)
                    await anyio.sleep(0.3)
                    # The session's child; with per_client, the spare started after it lives on.
                    min(bridge.children(), key=lambda child: child.create_time()).kill()
            return outcomes

    outcomes = anyio.run(run)
    assert len(outcomes) == 2
    assert all("the MCP server process exited (status -9) before it answered" in text for text in outcomes)
    if sessions == "shared":
        assert bridge.process.wait(5) == 3  # the supervisor restarts it
        assert "the server process exited with status -9" in bridge.log()
    else:
        assert bridge.process.poll() is None  # only that session's server went
        assert anyio.run(_scripted_ok, bridge)


async def _scripted_ok(bridge):
    async with connect("http", bridge) as session:
        return (await session.call_tool("anything", {})).content[0].text == "ok"


def test_a_client_that_stops_reading_is_dropped_and_the_bridge_stays_small(passthrough, tmp_path):
    flood = script(
        tmp_path,
        "flood",
        """
        import json, sys
        for line in sys.stdin:
            message = json.loads(line)
            if message.get("method") == "initialize":
                print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "2025-11-25",
                      "capabilities": {"logging": {}}, "serverInfo": {"name": "flood", "version": "1"}}}), flush=True)
            elif message.get("method") == "notifications/initialized":
                text = "y" * 60000
                for n in range(2000):
                    print(json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                                      "params": {"level": "info", "data": text}}), flush=True)
    """,
    )
    bridge = passthrough(flood, max_unsent_bytes=1 << 20)
    with httpx.Client(timeout=10) as client:
        headers = raw_session(bridge, client)
        stuck = socket.create_connection(("127.0.0.1", bridge.port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(
            f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {headers['Authorization']}\r\n"
            f"Accept: text/event-stream\r\nMcp-Session-Id: {headers['Mcp-Session-Id']}\r\n\r\n".encode()
        )
        deadline = time.monotonic() + 20
        while "its client stopped reading" not in bridge.log():
            assert time.monotonic() < deadline, bridge.log()
            time.sleep(0.1)
        stuck.close()
        assert client.post(bridge.url(), json=rpc("ping"), headers=headers).status_code == 404
    rss = psutil.Process(bridge.process.pid).memory_info().rss / 2**20
    assert rss < 40, f"{rss:.0f} MiB after a client stopped reading"


# -- the wire: JSON or a stream, resumption, DELETE -----------------------------------------


def test_post_answers_json_then_delete_ends_the_session(passthrough):
    bridge = passthrough()
    with httpx.Client(timeout=10) as client:
        headers = raw_session(bridge, client)
        answer = client.post(bridge.url(), json=rpc("tools/list", request_id="a"), headers=headers)
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["id"] == "a" and answer.json()["result"]["tools"]
        batch = client.post(
            bridge.url(), json=[rpc("tools/list", request_id=7), rpc("ping", request_id=8)], headers=headers
        )
        assert sorted(item["id"] for item in batch.json()) == [7, 8]
        missing = client.post(bridge.url(), json=rpc("tools/list"), headers={**headers, "Mcp-Session-Id": "nope"})
        assert missing.status_code == 404
        unsupported = client.post(
            bridge.url(), json=rpc("tools/list"), headers={**headers, "MCP-Protocol-Version": "1999-01-01"}
        )
        assert unsupported.status_code == 400
        assert client.delete(bridge.url(), headers=headers).status_code == 200
        assert client.post(bridge.url(), json=rpc("tools/list"), headers=headers).status_code == 404


def test_a_thousand_sessions_leave_no_descriptor_or_child_behind(passthrough):
    bridge = passthrough()
    with httpx.Client(timeout=10) as client:
        raw_session(bridge, client)
        before = bridge.fds()
        children = {child.pid for child in bridge.children()}
        for _ in range(1000):
            headers = raw_session(bridge, client)
            assert client.delete(bridge.url(), headers=headers).status_code == 200
        with httpx.stream("GET", bridge.url("/sse"), headers=bridge.headers) as sse:
            assert sse.status_code == 200
    time.sleep(0.2)
    assert bridge.fds() <= before
    assert {child.pid for child in bridge.children()} == children


def _wait(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


def test_sessions_per_client_run_a_child_each_within_a_cap_and_reap_idle_ones(passthrough):
    bridge = passthrough(sessions="per_client", max_children=2, child_idle_timeout=3)
    _wait(lambda: len(bridge.children()) == 1, "a spare child started ahead")
    with httpx.Client(timeout=20) as client:
        first = raw_session(bridge, client)
        second = raw_session(bridge, client)
        _wait(lambda: len(bridge.children()) == 3, "a child for each session and a spare")
        third = client.post(bridge.url(), json=INITIALIZE, headers={**bridge.headers, **ACCEPT})
        assert third.status_code == 503 and "2 run" in third.json()["error"]["message"]
        assert client.delete(bridge.url(), headers=first).status_code == 200
        _wait(lambda: len(bridge.children()) == 2, "the ended session's child to stop")
        assert client.post(bridge.url(), json=rpc("ping"), headers=second).json()["result"] == {}
        _wait(lambda: len(bridge.children()) == 1, "the idle session's child to be reaped")
        assert client.post(bridge.url(), json=rpc("ping"), headers=second).status_code == 404
    assert "ended: idle for" in bridge.log()


def test_a_per_client_server_that_cannot_even_start_ends_the_bridge_with_its_reason(tmp_path):
    broken = script(tmp_path, "broken", "import sys; sys.stderr.write('GITHUB_TOKEN is not set\\n'); sys.exit(4)")
    bridge = Passthrough(tmp_path, broken, wait=False, sessions="per_client")
    try:
        assert bridge.process.wait(10) == 3
        log = bridge.log()
        assert "child GITHUB_TOKEN is not set" in log and "exited with status 4" in log
    finally:
        bridge.close()


#: Announces on ``tools/call``: a list change for everyone, and a ping it wants answered.
ANNOUNCING_SERVER = """
    import json, sys
    def send(message):
        sys.stdout.write(json.dumps(message) + "\\n"); sys.stdout.flush()
    pinged = None
    for line in sys.stdin:
        message = json.loads(line)
        method, ident = message.get("method"), message.get("id")
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": ident, "result": {"protocolVersion": "2025-11-25",
                  "capabilities": {"tools": {"listChanged": True}}, "serverInfo": {"name": "a", "version": "1"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": ident, "result": {"tools": [{"name": "announce",
                  "inputSchema": {"type": "object"}}]}})
        elif method == "tools/call":
            send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            send({"jsonrpc": "2.0", "id": "server-ping", "method": "ping"})
            pinged = ident
        elif ident == "server-ping":  # the answer to its ping: now the call is done
            text = "pong" if message.get("result") == {} else json.dumps(message)
            send({"jsonrpc": "2.0", "id": pinged, "result": {"content": [{"type": "text", "text": text}]}})
"""


def test_a_list_change_reaches_every_session_and_the_server_ping_is_answered(passthrough, tmp_path):
    bridge = passthrough(script(tmp_path, "announcing", ANNOUNCING_SERVER))

    async def run():
        seen = {"http": [], "sse": []}

        def recorder(path):
            async def record(message):
                if isinstance(message, types.ToolListChangedNotification):
                    seen[path].append(message.method)

            return record

        async with (
            connect("http", bridge, message_handler=recorder("http")) as one,
            connect("sse", bridge, message_handler=recorder("sse")),
        ):
            result = await one.call_tool("announce", {})
            with anyio.fail_after(5):
                while not (seen["http"] and seen["sse"]):
                    await anyio.sleep(0.02)
        return result.content[0].text, seen

    with httpx.Client(timeout=10) as client:
        quiet = raw_session(bridge, client)  # a session with no GET stream open yet
        text, seen = anyio.run(run)
        assert text == "pong"  # the bridge answered the shared child's ping itself
        assert seen == {"http": ["notifications/tools/list_changed"], "sse": ["notifications/tools/list_changed"]}
        # What came while it had no GET stream waits for one.
        with client.stream("GET", bridge.url(), headers=quiet) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: {"):
                    assert json.loads(line[6:])["method"] == "notifications/tools/list_changed"
                    break


@pytest.mark.parametrize("sessions", ["shared", "per_client"])
def test_a_cancel_reaches_the_server_and_its_late_answer_is_dropped(passthrough, tmp_path, sessions):
    bridge = passthrough(script(tmp_path, "scripted", SCRIPTED_SERVER), sessions=sessions)
    call = rpc("tools/call", {"name": "anything", "arguments": {"hang": True}}, request_id="slow")
    cancel = rpc("notifications/cancelled", {"requestId": "slow", "reason": "enough"}, None)
    with httpx.Client(timeout=10) as client, httpx.Client(timeout=10) as other:
        headers = raw_session(bridge, client)
        streamed: list[str] = []

        def listen():  # everything the session's GET stream carries
            with other.stream("GET", bridge.url(), headers=headers) as get:
                for line in get.iter_lines():
                    streamed.append(line)

        def cancel_soon():
            time.sleep(0.3)
            assert other.post(bridge.url(), json=cancel, headers=headers).status_code == 202

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        canceller = threading.Thread(target=cancel_soon)
        canceller.start()
        answer = client.post(bridge.url(), json=call, headers=headers)  # waits for its answer
        canceller.join()
        assert answer.json() == {
            "jsonrpc": "2.0",
            "id": "slow",
            "error": {"code": -32800, "message": "Request cancelled"},
        }
        _wait(lambda: "child cancelled" in bridge.log(), "the server to get the cancel")
        ping = client.post(bridge.url(), json=rpc("ping", request_id="after"), headers=headers)
        assert ping.json() == {"jsonrpc": "2.0", "id": "after", "result": {}}
        time.sleep(0.3)
        assert client.delete(bridge.url(), headers=headers).status_code == 200
        listener.join(5)
    assert not any("late" in line for line in streamed), streamed
    # The server saw its own id for the request: with a shared child, not the client's.
    seen = [line for line in bridge.log().splitlines() if "child cancelled" in line]
    assert seen[0].endswith("cancelled slow") == (sessions == "per_client")


def test_over_legacy_sse_a_cancelled_request_gets_no_answer_at_all(passthrough, tmp_path):
    bridge = passthrough(script(tmp_path, "scripted", SCRIPTED_SERVER))
    with httpx.Client(timeout=10) as client, client.stream("GET", bridge.url("/sse"), headers=bridge.headers) as sse:
        lines = sse.iter_lines()
        endpoint = next(line[6:] for line in lines if line.startswith("data: "))
        post_headers = {**bridge.headers, "Content-Type": "application/json"}

        def post(message):
            assert client.post(bridge.url(endpoint), json=message, headers=post_headers).status_code == 202

        def answers():
            for line in lines:
                if line.startswith("data: "):
                    yield json.loads(line[6:])

        received = answers()
        post(INITIALIZE)
        assert next(received)["result"]["serverInfo"]["name"] == "scripted"
        post(rpc("tools/call", {"name": "anything", "arguments": {"hang": True}}, request_id=5))
        post(rpc("notifications/cancelled", {"requestId": 5}, None))
        _wait(lambda: "child cancelled" in bridge.log(), "the server to get the cancel")
        post(rpc("ping", request_id=6))
        assert next(received) == {"jsonrpc": "2.0", "id": 6, "result": {}}  # and nothing for 5


def test_a_server_that_stops_reading_its_input_gets_no_more_than_the_limit(passthrough, tmp_path):
    deaf = script(
        tmp_path,
        "deaf",
        """
        import json, sys, time
        message = json.loads(sys.stdin.readline())
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "2025-11-25",
              "capabilities": {"tools": {}}, "serverInfo": {"name": "deaf", "version": "1"}}}), flush=True)
        time.sleep(60)  # and never reads again
    """,
    )
    bridge = passthrough(deaf, max_unsent_bytes=1 << 20)
    big = rpc("tools/call", {"name": "anything", "arguments": {"text": "z" * 700_000}})
    with httpx.Client(timeout=10) as client:
        headers = raw_session(bridge, client)
        statuses = []
        for number in range(4):
            try:
                statuses.append(
                    client.post(bridge.url(), json={**big, "id": number}, headers=headers, timeout=0.5).status_code
                )
            except httpx.ReadTimeout:
                statuses.append("waiting")
        assert statuses[:2] == ["waiting", "waiting"] and 503 in statuses, statuses
    assert "the MCP server has left" in bridge.log()
    assert psutil.Process(bridge.process.pid).memory_info().rss / 2**20 < 32


MODERN = "2026-07-28"


def modern_rpc(method: str, params: dict | None = None, request_id=1, meta: dict | None = None) -> dict:
    """A 2026-07-28 request: its revision, client info and capabilities in ``_meta``."""
    envelope = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
        **(meta or {}),
    }
    return rpc(method, {**(params or {}), "_meta": envelope}, request_id)


def modern_headers(bridge: Passthrough, method: str, name: str | None = None) -> dict[str, str]:
    headers = {**bridge.headers, **ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


@pytest.mark.parametrize("sessions", ["shared", "per_client"])
def test_2026_07_28_requests_are_served_without_handshake_or_session(passthrough, sessions):
    bridge = passthrough(sessions=sessions)
    with httpx.Client(timeout=20) as client:
        discover = client.post(
            bridge.url(), json=modern_rpc("server/discover"), headers=modern_headers(bridge, "server/discover")
        )
        assert discover.status_code == 200 and "mcp-session-id" not in discover.headers
        result = discover.json()["result"]
        assert MODERN in result["supportedVersions"] and "tools" in result["capabilities"]
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp-time"
        call = modern_rpc("tools/call", {"name": "get_current_time", "arguments": {"timezone": "UTC"}}, 7)
        answer = client.post(bridge.url(), json=call, headers=modern_headers(bridge, "tools/call", "get_current_time"))
        assert answer.status_code == 200 and "mcp-session-id" not in answer.headers
        assert answer.json()["id"] == 7 and answer.json()["result"]["resultType"] == "complete"
        assert '"timezone": "UTC"' in answer.json()["result"]["content"][0]["text"]
        # The envelope and its headers are checked as the revision asks.
        refused = client.post(bridge.url(), json=call, headers=modern_headers(bridge, "tools/call", "other_tool"))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32020
        refused = client.post(bridge.url(), json=call, headers=modern_headers(bridge, "tools/list"))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32020
        bare = rpc("tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}, 8)
        refused = client.post(bridge.url(), json=bare, headers=modern_headers(bridge, "tools/list"))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32602
        refused = client.post(bridge.url(), json=[call], headers=modern_headers(bridge, "tools/call"))
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32600
        notification = client.post(
            bridge.url(),
            json=modern_rpc("notifications/cancelled", {"requestId": 1}, None),
            headers=modern_headers(bridge, "notifications/cancelled"),
        )
        assert notification.status_code == 202
        assert client.get(bridge.url(), headers=modern_headers(bridge, "GET")).status_code == 405
        # A state the bridge never gave is refused, not taken for a new request.
        forged = modern_rpc(
            "tools/call",
            {
                "name": "get_current_time",
                "arguments": {"timezone": "UTC"},
                "inputResponses": {},
                "requestState": "bridge-00",
            },
            9,
        )
        refused = client.post(
            bridge.url(), json=forged, headers=modern_headers(bridge, "tools/call", "get_current_time")
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == -32602


@pytest.mark.parametrize("mode", ["auto", MODERN])
def test_the_official_client_speaks_2026_07_28_through_the_bridge(passthrough, mode):
    """The official high-level client probes ``server/discover`` (``auto``) or is pinned to
    2026-07-28, and calls the 2025-era child through the bridge at that revision."""
    bridge = passthrough()

    async def run():
        from mcp.client.client import Client

        async with (
            httpx2.AsyncClient(headers=bridge.headers) as http,
            Client(streamable_http_client(bridge.url(), http_client=http), mode=mode) as modern,
        ):
            result = await modern.call_tool("get_current_time", {"timezone": "UTC"})
            tools = await modern.list_tools()
            return modern.session.protocol_version, result.content[0].text, [t.name for t in tools.tools]

    version, text, tools = anyio.run(run)
    assert version == MODERN and '"timezone": "UTC"' in text
    assert tools == ["get_current_time", "convert_time"]


def test_a_remote_server_config_is_relayed_by_the_pass_through_itself(passthrough, tmp_path):
    inner = passthrough()
    outer = Passthrough(tmp_path, None, url=inner.url(), headers=inner.headers)
    try:
        assert anyio.run(_time_in_utc, "http", outer)
        assert anyio.run(_time_in_utc, "sse", outer)
        assert psutil.Process(outer.process.pid).cmdline()[1:3] == ["-m", "open1panel_ai.mcp.passthrough"]
        assert "open1panel_ai.mcp.bridge" not in outer.log()  # the SDK bridge never ran
        assert "upstream mcp-time" in outer.log() and not outer.children()
    finally:
        outer.close()
