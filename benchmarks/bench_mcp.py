"""The bridges against direct stdio: ``tools/call`` round trips, start-up and memory.

The official ``mcp`` client calls ``get_current_time`` on ``mcp-server-time`` along every path:
directly over stdio; through bridge v1 (``open1panel_ai.mcp.bridge``, on the ``mcp`` SDK) and
bridge v2 (``open1panel_ai.mcp.passthrough``) over Streamable HTTP and over SSE; through bridge
v2 with ``sessions: per_client``; and against the floor, an in-process server that answers the
same messages over the same HTTP server as bridge v2 with no child behind it (what is above the
floor is what the bridge itself costs); and through the peers, side by side in the same run:
mcp-proxy 0.13.0 (from PyPI, in a venv of its own under ``~/.cache/open1panel-ai-bench``, since
it needs ``mcp < 2``) over Streamable HTTP and SSE, and supergateway 4.0.0 ``--stateful`` (from
npm, into the same cache folder). A peer that cannot be installed is left out with a line that
says why. Each path gets 300 sequential calls (p50 / p99), then 16
concurrent sessions making 50 calls each (calls per second, p50 / p99), in three interleaved
rounds whose medians are shown. Direct stdio with 16 sessions means 16 children, one per
session; a shared bridge serves all 16 from one child.

Results are ratios against direct stdio measured in the same run, so the machine's speed
cancels out. Goals for bridge v2: at most 1.0 ms added at p50, at least 85 % of
direct throughput with 16 sessions, at most 32 MiB of its own memory, at most 300 ms from start
to the first answered ``initialize`` (the child's own start-up, shown apart, not counted).
Options: ``--rounds N``, ``--sequential N``, ``--sessions N``, ``--calls N``.
"""

from __future__ import annotations

import argparse
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

# The client side (anyio, httpx, the mcp SDK, psutil) is imported where it is used, so the floor
# server started from this module loads what bridge v2 loads and nothing more.

SERVER = [str(Path(sys.executable).parent / "mcp-server-time"), "--local-timezone", "UTC"]
SEQUENTIAL = 300
SESSIONS = 16
CALLS_PER_SESSION = 50
ARGUMENTS = {"timezone": "UTC"}
#: Each figure is the median of this many interleaved rounds.
ROUNDS = 3
#: The child's whole environment behind bridge v2 (it adds nothing of its own).
CHILD_ENV = {"PATH": os.defpath, "LANG": "C.UTF-8"}
#: (label, server, transport); server None is direct stdio.
PATHS = (
    ("direct stdio", None, "stdio"),
    ("floor: in-process, no child", "floor", "streamable-http"),
    ("bridge v1, Streamable HTTP", "v1", "streamable-http"),
    ("bridge v1, SSE", "v1", "sse"),
    ("bridge v2, Streamable HTTP", "v2", "streamable-http"),
    ("bridge v2, SSE", "v2", "sse"),
    ("bridge v2 per_client, HTTP", "v2-per-client", "streamable-http"),
    ("mcp-proxy 0.13.0, HTTP", "mcp-proxy", "streamable-http"),
    ("mcp-proxy 0.13.0, SSE", "mcp-proxy", "sse"),
    ("supergateway 4.0.0 --stateful", "supergateway", "streamable-http"),
)
#: Where the peers are installed, once.
PEER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "open1panel-ai-bench"
MCP_PROXY_VERSION = "0.13.0"
SUPERGATEWAY_VERSION = "4.0.0"


