"""The ``ollama.import`` task: a local GGUF file becomes an Ollama model.

The flow is Ollama's own: hash the file, ask whether the server has that blob (``HEAD``),
upload it if not, then create the model from it (``files`` on 0.5.5 and later, a
``FROM @sha256:...`` modelfile before). Files come from a browser upload, streamed to the data
dir (:mod:`.uploads`), or from the configured import folder, where only plain files beneath it
are read, opened without following links when the task runs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama import names
from open1panel_ai.tasks import TaskContext, TaskError, TaskInterrupted

if TYPE_CHECKING:
    from open1panel_ai.ollama.service import OllamaService

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


#: How a file in the import folder is opened: for reading, never following a link, never
#: waiting on a named pipe, never becoming the panel's terminal.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _refused(
    key: str, code: str, relative: str, status: type[errors.ApiError] = errors.BadRequest, **params: Any
) -> errors.ApiError:
    message = Message(key, path=relative, **params)
    return status(message, code=code, details={"path": relative, "fields": {"path": [message]}})


def _parts_inside(root: str, relative: str) -> list[str]:
    """The names of the path ``relative`` from the import folder ``root`` down, read without
    touching the disk: ``..`` is refused, and an absolute path must start with the folder."""
    if "\x00" in relative:
        raise _refused("ollama.import.error.no_file", "not_found", relative, errors.NotFound)
    path = PurePosixPath(relative)
    if ".." in path.parts:
        raise _refused("ollama.import.error.dotdot", "path_outside_import_folder", relative)
    if path.is_absolute():
        for base in dict.fromkeys((os.path.abspath(root), os.path.realpath(root))):
            if path.is_relative_to(base):
                path = path.relative_to(base)
                break
        else:
            raise _refused(
                "ollama.import.error.outside", "path_outside_import_folder", relative, folder=os.path.realpath(root)
            )
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise _refused("ollama.import.error.not_a_regular_file", "not_a_regular_file", relative)
    return parts


def _configured(folder: str | None) -> str:
    """The import folder; a 400 error when none is configured."""
    if not folder:
        message = Message("ollama.import.error.no_folder")
        raise errors.BadRequest(message, code="no_import_folder", details={"fields": {"path": [message]}})
    return folder


def open_in_folder(folder: str | None, relative: str) -> BinaryIO:
    """Open the file that ``relative`` names beneath the import ``folder`` for reading.

    Each name on the way is opened from the folder opened before it (``openat``) and no
    symbolic link is followed, whether it points inside the folder or out, and what is opened
    last must be a regular file. So what is read is a plain file inside the folder, even when
    someone who can write there replaces the file, or a folder on its path, with a link in the
    meantime. The import folder itself is the admin's setting and may be reached through links.

    :raise errors.BadRequest: no folder is configured, the path leaves it (``..``, an absolute
        path elsewhere, a link on the way), or it is not a regular file (a folder, a pipe).
    :raise errors.NotFound: there is no such file.
    """
    root = _configured(folder)
    parts = _parts_inside(root, relative)
    try:
        at = os.open(os.path.realpath(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise _refused("ollama.import.error.no_file", "not_found", relative, errors.NotFound) from None
    try:
        for index, name in enumerate(parts):
            last = index == len(parts) - 1
            try:
                fd = os.open(name, _FILE_FLAGS if last else _FOLDER_FLAGS, dir_fd=at)
            except OSError as exc:
                raise _open_refusal(exc, at, name, relative) from None
            os.close(at)
            at = fd
        info = os.fstat(at)
        if not stat.S_ISREG(info.st_mode):
            raise _refused("ollama.import.error.not_a_regular_file", "not_a_regular_file", relative)
        os.set_blocking(at, True)
        opened = os.fdopen(at, "rb")
    except BaseException:
        os.close(at)
        raise
    return opened


def _open_refusal(exc: OSError, at: int, name: str, relative: str) -> errors.ApiError:
    """Why ``name`` in the folder open as ``at`` could not be opened, as the API says it."""
    try:
        is_link = stat.S_ISLNK(os.lstat(name, dir_fd=at).st_mode)
    except OSError:
        is_link = False
    if is_link or exc.errno == errno.ELOOP:
        return _refused("ollama.import.error.link", "path_outside_import_folder", relative)
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return _refused("ollama.import.error.no_file", "not_found", relative, errors.NotFound)
    if exc.errno == errno.ENXIO:  # a socket
        return _refused("ollama.import.error.not_a_regular_file", "not_a_regular_file", relative)
    return _refused("ollama.import.error.unreadable", "unreadable_file", relative, error=exc.strerror or str(exc))


def check_in_folder(folder: str | None, relative: str) -> Path:
    """The file ``relative`` names in the import ``folder``, checked as :func:`open_in_folder`
    checks it (the task opens and checks it again when it runs)."""
    root = _configured(folder)
    with open_in_folder(root, relative):
        pass
    return Path(os.path.realpath(root)).joinpath(*_parts_inside(root, relative))


def _read(file: BinaryIO, size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of ``file`` from where it stands, in chunks: what was measured
    is what is hashed and sent, even if the file grows meanwhile."""
    left = size
    while left > 0 and (chunk := file.read(min(CHUNK, left))):
        left -= len(chunk)
        yield chunk


