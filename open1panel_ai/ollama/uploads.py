"""Uploaded GGUF files, streamed to the panel's data folder without filling its disk.

An upload is written chunk by chunk, hashed as it goes and never held in memory. A full disk
breaks more than the upload (the panel's database lives on it too), so every chunk is written
only while the disk keeps a margin free, counting what the uploads under way still need: an
upload that gives its length reserves it all when it starts; one sent in chunks (no
``Content-Length``) holds only the chunk it is writing. An upload that does not fit is
answered 507 (before it is read, when its length says so) and its partial file is removed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from open1panel_ai import errors
from open1panel_ai.i18n import Message, human_bytes

CHUNK = 1 << 20
#: With no margin set, the disk keeps this much free, or a twentieth of it on a smaller disk.
MARGIN_CAP = 1 << 30
MARGIN_SHARE = 20


class UploadFolder:
    """The folder uploads are written to, and the space the uploads under way reserve there.

    :param margin: bytes the disk must keep free; None for the default (the smaller of
        :data:`MARGIN_CAP` and a twentieth of the disk).
    """

    def __init__(self, folder: Path, margin: int | None = None) -> None:
        self.folder = folder
        self._margin = margin
        self._lock = threading.Lock()
        self._reserved: dict[object, int] = {}

    def margin(self, total: int) -> int:
        """The bytes to keep free on a disk of ``total`` bytes."""
        return self._margin if self._margin is not None else min(MARGIN_CAP, total // MARGIN_SHARE)

    def save(self, stream: BinaryIO, length: int | None) -> tuple[Path, str, int]:
        """Write an uploaded body of ``length`` bytes (None: sent in chunks, length unknown)
        to the folder, hashing as it goes.

        :return: the file, its digest (``sha256:<hex>``) and its size.
        :raise errors.InsufficientStorage: it does not fit while keeping the margin free;
            nothing of it is left on disk.
        :raise errors.BadRequest: it is empty, or shorter than its length.
        """
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        upload = object()
        with self._lock:
            free, margin, others = self._room(upload)
            if length is not None and length > free - margin - others:
                raise errors.InsufficientStorage(
                    Message(
                        "ollama.import.error.upload_too_large",
                        size=human_bytes(length),
                        room=human_bytes(max(0, free - margin - others)),
                        free=human_bytes(free),
                        margin=human_bytes(margin),
                        reserved=human_bytes(others),
                    ),
                    details={"needed": length, "free": free, "margin": margin, "reserved": others},
                )
            self._reserved[upload] = length or 0
        hasher = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".gguf", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    self._make_room(upload, length, size, len(chunk))
                    hasher.update(chunk)
                    try:
                        out.write(chunk)
                        out.flush()
                    except OSError as exc:
                        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                            raise
                        raise self._full(size) from None
                    size += len(chunk)
                    with self._lock:
                        # Written: the disk counts it now. What is still to come stays reserved.
                        self._reserved[upload] = max(0, length - size) if length is not None else 0
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        finally:
            with self._lock:
                self._reserved.pop(upload, None)
        if size == 0 or (length is not None and size != length):
            Path(name).unlink(missing_ok=True)
            raise errors.BadRequest(
                Message("ollama.import.error.incomplete"), code="incomplete_upload", details={"received": size}
            )
        return Path(name), "sha256:" + hasher.hexdigest(), size

    def _room(self, upload: object) -> tuple[int, int, int]:
        """Free bytes on the disk, the margin to keep, and what other uploads reserve there.
        Call with the lock held."""
        usage = shutil.disk_usage(self.folder)
        others = sum(bytes_ for owner, bytes_ in self._reserved.items() if owner is not upload)
        return usage.free, self.margin(usage.total), others

    def _make_room(self, upload: object, length: int | None, written: int, chunk: int) -> None:
        """Reserve the next ``chunk`` bytes of ``upload``, or refuse it with 507 when the disk
        would keep less than the margin free beside the other uploads' reservations. An upload
        of known length needs room for all it still has to send."""
        needed = length - written if length is not None else chunk
        with self._lock:
            free, margin, others = self._room(upload)
            if max(needed, chunk) > free - margin - others:
                raise self._full(written, free, margin, others)
            self._reserved[upload] = max(needed, chunk)

    def _full(
        self, received: int, free: int | None = None, margin: int | None = None, others: int = 0
    ) -> errors.InsufficientStorage:
        if free is None or margin is None:
            usage = shutil.disk_usage(self.folder)
            free, margin = usage.free, self.margin(usage.total)
        return errors.InsufficientStorage(
            Message(
                "ollama.import.error.upload_no_room",
                received=human_bytes(received),
                free=human_bytes(free),
                margin=human_bytes(margin),
                reserved=human_bytes(others),
            ),
            details={"received": received, "free": free, "margin": margin, "reserved": others},
        )
