"""The bridge against direct stdio: ``tools/call`` round trips and the memory a server costs.

The official ``mcp`` client calls ``get_current_time`` on ``mcp-server-time``: first directly
over stdio, then through our bridge over Streamable HTTP and over SSE. Each path gets 300
sequential calls (p50 / p99), then 16 concurrent sessions making 50 calls each (calls per
second, p50 / p99), in three interleaved rounds whose medians are shown. Direct stdio with 16
sessions means 16 children, one per session; the bridge serves all 16 sessions from one
child. Results are ratios against direct stdio measured in the same run, so the machine's
speed cancels out. Targets (``reference/mcp.md``): at most 2 ms added at p50, at least 65 % of
direct throughput with 16 sessions, and bridge memory no higher than mcp-proxy's 54 MiB.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
import httpx2
import psutil
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

SERVER = [str(Path(sys.executable).parent / "mcp-server-time"), "--local-timezone", "UTC"]
SEQUENTIAL = 300
SESSIONS = 16
CALLS_PER_SESSION = 50
ARGUMENTS = {"timezone": "UTC"}
PATHS = ("stdio", "streamable-http", "sse")
#: Each figure is the median of this many interleaved rounds.
ROUNDS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Bridge:
    """Our bridge around one ``mcp-server-time``, started as the supervisor starts it."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.token = secrets.token_urlsafe(32)
        config = {"id": "bench", "name": "bench", "command": SERVER, "env": {}, "bind_host": "127.0.0.1",
                  "port": self.port, "token": self.token, "transports": ["streamable-http", "sse"],
                  "allowed_hosts": [], "log_file": str(folder / "bench.log")}
        path = folder / "bench.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen([sys.executable, "-m", "open1panel_ai.mcp.bridge", str(path)],
                                        start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the bridge did not start")

    def memory(self) -> tuple[float, float]:
        """RSS in MiB of the bridge alone and of its child."""
        bridge = psutil.Process(self.process.pid)
        children = bridge.children(recursive=True)
        return (bridge.memory_info().rss / 2**20, sum(c.memory_info().rss for c in children) / 2**20)

    def close(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


class _Start:
    """Holds every session at the line until all are connected, so setup is not timed."""

    def __init__(self, sessions: int) -> None:
        self.waiting = sessions
        self.go = anyio.Event()
        self.at = 0.0
        self.last_answer = 0.0

    async def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.at = time.perf_counter()
            self.go.set()
        await self.go.wait()


async def _calls(open_session, count: int, latencies: list[float], start: _Start | None = None) -> None:
    async with open_session() as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("get_current_time", ARGUMENTS)  # warm up
        if start is not None:
            await start.ready()
        for _ in range(count):
            started = time.perf_counter()
            await session.call_tool("get_current_time", ARGUMENTS)
            answered = time.perf_counter()
            latencies.append((answered - started) * 1000)
            if start is not None:
                start.last_answer = max(start.last_answer, answered)


def _opener(path: str, bridge: Bridge | None):
    headers = {"Authorization": f"Bearer {bridge.token}"} if bridge else {}
    if path == "stdio":
        return lambda: stdio_client(StdioServerParameters(command=SERVER[0], args=SERVER[1:]))
    if path == "sse":
        return lambda: sse_client(f"http://127.0.0.1:{bridge.port}/sse", headers=headers)

    class Streamable:
        async def __aenter__(self):
            self.http = httpx2.AsyncClient(headers=headers)
            self.inner = streamable_http_client(f"http://127.0.0.1:{bridge.port}/mcp", http_client=self.http)
            return await self.inner.__aenter__()

        async def __aexit__(self, *exc):
            await self.inner.__aexit__(*exc)
            await self.http.aclose()

    return Streamable


async def _measure(open_session) -> dict[str, float]:
    sequential: list[float] = []
    await _calls(open_session, SEQUENTIAL, sequential)
    concurrent: list[float] = []
    start = _Start(SESSIONS)
    async with anyio.create_task_group() as group:
        for _ in range(SESSIONS):
            group.start_soon(_calls, open_session, CALLS_PER_SESSION, concurrent, start)
    # Sessions close one after another; the clock stops when the last call is answered.
    elapsed = max(start.last_answer, start.at + 1e-9) - start.at
    return {"p50": statistics.median(sequential), "p99": _percentile(sequential, 0.99),
            "rate": len(concurrent) / elapsed, "c_p50": statistics.median(concurrent),
            "c_p99": _percentile(concurrent, 0.99)}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        bridge = Bridge(Path(folder))
        try:
            rounds = {path: [] for path in PATHS}
            for _ in range(ROUNDS):  # interleaved, so a busy moment hits every path alike
                for path in PATHS:
                    rounds[path].append(anyio.run(_measure, _opener(path, None if path == "stdio" else bridge)))
            results = {path: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                       for path, runs in rounds.items()}
            bridge_mib, child_mib = bridge.memory()
        finally:
            bridge.close()
    direct = results["stdio"]
    print(f"{'path':<17} {'seq p50':>8} {'seq p99':>8} {'16x calls/s':>12} {'16x p50':>8} {'16x p99':>8}"
          f" {'added p50':>10} {'throughput':>11}")
    for path, r in results.items():
        print(f"{path:<17} {r['p50']:>6.2f}ms {r['p99']:>6.2f}ms {r['rate']:>12.0f} {r['c_p50']:>6.1f}ms "
              f"{r['c_p99']:>6.1f}ms {r['p50'] - direct['p50']:>+8.2f}ms {r['rate'] / direct['rate']:>10.0%}")
    print(f"memory per managed server: bridge {bridge_mib:.0f} MiB RSS + the server itself {child_mib:.0f} MiB")
