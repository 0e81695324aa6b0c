"""A server's log file: written by its bridge and its supervisor, read here for tail and follow.

The log stays bounded whatever a server writes:

- every line keeps at most :data:`LINE_LIMIT` bytes (8 KiB) of text; a longer one keeps its
  first 8 KiB and ends with :data:`CUT_MARK`, and the rest of it is dropped;
- a file never grows past :data:`MAX_BYTES`: a write that would pass it first rotates the file
  (:data:`BACKUPS` older files beside it, ``<id>.log.1``, …), so a server's log holds at most
  ``(BACKUPS + 1) * MAX_BYTES`` bytes;
- every writer (the bridge, for its child and itself, and the panel's supervisor, for its notes
  and what the bridge process prints) appends and rotates under one lock, ``<id>.log.lock``,
  so none of them writes on into a file another has rotated away.

Reading is bounded too: :func:`tail` answers at most :data:`TAIL_BYTES`, whatever the files
hold (a log written before these bounds included), and :class:`Follower` holds the file it
reads open, so the lines written just before a rotation are still read.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import io
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

#: The bytes of text one log line keeps; a longer line is cut there and marked.
LINE_LIMIT = 8 * 1024
#: What ends a line that was cut.
CUT_MARK = " …[line cut at 8 KiB]"
MAX_BYTES = 1 << 20
BACKUPS = 2
#: The most text (UTF-8 bytes, a newline counted per line) one :func:`tail` answers.
TAIL_BYTES = 512 * 1024
#: The most text one live ``mcp_log`` event carries; more new lines go out in several events.
EVENT_BYTES = 256 * 1024
#: Room beside a line's text for its stamp and source, which a log record adds.
PREFIX_ROOM = 128
_BLOCK = 64 * 1024


def cut(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` when it fits in ``limit`` bytes of UTF-8, else its first ``limit`` bytes (never
    half a character) followed by :data:`CUT_MARK`. Costs what ``limit`` does, not ``text``."""
    if len(text) * 4 <= limit:
        return text
    head = text[:limit].encode("utf-8", "replace")
    if len(text) <= limit and len(head) <= limit:
        return text
    return head[:limit].decode("utf-8", "ignore") + CUT_MARK


def decode_line(data: bytes | bytearray, limit: int = LINE_LIMIT) -> str:
    """One line's bytes (without its newline) as text, cut at ``limit`` bytes and marked."""
    if len(data) <= limit:
        return bytes(data).decode("utf-8", "replace")
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(bytes(data[:limit]), final=False) + CUT_MARK  # a split character goes


class LineSplitter:
    """Splits a stream of bytes into lines in linear time, each cut at ``limit`` bytes.

    Only the start of the current line is kept (``limit`` bytes at most), never a growing
    buffer: a line found too long is given out at once, cut and marked, and the rest of it is
    dropped up to its newline."""

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self._head = bytearray()
        self._dropping = False  # the current line was given out cut: drop up to its newline

    def feed(self, chunk: bytes) -> list[str]:
        """The lines ``chunk`` completes (or cuts)."""
        lines = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            stop = len(chunk) if end < 0 else end
            if not self._dropping:
                room = self.limit + 1 - len(self._head)
                self._head += chunk[start : min(stop, start + room)]
                if len(self._head) > self.limit:
                    lines.append(decode_line(self._head, self.limit))
                    self._head.clear()
                    self._dropping = True
            if end < 0:
                return lines
            if self._dropping:
                self._dropping = False
            else:
                lines.append(decode_line(self._head, self.limit))
                self._head.clear()
            start = end + 1

    def end(self) -> list[str]:
        """The last line, when the stream ended without its newline."""
        last = [] if self._dropping or not self._head else [decode_line(self._head, self.limit)]
        self._head.clear()
        self._dropping = False
        return last


