"""MCP fixtures: quick supervision timings, real MCP servers from PyPI, the official client."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

BIN = Path(sys.executable).parent
GIT_SERVER = str(BIN / "mcp-server-git")

#: Restart delays of a fraction of a second instead of 5 s to 60 s, and a quick probe.
FAST = {"OPEN1PANEL_AI_MCP_BACKOFF": "0.2", "OPEN1PANEL_AI_MCP_BACKOFF_MAX": "0.8",
        "OPEN1PANEL_AI_MCP_TRIES": "3", "OPEN1PANEL_AI_MCP_STABLE": "30",
        "OPEN1PANEL_AI_MCP_PROBE_INTERVAL": "1", "OPEN1PANEL_AI_MCP_PROBE_TIMEOUT": "2",
        "OPEN1PANEL_AI_MCP_START_TIMEOUT": "30"}


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
