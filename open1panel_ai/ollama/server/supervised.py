"""The ``supervised`` way: an ``ollama serve`` the panel starts and keeps up itself.

Chosen only by setting (``OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER=supervised``), never by
``auto``: a panel that found an ``ollama`` program and started it would fight whatever already
runs the server. The process is supervised as MCP servers are (see
:mod:`open1panel_ai.supervision`): restarts with backoff, a crash loop ending in ``error`` with
the last lines of its log, and a start with the panel when it was running when the panel
stopped. Its settings are its environment: the panel's own (without the panel's settings and
secrets, ``OPEN1PANEL_AI_*``) with the chosen settings over it, kept in
``<data dir>/ollama-server/settings.json`` (0600 in a 0700 folder). What it prints goes to
``ollama.log`` beside it, cut and rotated.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import httpx
import psutil

from hookspecs.ai import ProviderUnavailable
from hookspecs.ollama import OllamaServerState
from open1panel_ai import supervision
from open1panel_ai.config import ENV_PREFIX
from open1panel_ai.i18n import Message
from open1panel_ai.ollama.server import settings as server_settings
from open1panel_ai.store import timestamp

#: A log line keeps at most this many bytes of text.
LINE_LIMIT = 8 * 1024
MAX_BYTES = 1 << 20
BACKUPS = 2


@dataclass(frozen=True)
class Timing(supervision.Timing):
    """The supervised server's pacing (``OPEN1PANEL_AI_OLLAMA_SERVER_*``)."""

    prefix: ClassVar[str] = "ollama_server_"

    start_timeout: float = 60.0  # no answer on /api/version by then: the start failed


