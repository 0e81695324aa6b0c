"""MCP fixtures: quick supervision timings, real MCP servers from PyPI (and server-everything from
npm), the official client, bridges v2 started as the supervisor starts them, and the domain
tests' nginx for servers bound to a domain."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import httpx2
import psutil
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import free_port
from tests.domain import conftest as domain_fixtures
from tests.helpers import TIME_SERVER

BIN = Path(sys.executable).parent
GIT_SERVER = str(BIN / "mcp-server-git")
EVERYTHING_VERSION = "2026.8.31"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "open1panel-ai-tests" / "npm"
#: The child's whole environment in these tests (the bridge adds nothing to it).
CHILD_ENV = {"PATH": os.defpath, "LANG": "C.UTF-8"}


#: Restart delays of a fraction of a second instead of 5 s to 60 s, and a quick probe.
FAST = {
    "OPEN1PANEL_AI_MCP_BACKOFF": "0.2",
    "OPEN1PANEL_AI_MCP_BACKOFF_MAX": "0.8",
    "OPEN1PANEL_AI_MCP_TRIES": "3",
    "OPEN1PANEL_AI_MCP_STABLE": "30",
    "OPEN1PANEL_AI_MCP_PROBE_INTERVAL": "1",
    "OPEN1PANEL_AI_MCP_PROBE_TIMEOUT": "2",
    "OPEN1PANEL_AI_MCP_START_TIMEOUT": "30",
}


@pytest.fixture
def mcp_env(panel_env):
    for key, value in FAST.items():
        panel_env.setenv(key, value)
    return panel_env


@pytest.fixture
def mcp_host(mcp_env, make_host):
    return make_host()


@pytest.fixture
def mcp_api(mcp_host, auth_headers):
    client = mcp_host.app.test_client()

    def call(method, path, **kwargs):
        headers = {**auth_headers, **kwargs.pop("headers", {})}
        response = getattr(client, method)("/api/v2/ai/mcp" + path, headers=headers, **kwargs)
        return response.status_code, response.get_json()

    return call


def wait_status(api, server_id, wanted, timeout=30):
    """Poll until the server's status is one of ``wanted``; return the server."""
    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    deadline = time.monotonic() + timeout
    server = None
    while time.monotonic() < deadline:
        status, server = api("get", f"/servers/{server_id}")
        assert status == 200, server
        if server["status"] in wanted:
            return server
        time.sleep(0.1)
    raise AssertionError(f"never {wanted}: {server}")


def call_tool(url: str, token: str | None, tool: str, arguments: dict, transport: str = "streamable-http"):
    """Call one tool with the official ``mcp`` client; return the result's text."""
    return anyio.run(_call_tool, url, token, tool, arguments, transport)


async def _call_tool(url, token, tool, arguments, transport):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with anyio.fail_after(20):
        if transport == "sse":
            async with sse_client(url, headers=headers) as (read, write):
                return await _session_call(read, write, tool, arguments)
        http = httpx2.AsyncClient(headers=headers)
        async with http, streamable_http_client(url, http_client=http) as (read, write):
            return await _session_call(read, write, tool, arguments)


async def _session_call(read, write, tool, arguments):
    async with ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool(tool, arguments)
        assert not result.is_error, result
        return "".join(part.text for part in result.content)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0)
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def group_members(pgid: int) -> list[int]:
    """Every live process whose process group is ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().split(")")[-1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


#: nginx as the domain tests start it, for servers bound to a domain.
nginx = domain_fixtures.nginx


class Passthrough:
    """Bridge v2 around one server, started as the supervisor starts a bridge."""

    def __init__(
        self, folder: Path, command: list[str], env: dict[str, str] | None = None, wait: bool = True, **settings
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.token = secrets.token_urlsafe(32)
        self.log_path = folder / f"bridge-{self.port}.log"
        self.config = {
            "id": "t",
            "name": "t",
            "command": command,
            "env": CHILD_ENV if env is None else env,
            "cwd": None,
            "bind_host": "127.0.0.1",
            "port": self.port,
            "token": self.token,
            "transports": ["streamable-http", "sse"],
            "allowed_hosts": [],
            "log_file": str(self.log_path),
            **settings,
        }
        self.config_path = folder / f"bridge-{self.port}.json"
        self.config_path.write_text(json.dumps(self.config))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "open1panel_ai.mcp.passthrough", str(self.config_path)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the bridge exited ({self.process.returncode}): {self.log()}")
            try:
                if httpx.get(self.url("/healthz"), timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"the bridge never answered: {self.log()}")

    def url(self, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process.stderr.close()


@pytest.fixture
def passthrough(tmp_path):
    """Start bridges v2 (``passthrough(command, **settings)``); all are stopped afterwards."""
    started: list[Passthrough] = []

    def start(command=None, **settings) -> Passthrough:
        bridge = Passthrough(tmp_path, command or TIME_SERVER, **settings)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.close()


@pytest.fixture(scope="session")
def everything() -> list[str]:
    """The argv of server-everything, installed once into a cache folder (the first run
    downloads it from npm; without the registry the tests are skipped, not failed)."""
    entry = CACHE / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    if not entry.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(CACHE),
                    f"@modelcontextprotocol/server-everything@{EVERYTHING_VERSION}",
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            if any(
                word in output for word in (b"ENOTFOUND", b"EAI_AGAIN", b"ECONNREFUSED", b"ETIMEDOUT", b"network")
            ) or isinstance(exc, subprocess.TimeoutExpired):
                pytest.skip(f"the npm registry cannot be reached: {output[-300:]!r}")
            raise
    return [node, str(entry), "stdio"]
