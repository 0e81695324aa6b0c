"""A server's log file: written (and rotated) by its bridge, read here for tail and follow.

The bridge keeps the file under :data:`MAX_BYTES` with :data:`BACKUPS` older files beside it
(``<id>.log.1``, …). The supervisor adds its own short lines with :func:`note`.
"""

from __future__ import annotations

import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

MAX_BYTES = 1 << 20
BACKUPS = 2


def note(path: Path, text: str) -> None:
    """Append one line to the log, stamped like the bridge's own lines."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with open(path, "a", encoding="utf-8") as file:
        file.write(f"{stamp} {text}\n")


def tail(path: Path, count: int) -> list[str]:
    """The last ``count`` lines, reaching into the rotated files when the newest is short."""
    lines: deque[str] = deque(maxlen=count)
    for candidate in [Path(f"{path}.{n}") for n in range(BACKUPS, 0, -1)] + [path]:
        try:
            with open(candidate, encoding="utf-8", errors="replace") as file:
                for line in file:
                    lines.append(line.rstrip("\n"))
        except FileNotFoundError:
            continue
    return list(lines)


class Follower:
    """Reads what was appended to a log since the last call, across rotations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode = None
        self._offset = 0
        try:
            stat = os.stat(path)
            self._inode, self._offset = stat.st_ino, stat.st_size
        except FileNotFoundError:
            pass

    def read_new(self) -> list[str]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return []
        if stat.st_ino != self._inode or stat.st_size < self._offset:
            self._inode, self._offset = stat.st_ino, 0  # rotated: start the new file
        if stat.st_size == self._offset:
            return []
        with open(self.path, "rb") as file:
            file.seek(self._offset)
            data = file.read(stat.st_size - self._offset)
        end = data.rfind(b"\n") + 1  # leave a half-written line for next time
        self._offset += end
        return data[:end].decode(errors="replace").splitlines()