class ProcessLog:
    """The server's log file: lines cut at :data:`LINE_LIMIT` bytes, the file rotated at
    :data:`MAX_BYTES` with :data:`BACKUPS` older files, and the last lines kept in memory for
    the reason a run ended. Only the panel's supervisor writes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._recent: deque[tuple[int, str]] = deque(maxlen=64)
        self._count = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "replace")[:LINE_LIMIT].decode("utf-8", "ignore")
        data = "".join(ch if ch.isprintable() or ch == "\t" else "�" for ch in data)
        with self._lock:
            self._count += 1
            self._recent.append((self._count, data))
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            encoded = (data + "\n").encode("utf-8")
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size + len(encoded) > MAX_BYTES:
                for number in range(BACKUPS, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{number - 1}") if number > 1 else self.path
                    if older.exists():
                        os.replace(older, self.path.with_name(f"{self.path.name}.{number}"))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "ab") as file:
                file.write(encoded)

    def note(self, text: str) -> None:
        self.write(f"{timestamp()} {text}")

    def copy(self, stream: BinaryIO) -> None:
        """Copy what a process prints into the log, line by line, until it closes its output."""
        for raw in iter(lambda: stream.readline(LINE_LIMIT + 1), b""):
            self.write(raw.rstrip(b"\r\n").decode("utf-8", "replace"))

    def mark(self) -> int:
        with self._lock:
            return self._count

    def since(self, mark: int) -> list[str]:
        """The lines written after :meth:`mark` returned ``mark`` (the last 64 at most)."""
        with self._lock:
            return [line for number, line in self._recent if number > mark]

    def tail(self, count: int) -> list[str]:
        lines: list[str] = []
        files = [self.path] + [self.path.with_name(f"{self.path.name}.{n}") for n in range(1, BACKUPS + 1)]
        for path in files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            lines = text.splitlines() + lines
            if len(lines) >= count:
                break
        return lines[-count:] if count > 0 else []


class OllamaProcess(supervision.Supervisor):
    """One ``ollama serve`` under supervision: running once ``/api/version`` answers."""

    described = "ollama serve"

    def __init__(
        self,
        argv: list[str],
        env: Mapping[str, str],
        url: str,
        log: ProcessLog,
        pid_path: Path,
        timing: Timing,
        on_change: Callable[[], None],
    ) -> None:
        super().__init__("ollama-serve", timing, on_change)
        self.argv = argv
        self.env = dict(env)
        self.url = url
        self.log = log
        self.pid_path = pid_path
        self._wake = threading.Event()

    def note(self, text: str) -> None:
        self.log.note(text)

    def wake(self) -> None:
        self._wake.set()

    def cannot_start(self) -> Message | None:
        if shutil.which(self.argv[0], path=self.env.get("PATH")) is None:
            return Message("ollama.server.reason.no_program", program=self.argv[0][:200])
        return None

    def run_once(self) -> tuple[float, Message | None]:
        self.set_status("starting")
        reap_leftover(self.pid_path, self.log)
        mark = self.log.mark()
        try:
            process = self.spawn(self.argv, self.env)
        except OSError as exc:
            return 0.0, Message("ollama.server.reason.cannot_run", error=str(exc)[:300])
        _write_pid(self.pid_path, process.pid)
        output = threading.Thread(target=self.log.copy, args=(process.stdout,), name="ollama-serve-output", daemon=True)
        output.start()
        started = time.monotonic()
        running_since = None
        cause = "exited"
        while not self.stopping and process.poll() is None:
            if running_since is None:
                if answers(self.url):
                    running_since = time.monotonic()
                    self.set_status("running")
                elif time.monotonic() - started > self.timing.start_timeout:
                    self.note(f"supervisor: no answer after {self.timing.start_timeout:g} s")
                    self.terminate(process)
                    cause = "no_answer"
                    break
            self._wake.wait(0.2 if running_since is None else 0.5)
        ran_for = 0.0 if running_since is None else time.monotonic() - running_since
        if self.stopping:
            self.terminate(process)
            output.join(5)
            self.pid_path.unlink(missing_ok=True)
            return ran_for, None
        self.kill_group()
        output.join(5)  # its last words are in the log before they are quoted
        self.pid_path.unlink(missing_ok=True)
        said = supervision.last_lines([line for line in self.log.since(mark) if " supervisor: " not in line])
        if cause == "no_answer":
            return ran_for, Message(
                "ollama.server.reason.no_answer", seconds=f"{self.timing.start_timeout:g}", output=said
            )
        if said:
            return ran_for, Message("ollama.server.reason.output", code=process.returncode, output=said)
        return ran_for, Message("ollama.server.reason.ended", code=process.returncode)


def answers(url: str) -> bool:
    """Whether an Ollama server answers ``/api/version`` at ``url`` now."""
    try:
        reply = httpx.get(url + "/api/version", timeout=2)
        return reply.status_code == 200 and isinstance(reply.json().get("version"), str)
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def _write_pid(path: Path, pid: int) -> None:
    """Record the process (its pid and start time), so a panel killed outright finds it at
    the next start; the start time tells it from a later process given the same pid."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return
    path.write_text(json.dumps({"pid": pid, "created": created}), encoding="utf-8")


def reap_leftover(pid_path: Path, log: ProcessLog) -> None:
    """Kill the process group of an ``ollama serve`` a killed panel left running (it holds the
    port), and wait until it is gone."""
    try:
        recorded = json.loads(pid_path.read_text(encoding="utf-8"))
        process = psutil.Process(int(recorded["pid"]))
        if process.create_time() != recorded["created"]:
            raise psutil.NoSuchProcess(process.pid)
    except (FileNotFoundError, ValueError, KeyError, TypeError, psutil.Error):
        pid_path.unlink(missing_ok=True)
        return
    log.note(f"supervisor: stopping the server (pid {process.pid}) that a killed panel left running")
    try:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except (ProcessLookupError, PermissionError, psutil.Error):
        pass
    pid_path.unlink(missing_ok=True)


