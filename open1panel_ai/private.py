"""The data dir is private: the folder 0700 and the files in it 0600.

It holds the admin token, the session secret and the SQLite store with every bridge token,
secret env value and domain credential, so nobody but the panel's own user may read it.
Installs made before this rule are repaired at start.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
#: The process-wide file creation mask of a panel that runs on its own (``open1panel-ai serve``).
UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing, and make it 0700 when this user owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _restrict(path, DIR_MODE)
    return path


def repair(data_dir: Path) -> None:
    """Make the data dir 0700 and every file and folder directly in it private to this user.

    Links are not followed, and what another user owns is left as it is (and logged): the
    panel never takes over or opens up a file it did not make."""
    private_dir(data_dir)
    for entry in os.scandir(data_dir):
        if entry.is_symlink():
            continue
        _restrict(Path(entry.path), DIR_MODE if entry.is_dir(follow_symlinks=False) else FILE_MODE)


def _restrict(path: Path, mode: int) -> None:
    info = os.lstat(path)
    if stat.S_IMODE(info.st_mode) & ~mode == 0:
        return
    if info.st_uid != os.geteuid():
        log.warning(
            "%s is mode %o and owned by uid %d, not this user; make it private (%o)",
            path,
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            mode,
        )
        return
    os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
    log.info("made %s private (mode %o)", path, stat.S_IMODE(info.st_mode) & mode)


def create_whole(path: Path, secret: str) -> bool:
    """Put ``secret`` at ``path`` (mode 0600) unless a file is there already; True if it did.

    The file appears whole (written beside it, then linked into place), so processes starting
    together never read it half written, and those that lose the race read the one that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(draft)