class _Lock:
    """The log's lock file, ``<log>.lock``: writers hold it exclusively to append or rotate,
    readers shared to read the rotated files as one."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)

    @contextlib.contextmanager
    def held(self, shared: bool = False) -> Iterator[None]:
        fcntl.flock(self.fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Hold the log's lock shared: no writer rotates it meanwhile. A log whose folder does not
    exist has nothing to read and needs no lock."""
    try:
        lock = _Lock(path)
    except FileNotFoundError:
        yield
        return
    try:
        with lock.held(shared=True):
            yield
    finally:
        lock.close()


def rotated(path: Path, backups: int = BACKUPS) -> list[Path]:
    """The rotated files of ``path``, youngest first (``<log>.1``, ``<log>.2``, …)."""
    return [Path(f"{path}.{n}") for n in range(1, backups + 1)]


class Writer:
    """Appends text to one log, rotating it first when the write would make the file pass
    ``max_bytes``. Safe across threads and processes: each write takes the log's lock, and
    follows the file by its name when another writer rotated it."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._mutex = threading.Lock()
        self._lock: _Lock | None = None
        self._fd: int | None = None
        self._inode: int | None = None

    def write(self, text: str) -> None:
        """Append ``text`` (whole lines); more than a file holds is cut to what it holds."""
        data = text.encode("utf-8", "replace")
        if len(data) > self.max_bytes:
            data = data[: self.max_bytes - 1] + b"\n"
        with self._mutex:
            if self._lock is None:
                self._lock = _Lock(self.path)
            with self._lock.held():
                fd, size = self._open()
                if size and size + len(data) > self.max_bytes:
                    self._rotate()
                    fd, _ = self._open()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]

    def _open(self) -> tuple[int, int]:
        """Open the file the log's name now points to (again, after a rotation); its
        descriptor and size."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None
        if self._fd is None or stat is None or stat.st_ino != self._inode:
            self._close_file()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            self._fd = fd
            stat = os.fstat(fd)
            self._inode = stat.st_ino
            return fd, stat.st_size
        return self._fd, stat.st_size

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        names = [self.path, *rotated(self.path, self.backups)]
        for younger, older in reversed(list(zip(names, names[1:], strict=False))):
            with contextlib.suppress(FileNotFoundError):
                os.replace(younger, older)
        self._close_file()

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._inode = None

    def close(self) -> None:
        with self._mutex:
            self._close_file()
            if self._lock is not None:
                self._lock.close()
                self._lock = None


class Handler(logging.Handler):
    """A logging handler that writes each record to the log through a :class:`Writer`, every
    line of it (a traceback has several) cut at :data:`LINE_LIMIT` plus room for its stamp."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        super().__init__()
        self.writer = Writer(path, max_bytes, backups)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.writer.write("".join(f"{cut(line, LINE_LIMIT + PREFIX_ROOM)}\n" for line in text.split("\n")))
        except Exception:  # noqa: BLE001 - logging must never stop the bridge
            self.handleError(record)

    def close(self) -> None:
        self.writer.close()
        super().close()


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def note(path: Path, text: str) -> None:
    """Append one line to the log, stamped like the bridge's own lines, cut like every line."""
    writer = Writer(path)
    try:
        writer.write(f"{stamp()} {cut(text)}\n")
    finally:
        writer.close()


def copy_lines(stream: io.BufferedIOBase, path: Path) -> None:
    """Write each line read from ``stream`` (what a process prints) into the log, cut like
    every line, until the stream ends."""
    splitter, writer = LineSplitter(), Writer(path)
    try:
        while chunk := stream.read1(_BLOCK):
            lines = splitter.feed(chunk)
            if lines:
                writer.write("".join(f"{line}\n" for line in lines))
        if rest := splitter.end():
            writer.write(f"{rest[0]}\n")
    finally:
        writer.close()
        stream.close()


