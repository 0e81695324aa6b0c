"""The built-in MCP runtimes: ``process`` (our bridge on the ``mcp`` SDK) and ``supergateway``.

Both supervise one process group per server (see :mod:`open1panel_ai.mcp.supervisor`) and
both run :mod:`open1panel_ai.mcp.bridge` with the panel's own Python, which serves the token,
the Host check and both transports. ``process`` lets the bridge run the stdio server itself;
``supergateway`` has the bridge start the npm package of that name through ``npx`` on an
internal port and forward to it, and is usable only where Node.js is installed and only when
chosen by setting.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from hookspecs import hookimpl
from hookspecs.ai import MCPProvider, ProviderUnavailable
from hookspecs.mcp import MCPServerSpec, MCPServerState, MCPTool
from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.mcp import logfile, sandbox
from open1panel_ai.mcp.probe import ProbeFailed
from open1panel_ai.mcp.supervisor import (
    BRIDGE_MODULE,
    Supervised,
    Timing,
    reap_leftover,
    remove_stale_pid_files,
)
from open1panel_ai.supervision import stopped_state


class ProcessRuntime:
    """Runs each server as a supervised bridge process on this machine."""

    name: ClassVar[str] = "process"
    #: Whether each stdio child starts in its sandbox (:meth:`sandbox_plan`).
    sandboxed: ClassVar[bool] = True

    def __init__(self, settings: Mapping[str, str]) -> None:
        self.settings = settings
        self.timing = Timing.from_settings(settings)
        root = Path(settings["data_dir"]) / "mcp"
        self.run_dir = root / "run"
        self.log_dir = root / "logs"
        #: Each sandboxed server's private home (npx and uvx caches go there).
        self.homes_dir = sandbox.homes_of(settings)
        #: What this machine offers for sandboxing, looked up once.
        self.sandbox_host = sandbox.Host.detect(settings.get("mcp_bwrap") or "bwrap")
        self._hidden = sandbox.hidden_folders(settings)
        remove_stale_pid_files(self.run_dir)
        self._servers: dict[str, Supervised] = {}
        self._lock = threading.Lock()
        self._server_locks: dict[str, threading.Lock] = {}
        #: Called with a server id whenever that server's status changes (set by the service).
        self.on_change: Callable[[str], None] = lambda server_id: None

    def probe(self) -> None:
        if importlib.util.find_spec("mcp") is None or importlib.util.find_spec("uvicorn") is None:
            raise ProviderUnavailable(Message("mcp.provider.no_sdk"), Message("mcp.fix.install_sdk"))

    def bridge_argv(self, server: Mapping[str, Any], config_path: Path) -> list[str]:
        return [sys.executable, "-m", BRIDGE_MODULE, str(config_path)]

    def sandbox_plan(self, server: Mapping[str, Any]) -> sandbox.Launch:
        """How the server's stdio child starts: in its sandbox, under its profile."""
        return sandbox.plan(
            server["id"],
            server["command"],
            server.get("env_values") or {},
            server.get("cwd"),
            sandbox.Profile.from_mapping(server.get("profile")),
            uid=server["sandbox_uid"],
            host=self.sandbox_host,
            homes_dir=self.homes_dir,
            run_dir=self.run_dir,
            hidden=self._hidden,
        )

    def forget(self, server_id: str) -> None:
        """Remove what a deleted server left: its home and caches, and its lock."""
        sandbox.remove_home(self.homes_dir, server_id)
        with self._lock:
            self._server_locks.pop(server_id, None)

    # -- the MCPProvider protocol --------------------------------------------------------

    def start(self, server: MCPServerSpec) -> None:
        # Stop-and-replace is one step per server: two starts never leave an untracked bridge.
        with self._server_lock(server["id"]):
            self._stop(server["id"])
            self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            config_path = self.run_dir / f"{server['id']}.json"
            supervised = Supervised(
                server,
                self.bridge_argv(server, config_path),
                config_path,
                self.log_path(server["id"]),
                self.timing,
                self._changed,
                self.sandbox_plan if self.sandboxed else None,
            )
            with self._lock:
                self._servers[server["id"]] = supervised
            logfile.note(supervised.log_path, f"supervisor: starting {server['name']}")
            supervised.start()

    def stop(self, server_id: str) -> None:
        with self._server_lock(server_id):
            self._stop(server_id)

    def state(self, server_id: str) -> MCPServerState:
        supervised = self._servers.get(server_id)
        return MCPServerState(**stopped_state()) if supervised is None else supervised.state()

    def logs(self, server_id: str, tail: int) -> list[str]:
        return logfile.tail(self.log_path(server_id), tail)

    def tools(self, server_id: str) -> list[MCPTool]:
        supervised = self._servers.get(server_id)
        if supervised is None or supervised.state()["status"] not in ("running", "unhealthy"):
            raise errors.Conflict(Message("mcp.error.not_running"), code="not_running")
        try:
            return supervised.probe()
        except ProbeFailed as exc:
            raise errors.UpstreamError(Message("mcp.error.tools_failed", reason=str(exc))) from None

    def set_hosts(self, server_id: str, hosts: list[str]) -> None:
        supervised = self._servers.get(server_id)
        if supervised is not None:
            supervised.reload_hosts(hosts)

    # -- helpers ------------------------------------------------------------------------

    def _stop(self, server_id: str) -> None:
        """Stop the server's bridge; one this panel does not supervise may still be running,
        left by a panel that was killed, and is stopped too."""
        with self._lock:
            supervised = self._servers.pop(server_id, None)
        if supervised is None:
            config_path = self.run_dir / f"{server_id}.json"
            # A bridge starts with its config, which only a stop removes: without one, none
            # can be left, and the look at every process of the machine is spared.
            if config_path.exists():
                reap_leftover(config_path, self.log_path(server_id))
            return
        supervised.stop()
        logfile.note(supervised.log_path, "supervisor: stopped")
        self._changed(server_id)
        supervised.config_path.unlink(missing_ok=True)

    def _server_lock(self, server_id: str) -> threading.Lock:
        """The lock that orders starts and stops of one server (others go on meanwhile)."""
        with self._lock:
            return self._server_locks.setdefault(server_id, threading.Lock())

    def log_path(self, server_id: str) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.log_dir / f"{server_id}.log"

    def _changed(self, server_id: str) -> None:
        self.on_change(server_id)


