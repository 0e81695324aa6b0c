"""Bridge v2 in front of a remote Streamable HTTP server relays as losslessly as in front of a child.

``@modelcontextprotocol/server-everything`` runs in its ``streamableHttp`` mode as the remote
server. The official client talks to it directly over HTTP, then through the bridge (a ``url``
config) over Streamable HTTP and legacy SSE, with ``sessions: shared`` and ``per_client``, and
what it observes is compared, as in :mod:`tests.mcp.test_passthrough_fidelity`: progress,
sampling, elicitation, roots, logging, ``list_changed``, resource updates and cancellation all
cross the remote hop too. A 2026-07-28 client sees the same through it as well.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import anyio
import httpx
import pytest

from tests.conftest import free_port
from tests.mcp.conftest import Passthrough
from tests.mcp.test_passthrough_fidelity import ERA_INDEPENDENT, observe, observe_modern

pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


class Remote:
    """server-everything over Streamable HTTP, as a client reaches it with no bridge between."""

    def __init__(self, argv: list[str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*argv[:-1], "streamableHttp"],
            env={**os.environ, "PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "server-everything exited"
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url("/nothing"), timeout=1)
                return
            time.sleep(0.1)
        raise AssertionError("server-everything never listened")

    def url(self, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    headers: dict[str, str] = {}

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


@pytest.fixture
def remote(everything):
    server = Remote(everything)
    yield server
    server.close()


def through(tmp_path, remote: Remote, **settings) -> Passthrough:
    return Passthrough(tmp_path, None, url=remote.url(), headers={"X-Upstream": "kept"}, **settings)


def test_a_remote_server_observes_the_same_directly_and_through_the_bridge(tmp_path, remote):
    direct = anyio.run(observe, "http", remote)
    assert direct["progress"][0] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert direct["cancel"] == (True, True) and direct["list_changed"] and direct["updates"]
    for sessions, path in (("shared", "http"), ("shared", "sse"), ("per_client", "http")):
        bridge = through(tmp_path, remote, sessions=sessions)
        try:
            assert anyio.run(observe, path, bridge) == direct, (sessions, path)
            assert not bridge.children(), "a remote upstream runs no process"
        finally:
            bridge.close()


def test_a_2026_07_28_client_observes_a_remote_server_the_same(tmp_path, remote):
    direct = anyio.run(observe, "http", remote)
    bridge = through(tmp_path, remote)
    try:
        modern = anyio.run(observe_modern, bridge, True)
    finally:
        bridge.close()
    assert modern["version"] == "2026-07-28"
    assert {key: modern[key] for key in ERA_INDEPENDENT} == {key: direct[key] for key in ERA_INDEPENDENT}


def test_a_remote_server_that_refuses_the_bridge_ends_it_with_the_status_in_its_log(tmp_path, passthrough):
    upstream = passthrough()  # a bridge in front of mcp-server-time, with a token of its own
    secret_url = f"{upstream.url()}?api_key=k3y-s3cret"
    bridge = Passthrough(tmp_path, None, url=secret_url, headers={"Authorization": "Bearer wrong"}, wait=False)
    try:
        assert bridge.process.wait(30) == 3
        log = bridge.log()
        assert "the remote server answered 401 to POST" in log and "the remote server is gone" in log
        assert "s3cret" not in log and "api_key=***" not in log and "?***" in log
    finally:
        bridge.close()