def tail(path: Path, count: int, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The last ``count`` lines and at most ``max_bytes`` of text (UTF-8, one byte per line for
    its newline), each cut at :data:`LINE_LIMIT`, reaching into the rotated files when the
    newest is short. Read backwards from the end: the cost follows the answer, not the files."""
    newest_first: list[str] = []
    budget = max_bytes
    with _reading(path):
        for candidate in [path, *rotated(path)]:
            for line in _lines_backwards(candidate):
                size = len(line.encode("utf-8", "replace")) + 1
                if len(newest_first) >= count or size > budget:
                    return newest_first[::-1]
                budget -= size
                newest_first.append(line)
    return newest_first[::-1]


def _lines_backwards(path: Path) -> Iterator[str]:
    """The lines of ``path``, last first, each cut at :data:`LINE_LIMIT`."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below, after the last line is read
    except FileNotFoundError:
        return
    with file:
        end = file.seek(0, os.SEEK_END)
        if end == 0:
            return
        file.seek(end - 1)
        if file.read(1) == b"\n":
            end -= 1  # the newline ends the last line; no line starts after it
        line_end = scanned = end
        while scanned > 0:
            start = max(0, scanned - _BLOCK)
            file.seek(start)
            block = file.read(scanned - start)
            newline = block.rfind(b"\n")
            while newline >= 0:
                yield _read_line(file, start + newline + 1, line_end)
                line_end = start + newline
                newline = block.rfind(b"\n", 0, newline)
            scanned = start
        yield _read_line(file, 0, line_end)


def _read_line(file: BinaryIO, start: int, end: int) -> str:
    file.seek(start)
    return decode_line(file.read(min(end - start, LINE_LIMIT + 1)))


def batches(lines: list[str], max_bytes: int = EVENT_BYTES) -> Iterator[list[str]]:
    """``lines`` in order, in groups of at most ``max_bytes`` of text each (one line at least)."""
    group: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode("utf-8", "replace")) + 1
        if group and size + length > max_bytes:
            yield group
            group, size = [], 0
        group.append(line)
        size += length
    if group:
        yield group


class Follower:
    """Reads what was appended to a log since the last call, across rotations.

    The file being read is held open: what was written to it just before it was rotated is
    still read, then the files rotated after it (whole), then the new file from its start."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._splitter = LineSplitter()
        self._file = self._open(at_end=True)

    def _open(self, at_end: bool) -> BinaryIO | None:
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - held until the next rotation
        except FileNotFoundError:
            return None
        if at_end:
            file.seek(0, os.SEEK_END)
        return file

    def read_new(self) -> list[str]:
        """The whole lines written since the last call (a half-written one waits)."""
        if self._file is None:
            self._file = self._open(at_end=False)  # it appeared since: all of it is new
            if self._file is None:
                return []
        lines = self._drain(self._file)
        if not self._rotated(self._file):
            return lines
        with _reading(self.path):  # no writer rotates while the files are read as one
            lines += self._drain(self._file)
            lines += self._splitter.end()
            inode = os.fstat(self._file.fileno()).st_ino
            self._file.close()
            for younger in self._rotated_after(inode):
                try:
                    with open(younger, "rb") as file:
                        lines += self._drain(file)
                except FileNotFoundError:
                    continue
                lines += self._splitter.end()
            self._file = self._open(at_end=False)
            if self._file is not None:
                lines += self._drain(self._file)
        return lines

    def _drain(self, file: BinaryIO) -> list[str]:
        lines = []
        while chunk := file.read(_BLOCK):
            lines += self._splitter.feed(chunk)
        return lines

    def _rotated(self, held: BinaryIO) -> bool:
        """Whether the log's name now points to another file than ``held``."""
        try:
            return os.stat(self.path).st_ino != os.fstat(held.fileno()).st_ino
        except FileNotFoundError:
            return False  # between a rotation and the next write: the next call sees it

    def _rotated_after(self, inode: int) -> list[Path]:
        """The rotated files younger than the one with ``inode``, oldest first; all of them when
        it was rotated away entirely."""
        older_first = rotated(self.path)[::-1]
        for index, candidate in enumerate(older_first):
            try:
                if os.stat(candidate).st_ino == inode:
                    return older_first[index + 1 :]
            except FileNotFoundError:
                continue
        return older_first

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