class SupergatewayRuntime(ProcessRuntime):
    """Runs each stdio server through ``npx -y supergateway`` (Streamable HTTP, stateful), with
    our bridge in front of it.

    supergateway has no inbound auth and listens on every interface, so it never gets the
    server's port: it listens on an internal port chosen at each start, and the bridge serves
    the server's real port with the token, the Host check and both transports, forwarding to
    it. Only chosen by setting (``mcp_provider = supergateway``), never by ``auto``.
    """

    name: ClassVar[str] = "supergateway"
    #: supergateway runs the stdio server itself, from a command line of its own: no sandbox
    #: wraps it (docs/mcp.md says so; the process runtime is the sandboxed one).
    sandboxed: ClassVar[bool] = False

    def probe(self) -> None:
        if self.settings.get("mcp_provider") != self.name:
            raise ProviderUnavailable(
                Message("mcp.provider.supergateway_by_name"), Message("mcp.fix.choose_supergateway")
            )
        if shutil.which("npx", path=self.settings.get("mcp_node_path")) is None:
            raise ProviderUnavailable(Message("mcp.provider.no_node"), Message("mcp.fix.install_node"))
        super().probe()

    def start(self, server: MCPServerSpec) -> None:
        if not server.get("command"):
            raise errors.BadRequest(Message("mcp.error.supergateway_command_only"))
        port = _free_loopback_port()
        super().start({**server, "gateway": {"argv": self.gateway_argv(server, port), "port": port}})

    def gateway_argv(self, server: Mapping[str, Any], port: int) -> list[str]:
        """supergateway's command line: the stdio server on the internal ``port``."""
        npx = shutil.which("npx", path=self.settings.get("mcp_node_path")) or "npx"
        return [
            npx,
            "-y",
            "supergateway@4",
            "--stdio",
            shlex.join(server["command"]),
            "--outputTransport",
            "streamableHttp",
            "--stateful",
            "--port",
            str(port),
            "--logLevel",
            "info",
        ]


def _free_loopback_port() -> int:
    """A port nothing listens on now, picked by the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@hookimpl(trylast=True)
def ai_mcp_providers() -> list[type[MCPProvider]]:
    return [ProcessRuntime, SupergatewayRuntime]