def install_peers() -> tuple[dict[str, list[str]], list[str]]:
    """The argv prefix of each peer that is (or could now be) installed, and a line for each
    one that could not be."""
    found: dict[str, list[str]] = {}
    problems: list[str] = []
    venv = PEER_CACHE / f"mcp-proxy-{MCP_PROXY_VERSION}"
    program = venv / "bin" / "mcp-proxy"
    try:
        if not program.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True, timeout=300
            )
            subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", f"mcp-proxy=={MCP_PROXY_VERSION}"],
                check=True,
                capture_output=True,
                timeout=600,
            )
        found["mcp-proxy"] = [str(program)]
    except (OSError, subprocess.SubprocessError) as exc:
        problems.append(f"mcp-proxy {MCP_PROXY_VERSION} left out: it could not be installed ({_why(exc)})")
    entry = PEER_CACHE / "npm" / "node_modules" / "supergateway" / "dist" / "index.js"
    try:
        if not entry.exists():
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(PEER_CACHE / "npm"),
                    f"supergateway@{SUPERGATEWAY_VERSION}",
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
        found["supergateway"] = ["node", str(entry)]
    except (OSError, subprocess.SubprocessError) as exc:
        problems.append(f"supergateway {SUPERGATEWAY_VERSION} left out: it could not be installed ({_why(exc)})")
    return found, problems


def _why(exc: Exception) -> str:
    output = getattr(exc, "stderr", None) or b""
    text = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
    return text[0][:200] if text else str(exc)[:200]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Served:
    """A bridge (or the floor) around one ``mcp-server-time``, started as the supervisor starts one.

    ``listening`` and ``first_initialize`` are the milliseconds from the process's start to its
    first answer on ``/healthz`` and to its first answered ``initialize``."""

    def __init__(self, kind: str, folder: Path, peers: dict[str, list[str]] | None = None) -> None:
        self.kind = kind
        self.port = _free_port()
        self.token = secrets.token_urlsafe(32)
        config = {
            "id": "bench",
            "name": "bench",
            "command": SERVER,
            "env": {},
            "bind_host": "127.0.0.1",
            "port": self.port,
            "token": self.token,
            "transports": ["streamable-http", "sse"],
            "allowed_hosts": [],
            "log_file": str(folder / f"{kind}.log"),
        }
        if kind.startswith("v2"):
            config["env"] = CHILD_ENV
            config["sessions"] = "per_client" if kind == "v2-per-client" else "shared"
        path = folder / f"{kind}.json"
        path.write_text(json.dumps(config))
        argv = {
            "v1": [sys.executable, "-m", "open1panel_ai.mcp.bridge", str(path)],
            "floor": [sys.executable, "-m", "benchmarks.bench_mcp", "--floor", str(path)],
        }.get(kind, [sys.executable, "-m", "open1panel_ai.mcp.passthrough", str(path)])
        if kind == "mcp-proxy":
            argv = [
                *peers[kind],
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "WARNING",
                *(arg for key, value in CHILD_ENV.items() for arg in ("-e", key, value)),
                "--",
                *SERVER,
            ]
        elif kind == "supergateway":
            argv = [
                *peers[kind],
                "--stdio",
                " ".join(SERVER),
                "--outputTransport",
                "streamableHttp",
                "--stateful",
                "--port",
                str(self.port),
                "--logLevel",
                "none",
                "--healthEndpoint",
                "/healthz",
            ]
        import httpx

        started = time.perf_counter()
        # A peer's own log (mcp-proxy prints a traceback for every session a client ends) goes
        # to a file beside its config, not into the report.
        errors = open(folder / f"{kind}.stderr", "wb") if kind in ("mcp-proxy", "supergateway") else None
        self.process = subprocess.Popen(
            argv,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if errors is not None:
            errors.close()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json, text/event-stream"}
        deadline = time.monotonic() + 60
        self.listening = None
        while time.monotonic() < deadline:
            try:
                if self.listening is None:
                    httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5)
                    self.listening = (time.perf_counter() - started) * 1000
                answer = httpx.post(f"http://127.0.0.1:{self.port}/mcp", json=INITIALIZE, headers=headers, timeout=30)
                if answer.status_code == 200:
                    self.first_initialize = (time.perf_counter() - started) * 1000
                    httpx.delete(
                        f"http://127.0.0.1:{self.port}/mcp",
                        timeout=5,
                        headers={**headers, "Mcp-Session-Id": answer.headers.get("mcp-session-id", "")},
                    )
                    self.cpu = 0.0
                    self.calls = 0
                    return
            except httpx.HTTPError:
                time.sleep(0.002)
        self.process.kill()
        raise RuntimeError(f"{kind} did not start")

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def memory(self) -> tuple[float, int, float]:
        """RSS in MiB of the bridge alone, and how many children it has and their RSS, once the
        children of sessions that ended have gone (at most 5 s)."""
        import psutil

        bridge = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 5
        while len(children := bridge.children(recursive=True)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        rss = 0
        for child in children:
            try:
                rss += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return bridge.memory_info().rss / 2**20, len(children), rss / 2**20

    def close(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


def child_start_ms() -> float:
    """Milliseconds from starting ``mcp-server-time`` to its answer to ``initialize``, over stdio."""
    started = time.perf_counter()
    process = subprocess.Popen(
        SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=CHILD_ENV
    )
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    process.stdin.flush()
    process.stdout.readline()
    elapsed = (time.perf_counter() - started) * 1000
    process.kill()
    process.wait()
    return elapsed


class _Start:
    """Holds every session at the line until all are connected, so setup is not timed."""

    def __init__(self, sessions: int) -> None:
        import anyio

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
    from mcp import ClientSession

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


def _opener(transport: str, served: Served | None):
    import httpx2
    from mcp.client.sse import sse_client
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {served.token}"} if served else {}
    if transport == "stdio":
        return lambda: stdio_client(StdioServerParameters(command=SERVER[0], args=SERVER[1:]))
    if transport == "sse":
        return lambda: sse_client(f"http://127.0.0.1:{served.port}/sse", headers=headers)

    class Streamable:
        async def __aenter__(self):
            # The SDK's own timeouts: 16 per_client children starting at once take a while.
            self.http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))
            self.inner = streamable_http_client(f"http://127.0.0.1:{served.port}/mcp", http_client=self.http)
            return await self.inner.__aenter__()

        async def __aexit__(self, *exc):
            await self.inner.__aexit__(*exc)
            await self.http.aclose()

    return Streamable