class SupervisedServer:
    """The local Ollama as an ``ollama serve`` the panel runs (``OPEN1PANEL_AI_OLLAMA_SERVER_BIN``,
    ``ollama`` on the PATH by default)."""

    name: ClassVar[str] = "supervised"

    def __init__(self, settings: Mapping[str, str], environ: Mapping[str, str] | None = None) -> None:
        self._chosen = settings.get("ollama_server_provider") == self.name
        self.binary = settings.get("ollama_server_bin") or "ollama"
        self.folder = Path(settings["data_dir"]) / "ollama-server"
        self.timing = Timing.from_settings(settings)
        self._environ = dict(os.environ if environ is None else environ)
        self.log = ProcessLog(self.folder / "ollama.log")
        self._process: OllamaProcess | None = None
        self._lock = threading.RLock()

    def probe(self) -> None:
        if not self._chosen:
            raise ProviderUnavailable(
                Message("ollama.server.supervised.by_name"), Message("ollama.server.fix.choose_supervised")
            )
        if shutil.which(self.binary, path=self._environ.get("PATH")) is None:
            raise ProviderUnavailable(
                Message("ollama.server.supervised.no_program", program=self.binary[:200]),
                Message("ollama.server.fix.install_ollama"),
            )

    # -- settings -------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.folder / "settings.json"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {"values": {}, "running": True}
        return data if isinstance(data, dict) else {"values": {}, "running": True}

    def _save(self, **changes: Any) -> None:
        data = {**self._read(), **changes}
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        fd, temporary = tempfile.mkstemp(prefix=".settings.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file)
            os.replace(temporary, self._state_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def settings(self) -> dict[str, str]:
        stored = self._read().get("values")
        if not isinstance(stored, dict):
            return {}
        chosen = [uuid for value in stored.values() if isinstance(value, str) for uuid in value.split(",")]
        clean, _ = server_settings.validated(stored, chosen)
        return clean

    def inherited(self) -> dict[str, str]:
        found = {name: self._environ[name] for name in server_settings.BY_NAME if self._environ.get(name)}
        home = Path(self._environ.get("HOME") or Path.home())
        found.setdefault("OLLAMA_MODELS", str(home / ".ollama" / "models"))
        return found

    def write(self, values: Mapping[str, str]) -> None:
        self._save(values=dict(values))

    def environment(self) -> dict[str, str]:
        """The process's environment: the panel's, without its settings and secrets, and with
        the chosen settings over it."""
        env = supervision.without_panel_settings(self._environ, ENV_PREFIX)
        env.update(self.settings())
        return env

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._save(running=True)
            if self._process is not None and self._process.state()["status"] not in ("stopped", "error"):
                return
            self._launch()

    def stop(self) -> None:
        with self._lock:
            self._save(running=False)
            self._halt()

    def restart(self) -> None:
        with self._lock:
            self._save(running=True)
            self._halt()
            self._launch()

    def state(self) -> OllamaServerState:
        with self._lock:
            process = self._process
        if process is None:
            return supervision.stopped_state()
        return process.state()

    def logs(self, tail: int) -> list[str]:
        return self.log.tail(tail)

    @property
    def log_path(self) -> Path:
        """The log file, which the server page's live log tails."""
        return self.log.path

    def attach(self) -> None:
        with self._lock:
            if self._read().get("running", True) and self._process is None:
                self._launch()

    def detach(self) -> None:
        with self._lock:
            self._halt()

    def _launch(self) -> None:
        env = self.environment()
        url = server_settings.listen_url(env.get("OLLAMA_HOST"), "http://127.0.0.1:11434")
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log.note(f"supervisor: starting {self.binary} serve")
        self._process = OllamaProcess(
            [self.binary, "serve"], env, url, self.log, self.folder / "ollama.pid", self.timing, lambda: None
        )
        self._process.start()

    def _halt(self) -> None:
        if self._process is not None:
            self._process.stop()
            self.log.note("supervisor: stopped")
            self._process = None
