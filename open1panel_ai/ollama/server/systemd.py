"""The ``systemd`` way: the official install script's ``ollama.service``.

Settings go into one drop-in, ``/etc/systemd/system/ollama.service.d/open1panel-ai.conf``
(the folder is ``OPEN1PANEL_AI_OLLAMA_SYSTEMD_DIR``), followed by ``systemctl daemon-reload``;
a restart makes the server read them. The log is ``journalctl -u ollama.service``, followed
with ``--follow`` while the server page shows it. Every command is an argv list (never a
shell); those that run to their end go through a :data:`Runner`, which tests replace with a
recording one.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from hookspecs.ai import ProviderUnavailable
from hookspecs.ollama import OllamaServerState
from hookspecs.process import ProcessStatus
from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama.server import settings as server_settings

DROP_IN_NAME = "open1panel-ai.conf"
#: Where the install script's unit keeps its models (its ``ollama`` user's home).
MODELS_DIR = "/usr/share/ollama/.ollama/models"
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.@-]{1,200}\.service$")
#: systemd's states, as the page names them.
_STATUS: dict[str, ProcessStatus] = {
    "active": "running",
    "reloading": "running",
    "activating": "starting",
    "deactivating": "stopping",
    "inactive": "stopped",
    "failed": "error",
}
#: The most text of one journal line kept.
LINE_LIMIT = 8 * 1024


@dataclass(frozen=True)
class Completed:
    """What a command did: its exit status and output."""

    returncode: int
    stdout: str
    stderr: str


#: Runs one command (an argv list) and returns what it did; raises OSError when it cannot run.
Runner = Callable[[Sequence[str]], Completed]


def run_command(argv: Sequence[str], timeout: float = 60.0) -> Completed:
    """Run ``argv`` without a shell and wait for it."""
    done = subprocess.run(
        list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL
    )
    return Completed(done.returncode, done.stdout, done.stderr)


class SystemdServer:
    """The local Ollama as the systemd unit ``OPEN1PANEL_AI_OLLAMA_SYSTEMD_UNIT``
    (``ollama.service``)."""

    name: ClassVar[str] = "systemd"

    def __init__(self, settings: Mapping[str, str], runner: Runner | None = None) -> None:
        unit = settings.get("ollama_systemd_unit") or "ollama.service"
        if not _UNIT_NAME.match(unit):
            unit = "ollama.service"
        self.unit = unit
        self.unit_dir = Path(settings.get("ollama_systemd_dir") or "/etc/systemd/system")
        self.runner: Runner = runner or run_command

    @property
    def drop_in_path(self) -> Path:
        return self.unit_dir / f"{self.unit}.d" / DROP_IN_NAME

    def probe(self) -> None:
        try:
            done = self.runner(["systemctl", "show", self.unit, "--property=LoadState", "--value"])
        except (OSError, subprocess.SubprocessError) as exc:
            raise ProviderUnavailable(Message("ollama.server.systemd.no_systemctl", error=str(exc)[:200])) from None
        if done.returncode != 0:
            raise ProviderUnavailable(Message("ollama.server.systemd.not_running", error=_first_line(done.stderr)))
        if done.stdout.strip() != "loaded":
            raise ProviderUnavailable(
                Message("ollama.server.systemd.no_unit", unit=self.unit),
                Message("ollama.server.fix.install_or_supervise"),
            )

    # -- settings -------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        try:
            return server_settings.read_drop_in(self.drop_in_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def inherited(self) -> dict[str, str]:
        return {"OLLAMA_MODELS": MODELS_DIR}

    def write(self, values: Mapping[str, str]) -> None:
        """Replace the drop-in (remove it when ``values`` is empty), then ``daemon-reload``."""
        path = self.drop_in_path
        if values:
            text = server_settings.drop_in(values)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd, temporary = tempfile.mkstemp(prefix=".open1panel-ai.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(text)
                os.chmod(temporary, 0o644)  # systemd reads it; it holds no secret
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        else:
            path.unlink(missing_ok=True)
        self._systemctl("daemon-reload")

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        self._systemctl("start", self.unit)

    def stop(self) -> None:
        self._systemctl("stop", self.unit)

    def restart(self) -> None:
        self._systemctl("restart", self.unit)

    def state(self) -> OllamaServerState:
        done = self._run(
            ["systemctl", "show", self.unit, "--property=ActiveState,MainPID,NRestarts,StateChangeTimestamp,Result"]
        )
        fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        pid = fields.get("MainPID", "0")
        restarts = fields.get("NRestarts", "0")
        status = _STATUS.get(fields.get("ActiveState", ""), "stopped")
        return {
            "status": status,
            "pid": int(pid) if pid.isdigit() and pid != "0" else None,
            "since": fields.get("StateChangeTimestamp") or None,
            "restarts": int(restarts) if restarts.isdigit() else 0,
            "last_error": (
                Message("ollama.server.systemd.failed", result=fields.get("Result", "")[:60])
                if status == "error"
                else None
            ),
        }

    def logs(self, tail: int) -> list[str]:
        done = self._run(["journalctl", "-u", self.unit, "-n", str(int(tail)), "--no-pager", "-o", "short-iso"])
        return [printable_line(line) for line in done.stdout.splitlines()][-tail:]

    def follow_command(self) -> list[str]:
        """The command whose output is the unit's log as it grows (the server page's live
        log): ``journalctl --follow`` from now on, lines shaped as :meth:`logs` gives them."""
        return ["journalctl", "-u", self.unit, "--follow", "--lines=0", "--no-pager", "-o", "short-iso"]

    def attach(self) -> None:
        """systemd starts the unit with the machine."""

    def detach(self) -> None:
        """The unit keeps running after the panel stops."""

    # -- helpers --------------------------------------------------------------------------

    def _systemctl(self, *arguments: str) -> None:
        done = self._run(["systemctl", *arguments])
        if done.returncode != 0:
            raise errors.UpstreamError(
                Message(
                    "ollama.server.systemd.command_failed",
                    command=" ".join(["systemctl", *arguments]),
                    error=_first_line(done.stderr or done.stdout),
                ),
                code="systemctl_failed",
            )

    def _run(self, argv: list[str]) -> Completed:
        try:
            return self.runner(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            raise errors.UpstreamUnavailable(
                Message("ollama.server.systemd.command_failed", command=" ".join(argv), error=str(exc)[:200]),
                code="systemctl_failed",
            ) from None


def printable_line(line: str) -> str:
    """A journal line as the page shows it: without control characters, cut at 8 KiB."""
    line = "".join(ch if ch.isprintable() or ch == "\t" else "�" for ch in line[:LINE_LIMIT])
    return line


def _first_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0][:300] if lines else ""