async def _measure(open_session, sequential: int, sessions: int, calls: int) -> dict[str, float]:
    import anyio

    latencies: list[float] = []
    await _calls(open_session, sequential, latencies)
    concurrent: list[float] = []
    start = _Start(sessions)
    async with anyio.create_task_group() as group:
        for _ in range(sessions):
            group.start_soon(_calls, open_session, calls, concurrent, start)
    # Sessions close one after another; the clock stops when the last call is answered.
    elapsed = max(start.last_answer, start.at + 1e-9) - start.at
    return {
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 0.99),
        "rate": len(concurrent) / elapsed,
        "c_p50": statistics.median(concurrent),
        "c_p99": _percentile(concurrent, 0.99),
    }


def _options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mcp", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--sequential", type=int, default=SEQUENTIAL)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--calls", type=int, default=CALLS_PER_SESSION)
    return parser.parse_args(argv or [])


def main(argv: list[str] | None = None) -> int:
    import anyio

    options = _options(argv)
    startup = statistics.median(child_start_ms() for _ in range(3))
    with tempfile.TemporaryDirectory() as folder:
        servers: dict[str, Served] = {}
        try:
            peers, left_out = install_peers()
            for kind in ("floor", "v1", "v2", "v2-per-client"):
                servers[kind] = Served(kind, Path(folder), peers)
            for kind in peers:
                try:
                    servers[kind] = Served(kind, Path(folder), peers)
                except RuntimeError as exc:
                    left_out.append(f"{kind} left out: {exc}")
            paths = [path for path in PATHS if path[1] is None or path[1] in servers]
            rounds: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in paths}
            for _ in range(options.rounds):  # interleaved, so a busy moment hits every path alike
                for label, kind, transport in paths:
                    served = servers.get(kind)
                    before = served.cpu_seconds() if served else 0.0
                    rounds[label].append(
                        anyio.run(
                            _measure, _opener(transport, served), options.sequential, options.sessions, options.calls
                        )
                    )
                    if served is not None:
                        served.cpu += served.cpu_seconds() - before
                        served.calls += options.sequential + options.sessions * (options.calls + 1) + 1
            results = {
                label: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                for label, runs in rounds.items()
            }
            memory = {kind: served.memory() for kind, served in servers.items()}
        finally:
            for served in servers.values():
                served.close()
    direct = results["direct stdio"]
    print(
        f"{'path':<30} {'seq p50':>8} {'seq p99':>8} {'added p50':>10} {'16x calls/s':>12} {'share':>6}"
        f" {'16x p50':>8} {'16x p99':>8}"
    )
    for label, r in results.items():
        print(
            f"{label:<30} {r['p50']:>6.2f}ms {r['p99']:>6.2f}ms {r['p50'] - direct['p50']:>+8.2f}ms"
            f" {r['rate']:>12.0f} {r['rate'] / direct['rate']:>6.0%} {r['c_p50']:>6.1f}ms {r['c_p99']:>6.1f}ms"
        )
    print(
        f"\n{'server':<16} {'own RSS':>8} {'children afterwards':>20} {'CPU/call':>9} {'listening':>10}"
        f" {'first initialize':>17}"
    )
    for kind, served in servers.items():
        own, count, children = memory[kind]
        per_call = served.cpu / max(served.calls, 1) * 1e6
        # The floor records its answers from the real server as it starts: its start-up says nothing.
        listening, first = (
            ("—", "—") if kind == "floor" else (f"{served.listening:.0f}ms", f"{served.first_initialize:.0f}ms")
        )
        print(
            f"{kind:<16} {own:>5.1f}MiB {count:>5} using {children:>5.0f}MiB {per_call:>7.0f}us {listening:>10}"
            f" {first:>17}"
        )
    for line in left_out:
        print(line)
    print(f"the child alone takes {startup:.0f} ms from start to its answer to initialize over stdio")
    v2 = servers["v2"]
    added = results["bridge v2, Streamable HTTP"]["p50"] - direct["p50"]
    share = results["bridge v2, Streamable HTTP"]["rate"] / direct["rate"]
    print(
        f"bridge v2 goals: added p50 {added:+.2f} ms (<= 1.0), throughput {share:.0%} (>= 85 %), "
        f"own RSS {memory['v2'][0]:.1f} MiB (<= 32), listening after {v2.listening:.0f} ms and first "
        f"initialize after {v2.first_initialize:.0f} ms, the child's own start-up included (<= 300 "
        f"beyond it)"
    )
    return 0


