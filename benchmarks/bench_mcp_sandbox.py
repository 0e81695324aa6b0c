"""What the MCP sandbox costs: start time, memory and ``tools/call`` latency of the same
``mcp-server-time`` started as its sandbox starts it (bubblewrap, its own uid, limits) and as
it is (the baseline), in the same run, over stdio with raw JSON-RPC.

Run: ``python -m benchmarks mcp`` (with the bridge's benchmark) or ``python -m benchmarks
mcp_sandbox``. Needs root and bubblewrap for the sandboxed path; without them it says so.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from open1panel_ai.mcp import sandbox

SERVER = [str(Path(sys.executable).parent / "mcp-server-time"), "--local-timezone", "UTC"]
STARTS = 5
CALLS = 300


class Child:
    """One stdio server, spoken to line by line."""

    def __init__(self, argv: list[str], env: dict[str, str] | None) -> None:
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.next_id = 0

    def ask(self, method: str, params: dict) -> dict:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()
        while True:
            answer = json.loads(self.process.stdout.readline())
            if answer.get("id") == self.next_id:
                return answer

    def initialize(self) -> None:
        self.ask(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        )
        self.process.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
        self.process.stdin.flush()

    def rss(self) -> int:
        """The resident memory of the whole tree (bubblewrap, the server and what it started)."""
        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(argv: list[str], env: dict[str, str] | None) -> dict[str, float]:
    starts = []
    for _ in range(STARTS):
        began = time.perf_counter()
        child = Child(argv, env)
        child.initialize()
        starts.append(time.perf_counter() - began)
        child.close()
    child = Child(argv, env)
    child.initialize()
    call = {"name": "get_current_time", "arguments": {"timezone": "UTC"}}
    for _ in range(20):
        child.ask("tools/call", call)
    latencies = []
    for _ in range(CALLS):
        began = time.perf_counter()
        child.ask("tools/call", call)
        latencies.append(time.perf_counter() - began)
    rss = child.rss()
    child.close()
    return {
        "start_ms": statistics.median(starts) * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000,
        "rss_mib": rss / 2**20,
    }


def main() -> int:
    host = sandbox.Host.detect()
    if not (host.root and host.bwrap_works):
        print("the sandboxed path needs root and a working bubblewrap; not measured")
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    try:
        run_dir = work / "run"
        run_dir.mkdir()
        launch = sandbox.plan(
            "benchmark",
            SERVER,
            {},
            None,
            sandbox.Profile(),
            uid=sandbox.UID_BASE,
            host=host,
            homes_dir=work / "homes",
            run_dir=run_dir,
            hidden=[work / "data"],
        )
        baseline = measure(SERVER, dict(os.environ))
        boxed = measure(launch.argv, launch.env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"mcp-server-time over stdio, {STARTS} starts, {CALLS} tools/call; sandbox: {launch.mode}")
    print(f"{'':24}{'as it is':>12}{'sandboxed':>12}{'ratio':>8}")
    for key, label in (
        ("start_ms", "start to initialize, ms"),
        ("p50_ms", "tools/call p50, ms"),
        ("p99_ms", "tools/call p99, ms"),
        ("rss_mib", "memory (tree), MiB"),
    ):
        print(f"{label:24}{baseline[key]:>12.2f}{boxed[key]:>12.2f}{boxed[key] / baseline[key]:>8.2f}")
    return 0
