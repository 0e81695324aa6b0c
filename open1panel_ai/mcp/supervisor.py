"""Supervision of one MCP server's bridge process: measured status, restarts with backoff.

Each supervised server has its own thread, so a slow or failing server never delays another.
The thread starts the bridge in a new process group (the stdio child joins that group), then
watches it: the status becomes ``running`` only after an MCP probe through the bridge passes,
``unhealthy`` when probes fail while the process lives, and a process that exits is restarted
after 5 s, then 10 s, doubling to 60 s, at most 10 times; the count starts again after 30 s of
stable running. A server out of tries ends in ``error``. Each time the server goes down, its
``last_error`` says why in a few readable lines (what the child last wrote to stderr, trimmed),
so the row shows the cause while it backs off. The restart loop, the status and the
stopping of a process group are the panel's generic supervision (see
:mod:`open1panel_ai.supervision`); what is MCP's own is here: the bridge's config, its probes,
its allowed hosts and the reasons read from its log. A program that cannot be found is ``error`` at
once, before anything is spawned (see :mod:`open1panel_ai.mcp.program`). Stopping kills the
whole process group, so nothing the server started is left behind. What the bridge process
prints reaches the log through a pipe, cut and rotated like every line (see
:mod:`open1panel_ai.mcp.logfile`), and ``last_error`` stays short whatever the server wrote.

A panel killed outright cannot stop its bridges: a serving bridge notices the lost parent and
goes, but one still waiting for its server's first answer does not, and any of them holds the
server's port until it has gone. So before a bridge starts, every bridge still running with
this server's config is killed with its process group (and a stop of a server that is not
running does the same): after a restart each server runs exactly once. Bridges are found by
their command line, which names the config, rather than by a pid written after the start: a
panel killed between starting a bridge and writing its pid would leave one nobody finds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import psutil

from hookspecs.mcp import MCPServerState, MCPTool
from open1panel_ai import supervision
from open1panel_ai.config import ENV_PREFIX
from open1panel_ai.i18n import Message
from open1panel_ai.mcp import logfile
from open1panel_ai.mcp.probe import ProbeFailed, list_tools
from open1panel_ai.mcp.program import cannot_run
from open1panel_ai.mcp.sandbox import Launch
from open1panel_ai.mcp.urls import base_url
from open1panel_ai.supervision import REASON_LINES, Supervisor, bounded, readable

__all__ = [
    "BRIDGE_MODULE",
    "BRIDGE_MODULES",
    "Supervised",
    "Timing",
    "bounded",
    "bridge_env",
    "exit_reason",
    "reap_leftover",
    "remove_stale_pid_files",
]

log = logging.getLogger(__name__)

#: The module every bridge runs as (``python -m``), with its config path as the last argument.
BRIDGE_MODULE = "open1panel_ai.mcp.passthrough"
#: Every module a bridge has run as, this one and earlier versions': a bridge left behind by a
#: panel killed before an upgrade is found and stopped too.
BRIDGE_MODULES = (BRIDGE_MODULE, "open1panel_ai.mcp.bridge")
#: A log line the bridge wrote for its child (``child``) or gateway: stamp, logger, text.
_CHILD_LINE = re.compile(r"^\S+ (?:child|gateway) (.*)$")
#: Any other line but the supervisor's own notes: what the bridge (or uvicorn) reported.
_BRIDGE_LINE = re.compile(r"^\S+ (?!supervisor:)\S+ (?:the bridge stopped: )?(.*)$")
#: The bridge's lines that tell of progress, not of what went wrong.
_PROGRESS = re.compile(r"^(?:started |upstream .* ready$|serving on |allowed hosts now)")


@dataclass(frozen=True)
class Timing(supervision.Timing):
    """How supervision paces itself; every value can be set (``OPEN1PANEL_AI_MCP_*``). Besides
    the generic pacing (where ``start_timeout`` leaves room for a first download by uvx/npx),
    the bridge's health probes."""

    prefix: ClassVar[str] = "mcp_"

    probe_interval: float = 15.0  # between health probes while running
    probe_timeout: float = 10.0  # a probe without an answer by then has failed
    unhealthy_restart: int = 3  # failed probes in a row that restart the process


def bridge_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The bridge's environment: the panel's, without its settings and secrets
    (``OPEN1PANEL_AI_*``: the admin token among them). The bridge holds its server's token,
    from its config file, and nothing else of the panel's."""
    return supervision.without_panel_settings(environ, ENV_PREFIX)


