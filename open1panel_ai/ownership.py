"""Which of the processes serving one data dir is the owner, the one that runs background work.

Several panel processes may share a data dir (see ``docs/scaling.md``). Tasks, MCP supervision,
the GPU history and the clean-ups must run exactly once, so only the process holding an
exclusive ``flock`` on ``owner.lock`` in the data dir runs them. The kernel drops the lock when
that process ends, however it ends; another process then takes it and starts that work as a
fresh start would.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = "owner.lock"
#: Seconds between two tries of a process waiting to become the owner.
TAKEOVER_INTERVAL = 0.5


class Ownership:
    """This process's claim on the data dir's owner lock.

    The lock file holds the process id of the current (or last) owner, for people and tests;
    the lock itself, not the file's content, decides who the owner is.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        # Opened without inheritance (Python's default), so no child process keeps the lock.
        #: None once released, for good.
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._held = False
        self._closing = threading.Event()
        self._waiter: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this process is the owner."""
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process is (now) the owner."""
        if self._held:
            return True
        fd = self._fd
        if fd is None:  # released for good
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def acquire_later(self, on_acquired: Callable[[], None]) -> None:
        """Wait in a daemon thread until the owner goes away, take the lock, then call
        ``on_acquired()`` in that thread. :meth:`release` stops the waiting.

        The thread never ends holding the lock by accident: when ``on_acquired()`` raises
        anything (``SystemExit`` included), the lock is released for another process to take."""

        def wait() -> None:
            while not self._closing.wait(TAKEOVER_INTERVAL):
                if self.try_acquire():
                    log.info("process %d is now the owner of %s", os.getpid(), self.path.parent)
                    try:
                        on_acquired()
                    except BaseException:
                        log.exception(
                            "process %d could not start as the owner of %s; it gives the owner lock up",
                            os.getpid(),
                            self.path.parent,
                        )
                        self.release()
                    return

        self._waiter = threading.Thread(target=wait, name="owner-takeover", daemon=True)
        self._waiter.start()

    def release(self) -> None:
        """Give up the lock (or stop waiting for it), for good; later calls do nothing."""
        if self._fd is None:
            return
        self._closing.set()
        if self._waiter is not None and self._waiter is not threading.current_thread():
            self._waiter.join(timeout=10)
        self._held = False
        os.close(self._fd)  # closing the last descriptor of the file releases the lock
        self._fd = None
