"""The ``ollama.import`` task: a local GGUF file becomes an Ollama model.

The flow is Ollama's own: hash the file, ask whether the server has that blob (``HEAD``),
upload it if not, then create the model from it (``files`` on 0.5.5 and later, a
``FROM @sha256:...`` modelfile before). Files come from a browser upload, streamed to the data
dir, or from the configured import folder; nothing outside that folder is read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from open1panel_ai import errors
from open1panel_ai.tasks import TaskContext, TaskError, TaskInterrupted

KIND = "ollama.import"
CHUNK = 1 << 20
#: The first Ollama release whose create takes ``files``.
FILES_VERSION = (0, 5, 5)


def version_tuple(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def modelfile_value(value: Any) -> str:
    """A parameter value as a modelfile writes it: numbers bare, booleans in Go's spelling,
    text in double quotes (the import schema keeps quotes and line breaks out of it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value) + '"'


def inside_folder(folder: str | None, relative: str) -> Path:
    """The file ``relative`` names inside the import ``folder``; BadRequest when there is no
    folder, the path leaves it (``..``, an absolute path elsewhere, a symlink out) or no such
    file exists."""
    if not folder:
        raise errors.BadRequest("No import folder is configured; set OPEN1PANEL_AI_OLLAMA_IMPORT_DIR "
                                "or upload the file instead.", code="no_import_folder")
    if ".." in Path(relative).parts:
        raise errors.BadRequest("The path may not contain '..'.", code="path_outside_import_folder",
                                details={"path": relative})
    root = Path(folder).resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise errors.BadRequest(f"The path must be inside the import folder {root}.",
                                code="path_outside_import_folder", details={"path": relative})
    if not candidate.is_file():
        raise errors.NotFound(f"There is no file {relative!r} in the import folder.",
                              details={"path": relative})
    return candidate


def save_upload(stream: BinaryIO, folder: Path, length: int | None) -> tuple[Path, str, int]:
    """Write an uploaded body to ``folder`` chunk by chunk, hashing as it goes.

    :return: the file, its digest (``sha256:<hex>``) and its size.
    """
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if length is not None and length > free:
        raise errors.InsufficientStorage(
            f"The upload is {length} bytes but the panel's data folder has {free} free; free "
            "space there, or put the file in the import folder instead.",
            details={"needed": length, "free": free})
    hasher = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".gguf", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    if size == 0 or (length is not None and size != length):
        Path(name).unlink(missing_ok=True)
        raise errors.BadRequest("The upload is empty or was cut short; send the GGUF file again.",
                                code="incomplete_upload", details={"received": size})
    return Path(name), "sha256:" + hasher.hexdigest(), size


class ImportTask:
    """Runs GGUF imports for the Ollama service."""

    def __init__(self, service: Any) -> None:
        self._service = service

    def run(self, ctx: TaskContext) -> None:
        params = ctx.params
        path = Path(params["path"])
        try:
            self._import(ctx, params, path)
        except BaseException:
            # A failed or interrupted import keeps its upload for Retry; a cancelled one is
            # not coming back (unless the panel is only stopping, to resume at its next start).
            if ctx.cancelled and not ctx.panel_stopping:
                self._forget_upload(params, path)
            raise
        self._forget_upload(params, path)

    def _import(self, ctx: TaskContext, params: dict, path: Path) -> None:
        try:
            url = self._service.endpoint(params["endpoint"])["url"]
            provider = self._service.provider()
            if not path.is_file():
                raise TaskError(f"The file {path.name} is gone; upload it again.")
            size = path.stat().st_size
            digest = params.get("digest")
            total = size if digest else 2 * size
            if not digest:
                digest = self._hash(ctx, path, size, total)
            ctx.progress(completed=total - size, total=total, message="checking blob")
            if not provider.blob_exists(url, digest):
                provider.upload_blob(url, digest, self._chunks(ctx, path, total - size, total), size)
            ctx.progress(completed=total, total=total, message="creating model")
            self._create(ctx, provider, url, params, digest)
        except errors.UpstreamUnavailable as exc:
            # Ollama went away or dropped the connection: Retry is expected to work.
            raise TaskInterrupted(exc.message, exc.details) from None
        except errors.ApiError as exc:
            raise TaskError(exc.message, exc.details) from None

    @staticmethod
    def _forget_upload(params: dict, path: Path) -> None:
        if params.get("uploaded"):
            path.unlink(missing_ok=True)

    def _hash(self, ctx: TaskContext, path: Path, size: int, total: int) -> str:
        hasher = hashlib.sha256()
        done = 0
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                ctx.raise_if_cancelled()
                hasher.update(chunk)
                done += len(chunk)
                ctx.progress(completed=done, total=total, message="hashing")
        return "sha256:" + hasher.hexdigest()

    def _chunks(self, ctx: TaskContext, path: Path, start: int, total: int) -> Iterator[bytes]:
        done = start
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                ctx.raise_if_cancelled()
                done += len(chunk)
                ctx.progress(completed=done, total=total, message="uploading")
                yield chunk

    def _create(self, ctx: TaskContext, provider: Any, url: str, params: dict, digest: str) -> None:
        extra = {key: params[key] for key in ("template", "system", "parameters", "quantize")
                 if params.get(key)}
        if version_tuple(provider.version(url)) >= FILES_VERSION:
            files = {Path(params["filename"]).name or "model.gguf": digest}
        else:
            files = {}
            lines = [f"FROM @{digest}"]
            if extra.get("template"):
                lines.append(f'TEMPLATE """{extra.pop("template")}"""')
            if extra.get("system"):
                lines.append(f'SYSTEM """{extra.pop("system")}"""')
            for key, value in (extra.pop("parameters", None) or {}).items():
                for one in value if isinstance(value, list) else [value]:
                    lines.append(f"PARAMETER {key} {modelfile_value(one)}")
            extra["modelfile"] = "\n".join(lines) + "\n"
        stream = provider.create(url, params["name"], files, extra)
        ctx.on_cancel(stream.close)
        try:
            for line in stream:
                ctx.raise_if_cancelled()
                if "error" in line:
                    raise TaskError(f"Ollama could not create '{params['name']}': {line['error']}",
                                    {"ollama": line["error"], "url": url})
                ctx.progress(message=str(line.get("status", "")))
                if line.get("status") == "success":
                    return
        finally:
            stream.close()
        ctx.raise_if_cancelled()
        raise TaskError(f"Ollama stopped creating '{params['name']}' before it finished.", {"url": url})