# -- the floor ------------------------------------------------------------------------------


def floor_server(config_path: str) -> None:
    """Serve ``get_current_time`` in-process over bridge v2's HTTP server, with no child: the
    answers are those of ``mcp-server-time``, recorded from it once at start (so the time it
    tells stands still)."""
    sys.modules.setdefault("ssl", None)  # as bridge v2 runs
    import asyncio

    from open1panel_ai.mcp.passthrough.httpd import Handler, Server

    config = json.loads(Path(config_path).read_text())
    answers = _recorded_answers()
    expected = f"Bearer {config['token']}".encode()

    class Floor(Handler):
        def head(self, conn, request):
            if request.headers.get("authorization", "").encode() != expected:
                conn.respond(401, b"", None)
                return False
            return True

        def request(self, conn, request):
            headers = [("mcp-session-id", "floor")]
            if request.method != "POST":
                conn.respond(405 if request.method == "GET" else 200, b"", None, headers)
                return
            message = json.loads(request.body)
            if "id" not in message:
                conn.respond(202, b"", None, headers)
                return
            result = answers.get(message["method"], {})
            body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
            conn.respond(200, body, "application/json", headers)

    async def serve():
        loop = asyncio.get_running_loop()
        await loop.create_server(Server(Floor(), 4 << 20).protocol, config["bind_host"], int(config["port"]))
        await asyncio.Event().wait()

    asyncio.run(serve())


def _recorded_answers() -> dict[str, dict]:
    """``mcp-server-time``'s answers to ``initialize``, ``tools/list`` and a ``tools/call``,
    asked once over stdio."""
    process = subprocess.Popen(
        SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=CHILD_ENV
    )
    answers = {}
    for message in (
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_current_time", "arguments": ARGUMENTS},
        },
    ):
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()
        if "id" in message:
            answers[message["method"]] = json.loads(process.stdout.readline())["result"]
    process.kill()
    process.wait()
    return answers


if __name__ == "__main__" and sys.argv[1:2] == ["--floor"]:
    floor_server(sys.argv[2])