class Supervised(Supervisor[Timing]):
    """One server under supervision: its bridge process, its status and its thread."""

    described = "the bridge"

    def __init__(
        self,
        server: Mapping[str, Any],
        argv: list[str],
        config_path: Path,
        log_path: Path,
        timing: Timing,
        on_change: Callable[[str], None],
        sandbox: Callable[[Mapping[str, Any]], Launch] | None = None,
    ) -> None:
        """``sandbox`` plans how the stdio child starts (see :mod:`open1panel_ai.mcp.sandbox`);
        without one, the bridge starts the command as it is."""
        super().__init__(f"mcp-{server['name']}", timing, self._notify)
        self.server = dict(server)
        self._sandbox = sandbox
        #: How the child was last started, and in what isolation; None before a start.
        self.launch: Launch | None = None
        self.id = server["id"]
        self.argv = argv
        self.config_path = config_path
        self.log_path = log_path
        self._on_change = on_change
        self._config_lock = threading.Lock()
        self._kick = threading.Event()
        self._hosts_pending = False  # hosts changed while the bridge was not yet answering

    def _notify(self) -> None:
        self._on_change(self.id)

    # -- what others ask ------------------------------------------------------------------

    def note(self, text: str) -> None:
        logfile.note(self.log_path, text)

    def restarts_allowed(self) -> bool:
        return self.server.get("restart_policy") != "never"

    def wake(self) -> None:
        self._kick.set()

    def cannot_start(self) -> Message | None:
        """Why the server's command cannot be run (no such program, no working folder), or
        None; a remote server is always startable."""
        command = self.server.get("command")
        if not command:
            return None
        return cannot_run(command, self.server.get("env_values"), self.server.get("cwd"))

    def state(self) -> MCPServerState:
        return MCPServerState(**super().state(), isolation=self.launch.public() if self.launch is not None else None)

    def stop(self, join_timeout: float | None = None) -> None:
        """Stop the bridge and its whole process group; returns when they are gone (waiting for
        the thread up to ``join_timeout``, by default as long as a probe may take and 5 s more)."""
        super().stop(self.timing.probe_timeout + 5 if join_timeout is None else join_timeout)

    def probe(self, timeout: float = 10.0) -> list[MCPTool]:
        transport = self.server["transports"][0]
        url = base_url(self.server["bind_host"], self.server["port"])
        return list_tools(url, self.server["token"], transport, timeout)

    def reload_hosts(self, hosts: list[str]) -> None:
        """Write the new allowed hosts and tell the bridge to read them (SIGHUP).

        Only a bridge that answered a probe has its SIGHUP handler for sure; a starting one
        is told once it answers, so the signal never kills it and the hosts are never lost.
        """
        with self._config_lock:
            self.server["extra_hosts"] = list(hosts)
        self.write_config()
        with self._lock:
            if self.status == "running":
                self._hangup(self.process)
            else:
                self._hosts_pending = True

    def _hangup(self, process: subprocess.Popen | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGHUP)

    def write_config(self) -> None:
        """Write the bridge's config file atomically; threads writing at once each use their
        own temporary file, and the last one to finish wins whole."""
        with self._config_lock:
            server = self.server
            launch = self.launch
            config = {
                "id": server["id"],
                "name": server["name"],
                "command": launch.argv if launch else server.get("command"),
                "env": launch.env if launch else server.get("env_values", {}),
                # A sandboxed child's env is whole: the bridge adds nothing of its own.
                "env_exact": launch is not None,
                "cwd": launch.cwd if launch else server.get("cwd"),
                "url": server.get("url"),
                "sessions": server.get("sessions", "shared"),
                "headers": server.get("header_values", {}),
                "gateway": server.get("gateway"),
                "bind_host": server["bind_host"],
                "port": server["port"],
                "token": server["token"],
                "transports": server["transports"],
                "allowed_hosts": server.get("extra_hosts", []),
                "log_file": str(self.log_path),
                "log_max_bytes": logfile.MAX_BYTES,
                "log_backups": logfile.BACKUPS,
                "panel_pid": os.getpid(),
            }
            # The file holds the token and secret env values: only the panel's user may read it
            # (mkstemp creates it with mode 0600).
            fd, temporary = tempfile.mkstemp(prefix=f".{self.id}.", suffix=".tmp", dir=self.config_path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    json.dump(config, file)
                os.replace(temporary, self.config_path)
            except BaseException:
                os.unlink(temporary)
                raise

    # -- the supervising thread -----------------------------------------------------------

    def run_once(self) -> tuple[float, Message | None]:
        """Run the bridge until it exits (or is stopped); return how long it was running and
        why it ended, in words (None when it was stopped)."""
        self.set_status("starting")
        reap_leftover(self.config_path, self.log_path)
        if self._sandbox is not None and self.server.get("command"):
            try:
                self.launch = self._sandbox(self.server)
            except OSError as exc:
                return 0.0, Message("mcp.sandbox.reason.cannot_prepare", error=str(exc))
        self.write_config()
        written = logfile.Follower(self.log_path)  # what this run writes is the reason's source
        cause = "exited"
        # What the bridge process itself prints goes into the log cut and rotated like every
        # line, never straight into a file that could grow without bound.
        process = self.spawn(self.argv, bridge_env())
        output = threading.Thread(
            target=logfile.copy_lines,
            args=(process.stdout, self.log_path),
            name=f"mcp-output-{self.server['name']}",
            daemon=True,
        )
        output.start()
        started = time.monotonic()
        running_since = None
        failed_probes = 0
        next_probe = started
        while not self._stop.is_set():
            if process.poll() is not None:
                break
            now = time.monotonic()
            if now >= next_probe:
                try:
                    self.probe(timeout=self.timing.probe_timeout)
                except ProbeFailed as exc:
                    if running_since is None:
                        if now - started > self.timing.start_timeout:
                            logfile.note(
                                self.log_path, f"supervisor: no answer after {self.timing.start_timeout:g} s: {exc}"
                            )
                            self.terminate(process)
                            cause = "no_answer"
                            break
                        next_probe = now + 0.3
                    else:
                        failed_probes += 1
                        logfile.note(self.log_path, f"supervisor: probe failed: {exc}")
                        self.set_status("unhealthy")
                        if failed_probes >= self.timing.unhealthy_restart:
                            self.terminate(process)
                            cause = "stopped_answering"
                            break
                        next_probe = now + min(self.timing.probe_interval, 5)
                    if process.poll() is not None:
                        break
                    continue
                failed_probes = 0
                if running_since is None:
                    running_since = time.monotonic()
                with self._lock:
                    if self._hosts_pending:
                        self._hosts_pending = False
                        self._hangup(process)
                self.set_status("running")
                next_probe = time.monotonic() + self.timing.probe_interval
            self._kick.wait(0.1 if running_since is None else 0.25)
        ran_for = 0.0 if running_since is None else time.monotonic() - running_since
        if self._stop.is_set():
            self.terminate(process)
            output.join(5)
            written.close()
            return ran_for, None
        self.kill_group()  # anything the crashed bridge left behind
        output.join(5)  # its last words are in the log before they are quoted
        try:
            return ran_for, exit_reason(cause, written.read_new(), self.timing)
        finally:
            written.close()


def exit_reason(cause: str, lines: list[str], timing: Timing) -> Message:
    """Why a run ended, for a person: the cause, and the last few lines the child (or the
    gateway) wrote, else those the bridge reported, without timestamps or terminal colours
    and cut to a readable width.

    ``cause`` is ``"exited"`` (the bridge ended by itself), ``"no_answer"`` (no answer within
    the start timeout) or ``"stopped_answering"`` (health probes failed); ``lines`` are the
    log lines written during the run."""
    said = [readable(match.group(1)) for match in map(_CHILD_LINE.match, lines) if match]
    output = "\n".join([line for line in said if line][-REASON_LINES:])
    if cause == "stopped_answering":
        return Message("mcp.reason.stopped_answering", failed=timing.unhealthy_restart)
    if cause == "no_answer":
        if output:
            return Message("mcp.reason.no_answer_output", seconds=f"{timing.start_timeout:g}", output=output)
        return Message("mcp.reason.no_answer", seconds=f"{timing.start_timeout:g}")
    if output:
        return Message("mcp.reason.output", output=output)
    # Without a word from the child (a remote server, a silent crash), the bridge's report.
    reported = [
        readable(match.group(1))
        for match in map(_BRIDGE_LINE.match, lines)
        if match and not _PROGRESS.match(match.group(1))
    ]
    if reported:
        return Message("mcp.reason.reported", output="\n".join(reported[-REASON_LINES:]))
    return Message("mcp.reason.ended")


def reap_leftover(config_path: Path, log_path: Path) -> None:
    """Kill the process group of every bridge that a killed panel left running with this
    config, and wait until they are gone.

    The config lies in this panel's data dir and is named after the server, so only that
    server's bridges match, never another server's or another data dir's.
    """
    leftovers = _bridges_of(config_path)
    members = []
    for leftover in leftovers:
        try:
            group = [leftover, *leftover.children(recursive=True)]
        except psutil.Error:
            continue
        logfile.note(log_path, f"supervisor: stopping the bridge (pid {leftover.pid}) that a killed panel left running")
        try:
            os.killpg(leftover.pid, signal.SIGKILL)  # each bridge leads its own process group
        except ProcessLookupError:
            continue
        except PermissionError:
            # Another user's panel runs it on this data dir; it is theirs to stop, and waiting
            # for it to go would only delay this start.
            log.warning(
                "the bridge with config %s (pid %d) belongs to another user; it is left running",
                config_path,
                leftover.pid,
            )
            logfile.note(
                log_path,
                f"supervisor: the bridge (pid {leftover.pid}) belongs to "
                "another user and may not be stopped; it is left running",
            )
            continue
        members += group
    deadline = time.monotonic() + 5
    while any(_alive(member) for member in members) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove_stale_pid_files(run_dir: Path) -> None:
    """Delete the ``*.pid`` files that earlier versions wrote beside each bridge's config:
    bridges are now found by their command line, and nothing reads those files any more."""
    for stale in run_dir.glob("*.pid"):
        stale.unlink(missing_ok=True)


def _bridges_of(config_path: Path) -> list[psutil.Process]:
    """The live bridge processes started with ``config_path``, whoever started them."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if (
            len(argv) >= 3
            and argv[-3] == "-m"
            and argv[-2] in BRIDGE_MODULES
            and argv[-1] == str(config_path)
            and _alive(process)
        ):
            found.append(process)
    return found


def _alive(process: psutil.Process) -> bool:
    """Whether ``process`` still runs; a zombie (dead, waiting for whoever adopted it) does not."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
