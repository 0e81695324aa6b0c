"""Keeping a long-running child process up: status, restarts with backoff, and why it ended.

The machinery every supervised process of the panel shares (an MCP server's bridge, a local
``ollama serve``): one thread per process, so a slow or failing one never delays another. A
process that exits is restarted after :attr:`Timing.backoff` seconds, the delay doubling up to
:attr:`Timing.backoff_max`, at most :attr:`Timing.tries` times in a row; the count starts again
after :attr:`Timing.stable` seconds of stable running. A process out of tries ends in ``error``
with its ``last_error``, a few readable lines saying why. A program that cannot be run is
``error`` at once, before anything is spawned. Each process leads its own process group, and
stopping it kills the whole group, so nothing it started is left behind.

What a subclass supplies: how one run goes (:meth:`Supervisor.run_once`, which starts the
process, watches it and returns why it ended), whether its program can run at all
(:meth:`Supervisor.cannot_start`), and where its notes go (:meth:`Supervisor.note`).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, Self, TypeGuard, TypeVar

from hookspecs.process import ProcessState, ProcessStatus
from open1panel_ai.i18n import Message
from open1panel_ai.store import timestamp

log = logging.getLogger(__name__)

#: A reason quotes at most this many of the process's last lines, each cut to this many characters.
REASON_LINES = 4
REASON_WIDTH = 160
#: Any one value quoted in a ``last_error`` (a reason's output, a program's name, a path) is cut
#: at this many characters.
REASON_VALUE = 1000
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Timing:
    """How supervision paces itself. A subclass names the settings that set its values through
    :attr:`prefix` (``mcp_`` reads ``OPEN1PANEL_AI_MCP_BACKOFF`` and so on)."""

    prefix: ClassVar[str] = ""

    backoff: float = 5.0  # first restart delay
    backoff_max: float = 60.0  # the delay doubles up to this
    tries: int = 10  # restarts in a row before giving up
    stable: float = 30.0  # running this long resets the count
    start_timeout: float = 120.0  # a process not answering by then has failed to start
    stop_grace: float = 5.0  # SIGTERM, then SIGKILL after this

    def delay(self, failures: int) -> float:
        """The wait before restart number ``failures`` in a row."""
        return min(self.backoff * 2 ** (failures - 1), self.backoff_max)

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Self:
        """The timing whose fields ``settings`` sets (``<prefix><field>``, parsed as the
        field's default is), the defaults for the rest."""
        values: dict[str, Any] = {}
        for field in fields(cls):  # the fields only: the ClassVar prefix is no setting
            raw = settings.get(f"{cls.prefix}{field.name}")
            if raw is not None:
                parse: type = type(field.default)
                values[field.name] = parse(raw)
        return cls(**values)


TimingT = TypeVar("TimingT", bound=Timing)


def without_panel_settings(environ: Mapping[str, str], prefix: str) -> dict[str, str]:
    """``environ`` without the variables whose names start with ``prefix``: a child process
    gets the panel's environment but not its settings and secrets (the admin token among
    them)."""
    return {key: value for key, value in environ.items() if not key.startswith(prefix)}


def stopped_state() -> ProcessState:
    """The state of a process that is not running and never failed: what a provider reports
    for one it does not (or no longer) supervise."""
    return {"status": "stopped", "pid": None, "since": None, "restarts": 0, "last_error": None}


class Supervisor(Generic[TimingT]):
    """One process under supervision: its status, its restarts, and the thread that keeps it up.

    ``status`` is a :data:`~hookspecs.process.ProcessStatus` (``unhealthy`` only for subclasses
    that probe); ``last_error`` says why it last
    went down. ``on_change`` is called (from the supervising thread) whenever either changes.
    A subclass names its :class:`Timing` subclass (``Supervisor[MyTiming]``) to read its own
    settings from :attr:`timing`.
    """

    #: How the notes name the process: "the bridge ended (2 in a row)".
    described: ClassVar[str] = "the process"

    def __init__(self, thread_name: str, timing: TimingT, on_change: Callable[[], None]) -> None:
        self.timing = timing
        self._changed = on_change
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.process: subprocess.Popen | None = None
        self.status: ProcessStatus = "starting"
        self.since = timestamp()
        self.restarts = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    # -- what a subclass supplies ---------------------------------------------------------

    def run_once(self) -> tuple[float, str | None]:
        """Run the process until it exits (or is stopped); return how long it was running well
        and why it ended, in words (None when it was stopped)."""
        raise NotImplementedError

    def cannot_start(self) -> str | None:
        """Why the process cannot be run at all (no such program), or None."""
        return None

    def note(self, text: str) -> None:
        """Write one of the supervisor's notes into the process's log."""

    def restarts_allowed(self) -> bool:
        """Whether a process that ended is started again (a ``never`` policy says no)."""
        return True

    # -- what others ask ------------------------------------------------------------------

    def start(self) -> None:
        """Start supervising; a program that cannot be run is ``error`` at once instead."""
        reason = self.cannot_start()
        if reason is not None:
            self.note(f"supervisor: not started: {reason}")
            self.set_status("error", reason)
            return
        self._thread.start()

    def stop(self, join_timeout: float = 15.0) -> None:
        """Stop the process and its whole process group; returns when they are gone."""
        self._stop.set()
        self.wake()
        self.set_status("stopping")
        with self._lock:
            process = self.process
        if process is not None:
            # Stopped from here rather than by the thread, which may be waiting on a probe.
            self.terminate(process)
        if self._thread.ident is not None:  # a process that could not start has no thread
            self._thread.join(join_timeout)
        self.kill_group()
        self.set_status("stopped")

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        """Cut short any wait of :meth:`run_once` (a subclass that waits overrides this)."""

    def state(self) -> ProcessState:
        """The process's state measured now (``pid`` is None unless the process lives)."""
        with self._lock:
            process = self.process
            return {
                "status": self.status,
                "pid": process.pid if process and process.poll() is None else None,
                "since": self.since,
                "restarts": self.restarts,
                "last_error": self.last_error,
            }

    # -- the supervising thread -----------------------------------------------------------

    def set_status(self, status: ProcessStatus, error: str | None = None) -> None:
        error = bounded(error)
        with self._lock:
            changed = status != self.status or (error is not None and error != self.last_error)
            if status != self.status:
                self.since = timestamp()
            self.status = status
            if error is not None:
                self.last_error = error
        if changed:
            self._changed()

    def spawn(self, argv: list[str], env: Mapping[str, str], cwd: str | None = None) -> subprocess.Popen:
        """Start ``argv`` as the supervised process, leading a new process group, its output
        (stdout and stderr together) on a pipe for the caller to read."""
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        with self._lock:
            self.process = process
        return process

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            ran_for, error = self.run_once()
            if self._stop.is_set():
                return
            if ran_for >= self.timing.stable:
                failures = 0
            failures += 1
            self.note(f"supervisor: {self.described} ended ({failures} in a row)")
            if not self.restarts_allowed() or failures > self.timing.tries:
                self.set_status("error", error)
                return
            delay = self.timing.delay(failures)
            with self._lock:
                self.restarts += 1
            self.set_status("restarting", error)
            self.note(f"supervisor: restarting in {delay:g} s")
            if self._stop.wait(delay):
                return
            missing = self.cannot_start()  # uninstalled meanwhile: no use trying again
            if missing is not None:
                self.note(f"supervisor: not started: {missing}")
                self.set_status("error", missing)
                return

    def terminate(self, process: subprocess.Popen) -> None:
        """SIGTERM to the process's group, then SIGKILL after :attr:`Timing.stop_grace`."""
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(self.timing.stop_grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill_group()

    def kill_group(self) -> None:
        """SIGKILL to the process's group, whatever of it is left, and reap the process."""
        with self._lock:
            process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
            log.warning("%s (pid %d) did not exit", self._thread.name, process.pid)


def bounded(error: str | None) -> str | None:
    """``error`` with every value it quotes cut at :data:`REASON_VALUE` characters (plain text
    as a whole), so that a status, and every event and list that carries it, stays small
    whatever a process wrote or a definition holds."""
    if isinstance(error, Message):

        def long(value: object) -> TypeGuard[str]:
            return isinstance(value, str) and len(value) > REASON_VALUE

        if not any(map(long, error.params.values())):
            return error
        return Message(
            error.key, **{name: _shortened(value) if long(value) else value for name, value in error.params.items()}
        )
    if isinstance(error, str) and len(error) > REASON_VALUE:
        return _shortened(error)
    return error


def _shortened(text: str) -> str:
    return text[: REASON_VALUE - 1].rstrip() + "…"


def readable(line: str) -> str:
    """A line a process wrote, as a reason quotes it: without terminal colours or control
    characters, and cut at :data:`REASON_WIDTH` characters."""
    line = _TERMINAL_CODES.sub("", line).strip()
    return line if len(line) <= REASON_WIDTH else line[: REASON_WIDTH - 1].rstrip() + "…"


def last_lines(lines: list[str]) -> str:
    """The last :data:`REASON_LINES` non-empty lines of ``lines``, made readable, one text."""
    said = [readable(line) for line in lines]
    return "\n".join([line for line in said if line][-REASON_LINES:])
