"""Fault fixtures: a served panel killed outright and started again on the same data dir, the
real parts it talks to (the Ollama stand-in, nginx, MCP servers from PyPI), and checks of what
a crash leaves behind (the SQLite file, stray bridge processes)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from open1panel_ai.context import DATABASE_NAME
from tests.conftest import TOKEN
from tests.domain.conftest import CaddyServer, NginxServer
from tests.helpers import bridge_pids, wait_for
from tests.mcp.conftest import FAST
from tests.ollama_standin import OllamaStandIn


def kill_panel(panel) -> None:
    """``kill -9`` the whole panel (gunicorn's arbiter and its worker), as the OOM killer or a
    power cut would: nothing of the panel runs any shutdown code."""
    os.killpg(panel.process.pid, signal.SIGKILL)
    panel.process.wait()


def integrity(data_dir: Path) -> str:
    """SQLite's own verdict on the panel's database file, read by a separate connection."""
    with sqlite3.connect(data_dir / DATABASE_NAME) as db:
        return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))


def list_tools(url: str, token: str) -> list[str]:
    """The tool names a server lists to the official ``mcp`` client."""
    return anyio.run(_list_tools, url, token)


async def _list_tools(url, token):
    with anyio.fail_after(20):
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
        async with (
            http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return [tool.name for tool in (await session.list_tools()).tools]


@pytest.fixture
def standin(tmp_path):
    with OllamaStandIn(tmp_path / "ollama") as server:
        yield server


@pytest.fixture
def panel_env(standin):
    """The environment every panel here gets: the stand-in as ``local`` Ollama, quick MCP
    supervision, and no domain provider unless a test names one."""
    return {
        "OPEN1PANEL_AI_TOKEN": TOKEN,
        "OLLAMA_HOST": standin.url,
        "OLLAMA_MODELS": str(standin.state_dir),
        "OPEN1PANEL_AI_DOMAIN_PROVIDER": "none",
        **FAST,
    }


@pytest.fixture
def no_stray_bridges():
    """Server ids a test registers here have every bridge killed at the end, so a failing test
    leaves no process behind."""
    ids: list[str] = []
    yield ids
    for server_id in ids:
        for pid in bridge_pids(f"{server_id}.json"):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


#: Runs the real nginx, but first (and, with ``after-``, afterwards) stops at a step while a
#: ``pause-<step>`` file exists, having touched ``at-<step>``: the test kills the panel there.
PAUSING_NGINX = """#!/bin/sh
case " $* " in *" -t "*) step=test ;; *" reload "*) step=reload ;; *) step=other ;; esac
hold() {
    [ -e "{control}/pause-$1" ] || return 0
    touch "{control}/at-$1"
    while [ -e "{control}/pause-$1" ]; do sleep 0.02; done
}
hold "$step"
"{nginx}" "$@"
status=$?
hold "after-$step"
exit $status
"""


class PausingNginx:
    """Debian's nginx on loopback, reached by the panel through a wrapper that can hold an
    apply at a chosen step (before ``nginx -t``, before or after ``nginx -s reload``)."""

    def __init__(self, root: Path) -> None:
        self.server = NginxServer(root)
        self.control = root / "control"
        self.control.mkdir(parents=True)
        self.binary = root / "nginx-pausing"
        self.binary.write_text(
            PAUSING_NGINX.replace("{control}", str(self.control)).replace(
                "{nginx}", shutil.which("nginx") or "/usr/sbin/nginx"
            )
        )
        self.binary.chmod(0o755)

    def env(self) -> dict[str, str]:
        settings = self.server.settings(Path("unused"))
        return {
            "OPEN1PANEL_AI_DOMAIN_PROVIDER": "nginx",
            "OPEN1PANEL_AI_NGINX_BIN": str(self.binary),
            **{
                "OPEN1PANEL_AI_" + key.upper(): value
                for key, value in settings.items()
                if key not in ("data_dir", "nginx_bin")
            },
        }

    def pause(self, step: str) -> None:
        (self.control / f"pause-{step}").touch()

    def wait_paused(self, step: str, timeout: float = 30) -> None:
        wait_for(lambda: (self.control / f"at-{step}").exists(), timeout, what=f"an apply to reach {step}")

    def release(self) -> None:
        for path in self.control.iterdir():
            path.unlink()

    def site_files(self) -> dict[str, bytes]:
        """Every file in the sites folder, by name."""
        return {path.name: path.read_bytes() for path in sorted(self.server.sites.iterdir())}

    def config_test(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nginx", "-t", "-c", str(self.server.conf)], capture_output=True, text=True, timeout=30, check=False
        )


@pytest.fixture
def pausing_nginx(tmp_path):
    nginx = PausingNginx(tmp_path / "nginx")
    nginx.server.start()
    yield nginx
    nginx.server.stop()


class PausingCaddyAdmin:
    """Caddy's admin API as the panel sees it, through a loopback relay that can hold a config
    change (``PATCH``) before Caddy gets it or after Caddy took it, until released; a change
    held before Caddy got it can be dropped instead, as a kill of its sender would."""

    def __init__(self, caddy: CaddyServer) -> None:
        self.caddy = caddy
        self.pause_at: str | None = None  # "before" or "after"
        self.reached = threading.Event()
        self.released = threading.Event()
        self.forward = True
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                holding = self.command == "PATCH" and relay.pause_at
                if holding == "before":
                    relay._hold()
                    if not relay.forward:
                        self.close_connection = True
                        return
                answer = httpx.request(
                    self.command,
                    caddy.admin + self.path,
                    content=body,
                    timeout=10,
                    headers={k: v for k, v in self.headers.items() if k.lower() in ("content-type", "if-match")},
                )
                if holding == "after":
                    relay._hold()
                try:
                    self.send_response(answer.status_code)
                    for name in ("Content-Type", "Etag"):
                        if name in answer.headers:
                            self.send_header(name, answer.headers[name])
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    pass  # the panel was killed meanwhile

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _hold(self) -> None:
        self.reached.set()
        self.released.wait(30)

    def pause(self, at: str) -> None:
        self.pause_at = at
        self.forward = True
        self.reached.clear()
        self.released.clear()

    def release(self, forward: bool = True) -> None:
        """Let the held change go on; with ``forward=False`` one held before Caddy got it is
        dropped, its connection closed without an answer."""
        self.forward = forward
        self.pause_at = None
        self.released.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def pausing_caddy(tmp_path):
    caddy = CaddyServer(tmp_path / "caddy").start()
    relay = PausingCaddyAdmin(caddy)
    yield relay
    relay.stop()
    caddy.stop()
