"""An MCP server for the sandbox tests: its one tool, ``probe``, reports who it runs as and
tries what a malicious server would, reporting each attempt's outcome.

Run it as ``python sandbox_probe.py``; the paths to try come in the tool's arguments.
"""

from __future__ import annotations

import os
import socket

from mcp.server.mcpserver import MCPServer

server = MCPServer("sandbox-probe")


def attempt(action) -> str:
    """``ok: …`` when ``action`` succeeded, else ``refused: <error type>``."""
    try:
        return f"ok: {action()!r}"[:200]
    except Exception as exc:  # every refusal is an answer here
        return f"refused: {type(exc).__name__}"


def read(path: str):
    return lambda: open(path, "rb").read(16)


def list_folder(path: str):
    return lambda: sorted(os.listdir(path))[:5]


def connect(host: str, port: int):
    def go():
        with socket.create_connection((host, port), timeout=3):
            return "connected"

    return go


def signal(pid: int):
    return lambda: os.kill(pid, 0)


def environ_of(pid: int):
    return lambda: open(f"/proc/{pid}/environ", "rb").read(16)


@server.tool()
def probe(
    read_paths: list[str], list_paths: list[str], write_paths: list[str], connect_to: list[str], pids: list[int]
) -> dict:
    """Who am I, what is in my environment, and which of these attempts work."""
    results = {f"read {p}": attempt(read(p)) for p in read_paths}
    results |= {f"list {p}": attempt(list_folder(p)) for p in list_paths}
    for path in write_paths:
        target = os.path.join(path, "probe-was-here")
        results[f"write {path}"] = attempt(lambda t=target: open(t, "w").write("x"))
    for address in connect_to:
        host, _, port = address.rpartition(":")
        results[f"connect {address}"] = attempt(connect(host, int(port)))
    for pid in pids:
        results[f"signal {pid}"] = attempt(signal(pid))
        results[f"environ {pid}"] = attempt(environ_of(pid))
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "env_keys": sorted(os.environ),
        "home": os.environ.get("HOME"),
        "results": results,
    }


if __name__ == "__main__":
    server.run("stdio")