def describe(status: str, name: str) -> Message:
    """What Ollama is doing while it creates the model, from its status line."""
    if status.startswith("parsing"):
        return Message("ollama.import.status.parsing", name=name)
    if status.startswith(
        ("using existing layer", "creating new layer", "using autodetected", "quantizing", "converting")
    ):
        return Message("ollama.import.status.layers", name=name)
    if status.startswith("writing manifest"):
        return Message("ollama.import.status.writing", name=name)
    if status == "success":
        return Message("ollama.import.status.success", name=name)
    return Message("ollama.import.status.ollama", name=name, status=status)


class ImportTask:
    """Runs GGUF imports for the Ollama service."""

    def __init__(self, service: OllamaService) -> None:
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
            with self._open(params, path) as file:
                size = os.fstat(file.fileno()).st_size
                digest = params.get("digest")
                total = size if digest else 2 * size
                if not digest:
                    digest = self._hash(ctx, file, size, total)
                ctx.progress(
                    completed=total - size,
                    total=total,
                    message=Message("ollama.import.status.checking", name=params["name"]),
                )
                if not provider.blob_exists(url, digest):
                    file.seek(0)
                    provider.upload_blob(url, digest, self._chunks(ctx, file, size, total - size, total), size)
            ctx.progress(
                completed=total, total=total, message=Message("ollama.import.status.creating", name=params["name"])
            )
            self._create(ctx, provider, url, params, digest)
        except errors.UpstreamUnavailable as exc:
            # Ollama went away or dropped the connection: Retry is expected to work.
            raise TaskInterrupted(exc.message, exc.details) from None
        except errors.ApiError as exc:
            raise TaskError(exc.message, exc.details) from None

    def _open(self, params: dict, path: Path) -> BinaryIO:
        """The file to import, opened once for both hashing and sending. A file of the import
        folder is opened beneath it again now, following no link (it was checked when the
        import was asked for, and may have been replaced since); an upload is the panel's own
        file in its private data folder."""
        if params.get("uploaded"):
            try:
                return open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
            except OSError:
                raise TaskError(Message("ollama.import.error.file_gone", file=path.name)) from None
        try:
            return open_in_folder(self._service.import_folder, str(path))
        except errors.ApiError as exc:
            raise TaskError(exc.message, {"code": exc.code, "path": str(path)}) from None

    @staticmethod
    def _forget_upload(params: dict, path: Path) -> None:
        if params.get("uploaded"):
            path.unlink(missing_ok=True)

    def _hash(self, ctx: TaskContext, file: BinaryIO, size: int, total: int) -> str:
        hasher = hashlib.sha256()
        done = 0
        for chunk in _read(file, size):
            ctx.raise_if_cancelled()
            hasher.update(chunk)
            done += len(chunk)
            ctx.progress(
                completed=done, total=total, message=Message("ollama.import.status.hashing", name=ctx.params["name"])
            )
        return "sha256:" + hasher.hexdigest()

    def _chunks(self, ctx: TaskContext, file: BinaryIO, size: int, start: int, total: int) -> Iterator[bytes]:
        done = start
        for chunk in _read(file, size):
            ctx.raise_if_cancelled()
            done += len(chunk)
            ctx.progress(
                completed=done, total=total, message=Message("ollama.import.status.uploading", name=ctx.params["name"])
            )
            yield chunk

    def _create(self, ctx: TaskContext, provider: Any, url: str, params: dict, digest: str) -> None:
        if not params.get("overwrite"):
            # Asked when the import was started too; asked again now, since an upload may take
            # long (or Ollama was away then) and create replaces a model of the name silently.
            found = self._service.existing_model(url, names.parse(params["name"]))
            if found is not None:
                raise TaskError(
                    Message(
                        "ollama.error.model_exists", name=found.get("name", params["name"]), endpoint=params["endpoint"]
                    ),
                    {"code": "model_exists", "name": found.get("name", params["name"])},
                )
        extra = {key: params[key] for key in ("template", "system", "parameters", "quantize") if params.get(key)}
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
                    raise TaskError(
                        Message("ollama.import.error.create_failed", name=params["name"], error=str(line["error"])),
                        {"ollama": line["error"], "url": url},
                    )
                ctx.progress(message=describe(str(line.get("status", "")), params["name"]))
                if line.get("status") == "success":
                    return
        finally:
            stream.close()
        ctx.raise_if_cancelled()
        raise TaskError(Message("ollama.import.error.create_unfinished", name=params["name"]), {"url": url})
