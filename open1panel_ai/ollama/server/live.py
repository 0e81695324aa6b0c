"""The server page's live side: the local server's state and its log, pushed over Socket.IO.

- Topic ``ollama:server``, event ``ollama_server``: ``{"state": ...}`` (as ``GET /ollama/server``
  gives it, with ``last_error_i18n``) each time the state changes. The state is read every
  :data:`STATE_INTERVAL` seconds, and at once after the panel starts, stops or restarts the
  server, only while somebody is subscribed.
- Topic ``ollama:server:logs``, event ``ollama_server_log``: ``{"lines": [...], "skipped": n}``,
  the lines the server's log got since the last event; ``skipped`` is more than 0 when lines
  were left out before them (a burst past the rate, or a log file grown too fast to read).
  The log is followed only while somebody is subscribed, and the follower stops when the last
  one leaves: the supervised server's log file is tailed (a provider's ``log_path``), a systemd
  unit's journal is read from ``journalctl --follow`` (a provider's ``follow_command()``, an
  argv list, never a shell).

Both are bounded whatever the server writes: a line keeps at most :data:`LINE_LIMIT` bytes,
and at most :data:`MAX_LINES_PER_SECOND` lines go out per second; the older lines of a burst
past that are skipped and counted in ``skipped``. Each panel process follows for its own
subscribers, so events are published ``local``.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from open1panel_ai import errors, i18n

if TYPE_CHECKING:
    from open1panel_ai.realtime import Realtime

log = logging.getLogger(__name__)

STATE_TOPIC = "ollama:server"
LOG_TOPIC = "ollama:server:logs"
STATE_EVENT = "ollama_server"
LOG_EVENT = "ollama_server_log"
#: Seconds between two reads of the server's state while somebody watches it.
STATE_INTERVAL = 2.0
#: Seconds between two log events at most.
TICK = 0.5
#: The bytes of text one line keeps; the rest of a longer line is dropped.
LINE_LIMIT = 8 * 1024
#: The most log lines sent per second; the older lines of a burst past that are skipped.
MAX_LINES_PER_SECOND = 200
#: The most bytes read from a log file per tick; a log growing faster is skipped ahead.
READ_LIMIT = 1 << 20


def printable(data: bytes) -> str:
    """A line's bytes as text the page shows: cut at :data:`LINE_LIMIT` bytes, control
    characters (terminal colours among them) replaced."""
    text = data[:LINE_LIMIT].decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() or ch == "\t" else "\ufffd" for ch in text)


class _Lines:
    """Splits a byte stream into lines, keeping at most :data:`LINE_LIMIT` bytes of the one
    being read, so a line without an end cannot grow the memory."""

    def __init__(self) -> None:
        self._head = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        lines = []
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            self._head += part[: max(0, LINE_LIMIT - len(self._head))]
            lines.append(printable(bytes(self._head).rstrip(b"\r")))
            self._head.clear()
        self._head += parts[-1][: max(0, LINE_LIMIT - len(self._head))]
        return lines


class FileFollower:
    """The lines appended to a log file since the last read, across a rotation (the file
    renamed away and a new one started): what was written to the old file before it went is
    still read from the handle held open."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lines = _Lines()
        self._file = self._open(at_end=True)
        self.skipped = 0

    def _open(self, at_end: bool) -> io.BufferedReader | None:
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - held until the next rotation or close
        except FileNotFoundError:
            return None
        if at_end:
            file.seek(0, os.SEEK_END)
        return file

    def read_new(self) -> list[str]:
        if self._file is None:
            self._file = self._open(at_end=False)  # it appeared since: all of it is new
            if self._file is None:
                return []
        lines = self._drain(self._file)
        try:
            rotated = os.stat(self.path).st_ino != os.fstat(self._file.fileno()).st_ino
        except FileNotFoundError:
            rotated = False  # between a rotation and the next write
        if rotated:
            self._file.close()
            self._file = self._open(at_end=False)
            if self._file is not None:
                lines += self._drain(self._file)
        return lines

    def _drain(self, file: io.BufferedReader) -> list[str]:
        size = os.fstat(file.fileno()).st_size
        position = file.tell()
        if size - position > READ_LIMIT:
            self.skipped += 1  # far behind: what cannot be sent in time is not read at all
            file.seek(size - READ_LIMIT)
            self._lines = _Lines()
            file.readline(LINE_LIMIT)  # start at a line's start
        return self._lines.feed(file.read(READ_LIMIT))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class CommandFollower:
    """The lines a following command (``journalctl --follow``) prints, read by a thread of its
    own into a bounded backlog. The command runs without a shell, in a process group of its
    own, and is ended (the whole group) by :meth:`close`."""

    def __init__(self, argv: list[str]) -> None:
        self._process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._most = int(MAX_LINES_PER_SECOND * TICK)
        self._backlog: collections.deque[str] = collections.deque(maxlen=self._most)
        # stdout=PIPE with the default buffering: a BufferedReader, which reads with read1.
        self._stdout = cast(io.BufferedReader, self._process.stdout)
        self.skipped = 0
        self._reader = threading.Thread(target=self._read, name="ollama-server-journal", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _read(self) -> None:
        lines = _Lines()
        while chunk := self._stdout.read1(64 * 1024):
            new = lines.feed(chunk)
            with self._lock:
                overflow = max(0, len(self._backlog) + len(new) - self._most)
                self.skipped += overflow
                self._backlog.extend(new)

    def read_new(self) -> list[str]:
        with self._lock:
            lines = list(self._backlog)
            self._backlog.clear()
        return lines

    def running(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
                self._process.wait(2)
            except (ProcessLookupError, PermissionError):
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(2)
        self._reader.join(2)  # the pipe ended with the process
        self._stdout.close()


def open_follower(provider: Any) -> FileFollower | CommandFollower | None:
    """How the log of ``provider`` is followed: its ``follow_command()`` run, or its
    ``log_path`` tailed; None for a provider that offers neither."""
    command = getattr(provider, "follow_command", None)
    if callable(command):
        return CommandFollower(command())
    path = getattr(provider, "log_path", None)
    if path is not None:
        return FileFollower(Path(path))
    return None


class ServerLive:
    """Runs the state watch and the log follower of the server page while pages listen.

    ``provider`` returns the provider that runs the local server (raising an ``ApiError``
    when none does)."""

    def __init__(self, realtime: Realtime, provider: Callable[[], Any]) -> None:
        self._realtime = realtime
        self._provider = provider
        self._lock = threading.Lock()
        self._stops: dict[str, threading.Event] = {}
        self._wake = threading.Event()
        self._closed = False
        realtime.watch(STATE_TOPIC, self._listeners_changed)

    def wake(self) -> None:
        """The panel changed the server (start, stop, restart, an apply): read its state now."""
        self._wake.set()

    def _listeners_changed(self, topic: str, listeners: int) -> None:
        runs = {STATE_TOPIC: self._watch_state, LOG_TOPIC: self._follow_log}
        if topic not in runs:
            return
        with self._lock:
            stop = self._stops.get(topic)
            if listeners > 0 and stop is None and not self._closed:
                stop = self._stops[topic] = threading.Event()
                threading.Thread(
                    target=self._run,
                    args=(topic, runs[topic], stop),
                    name=f"ollama-server-{topic.rsplit(':', 1)[-1]}",
                    daemon=True,
                ).start()
            elif listeners <= 0 and stop is not None:
                stop.set()
                del self._stops[topic]

    def _run(self, topic: str, run: Callable[[threading.Event], None], stop: threading.Event) -> None:
        try:
            run(stop)
        except Exception:
            log.exception("the live %s of the local Ollama server stopped", topic)
        finally:
            with self._lock:  # however it ends, the next subscriber gets a run of its own
                if self._stops.get(topic) is stop:
                    del self._stops[topic]

    def _watch_state(self, stop: threading.Event) -> None:
        last = None
        while not stop.is_set():
            try:
                state = self._provider().state()
            except errors.ApiError:
                state = None
            key = (
                None
                if state is None
                else (state.get("status"), state.get("pid"), state.get("restarts"), str(state.get("last_error")))
            )
            if key != last:
                last = key
                public = None if state is None else {**state, "last_error_i18n": i18n.public(state.get("last_error"))}
                self._realtime.publish(STATE_EVENT, {"state": public}, [STATE_TOPIC], local=True)
            self._wake.wait(STATE_INTERVAL)
            self._wake.clear()

    def _follow_log(self, stop: threading.Event) -> None:
        try:
            follower = open_follower(self._provider())
        except errors.ApiError:
            return  # not managed here: there is no log to follow
        except OSError as exc:
            log.warning("cannot follow the log of the local Ollama server: %s", exc)
            return
        if follower is None:
            return
        per_tick = int(MAX_LINES_PER_SECOND * TICK)
        try:
            while not stop.wait(TICK):
                lines = follower.read_new()
                skipped, follower.skipped = follower.skipped, 0
                if len(lines) > per_tick:
                    skipped += len(lines) - per_tick
                    lines = lines[-per_tick:]
                if lines or skipped:
                    self._realtime.publish(LOG_EVENT, {"lines": lines, "skipped": skipped}, [LOG_TOPIC], local=True)
                if isinstance(follower, CommandFollower) and not follower.running():
                    return  # journalctl ended (the unit's journal cannot be read)
        finally:
            follower.close()

    def following(self) -> bool:
        """Whether a log follower runs now."""
        with self._lock:
            return LOG_TOPIC in self._stops

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for stop in self._stops.values():
                stop.set()
            self._stops.clear()
        self._wake.set()
