"""The stdio child: started with exactly the configured argv, environment and folder.

The child's stdout carries one JSON-RPC message per line; each complete line is handed to
``on_line`` as bytes. Its stderr is logged line by line under the ``child`` logger (the name
the supervisor looks for when it explains why a server stopped), each line cut at 8 KiB and
marked as cut, as :class:`open1panel_ai.mcp.logfile.LineSplitter` does for every log line.
Both streams are split in one pass over each chunk as it arrives: a long line is never searched
again as it grows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence

from open1panel_ai.mcp import logfile

child_log = logging.getLogger("child")


class ChildFailed(Exception):
    """The child could not be started; the text says why."""


class MessageLines:
    """Splits the child's stdout into messages, one per line, in one pass over each chunk.

    ``on_line(line, dropped)`` gets each line without its newline (and without a trailing
    ``\\r``) and how many bytes of it were left out because it was longer than ``limit``: a
    message that long is not kept whole, so it is dropped, and memory stays bounded.
    """

    __slots__ = ("on_line", "limit", "parts", "kept", "dropped")

    def __init__(self, on_line: Callable[[bytes, int], None], limit: int) -> None:
        self.on_line = on_line
        self.limit = limit
        self.parts: list[bytes] = []
        self.kept = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._keep(data, start, end)
            self._emit()
            start = end + 1
        if start < len(data):
            self._keep(data, start, len(data))

    def close(self) -> None:
        """Hand over the last line, even without its newline."""
        if self.parts or self.dropped:
            self._emit()

    def _keep(self, data: bytes, start: int, end: int) -> None:
        room = self.limit - self.kept
        if end - start > room:
            self.dropped += end - start - max(room, 0)
            end = start + max(room, 0)
        if end > start:
            self.parts.append(data[start:end] if start or end != len(data) else data)
            self.kept += end - start

    def _emit(self) -> None:
        line = self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)
        dropped = self.dropped
        self.parts, self.kept, self.dropped = [], 0, 0
        if line.endswith(b"\r") and not dropped:
            line = line[:-1]
        self.on_line(line, dropped)


class StderrLog:
    """Logs what the child writes to stderr, line by line, each cut at 8 KiB and marked."""

    def __init__(self) -> None:
        self.splitter = logfile.LineSplitter()

    def feed(self, data: bytes) -> None:
        for line in self.splitter.feed(data):
            self._log(line)

    def close(self) -> None:
        for line in self.splitter.end():
            self._log(line)

    @staticmethod
    def _log(line: str) -> None:
        line = line.rstrip()
        if line:
            child_log.info("%s", line)


class _Protocol(asyncio.SubprocessProtocol):
    def __init__(self, child: Child) -> None:
        self.child = child

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Before an early exit is reported. asyncio's stubs give every protocol's
        # connection_made a BaseTransport; a subprocess protocol's is a SubprocessTransport.
        self.child.transport = transport  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.child.stdout.feed(data)
        else:
            self.child.stderr.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.child.stdout.close()
            self.child.stdout_closed = True
            self.child._finish()
        elif fd == 2:
            self.child.stderr.close()

    def process_exited(self) -> None:
        self.child._exited()

    def connection_lost(self, exc: Exception | None) -> None:
        self.child.stdout_closed = True
        self.child._finish()


class Child:
    """One running stdio MCP server.

    ``on_line(line)`` gets each stdout line; ``on_exit(status)`` is called once when the
    process has exited and both of its output streams have been read to the end.
    """

    def __init__(self, on_line: Callable[[bytes], None], on_exit: Callable[[int | None], None], max_line: int) -> None:
        self._on_line = on_line
        self._on_exit = on_exit
        self.max_line = max_line
        self.stdout = MessageLines(self._stdout_line, max_line)
        self.stderr = StderrLog()
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.pid: int | None = None
        self.returncode: int | None = None
        self.stdout_closed = False
        self.gone = asyncio.get_running_loop().create_future()

    async def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> None:
        """Run ``argv`` with ``env`` as its whole environment, in ``cwd``, in this process group."""
        loop = asyncio.get_running_loop()
        try:
            self.transport, _ = await loop.subprocess_exec(
                lambda: _Protocol(self),
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env),
                cwd=cwd or None,
            )
        except FileNotFoundError:
            path = env.get("PATH", os.defpath)
            raise ChildFailed(f"cannot run {argv[0]!r}: no such program on PATH ({path}) or working folder") from None
        except PermissionError:
            raise ChildFailed(f"cannot run {argv[0]!r}: permission denied") from None
        except OSError as exc:
            raise ChildFailed(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        self.pid = self.transport.get_pid()
        # The stubs type every pipe as an optional BaseTransport; stdin, opened as a pipe
        # above, is a WriteTransport.
        self.stdin = self.transport.get_pipe_transport(0)  # type: ignore[assignment]

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.gone.done() and self.returncode is None

    def send(self, line: bytes) -> None:
        """Write one message (``line`` holds no newline) to the child's stdin."""
        if self.stdin is not None and not self.stdin.is_closing():
            self.stdin.write(line + b"\n")

    def unsent(self) -> int:
        """Bytes written to stdin that the child has not read yet."""
        if self.stdin is None or self.stdin.is_closing():
            return 0
        return self.stdin.get_write_buffer_size()

    def _stdout_line(self, line: bytes, dropped: int) -> None:
        if dropped:
            child_log.warning("a message on stdout was longer than %d bytes and was dropped", self.max_line)
        elif line.strip():
            self._on_line(line)

    def _exited(self) -> None:
        # What it wrote before exiting is read first, unless something it started keeps its
        # stdout open: then the exit counts after a moment anyway.
        self.returncode = self.transport.get_returncode() if self.transport else None
        asyncio.get_running_loop().call_later(0.5, self._finish, True)
        self._finish()

    def _finish(self, anyway: bool = False) -> None:
        if self.gone.done() or self.returncode is None or not (self.stdout_closed or anyway):
            return
        self.gone.set_result(self.returncode)
        self._on_exit(self.returncode)

    async def stop(self, grace: float = 2.0) -> None:
        """End the child as the stdio transport asks: close its stdin, then SIGTERM, then SIGKILL."""
        if self.transport is None or self.gone.done():
            return
        if self.stdin is not None:
            self.stdin.close()
        for sig, wait in ((None, grace), (signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            if sig is not None:
                try:
                    self.transport.send_signal(sig)
                except ProcessLookupError:
                    pass
            try:
                await asyncio.wait_for(asyncio.shield(self.gone), wait)
                break
            except TimeoutError:
                continue
        self.transport.close()
