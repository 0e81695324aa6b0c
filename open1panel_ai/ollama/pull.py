"""The ``ollama.pull`` task: one model download, with progress over all of its layers.

Ollama reports each blob in turn (``pulling <digest>``, total, completed), leaves out zero
fields and may end a blob's lines short of its total, so a blob counts as complete once the
next one starts. The download continues where it stopped whenever the pull is issued again, so
retry, resume after a panel restart, and reconnecting after a dropped connection all simply
pull again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.tasks import TaskCancelled, TaskContext, TaskError, TaskInterrupted

if TYPE_CHECKING:
    from open1panel_ai.ollama.service import OllamaService

KIND = "ollama.pull"
#: Statuses after which every blob is on disk.
_AFTER_DOWNLOAD = ("verifying", "writing manifest", "removing", "success")


class PullProgress:
    """Adds up per-blob progress lines into bytes done and bytes in all."""

    def __init__(self) -> None:
        self.blobs: dict[str, list[int]] = {}  # digest → [total, completed]

    def update(self, line: Mapping[str, Any]) -> None:
        digest = line.get("digest")
        status = str(line.get("status", ""))
        if digest:
            for other, counts in self.blobs.items():
                if other != digest:
                    counts[1] = counts[0]  # the previous blob is done
            counts = self.blobs.setdefault(digest, [0, 0])
            counts[0] = int(line.get("total") or counts[0])
            counts[1] = max(counts[1], int(line.get("completed") or 0))
        elif status.startswith(_AFTER_DOWNLOAD):
            for counts in self.blobs.values():
                counts[1] = counts[0]

    @property
    def completed(self) -> int:
        return sum(c for _, c in self.blobs.values())

    @property
    def total(self) -> int:
        return sum(t for t, _ in self.blobs.values())


def explain(error: str, name: str) -> Message:
    """A sentence a person understands for Ollama's error text of a pull."""
    text = error.lower()
    if "file does not exist" in text or "manifest unknown" in text:
        return Message("ollama.pull.error.unknown_model", name=name)
    if "no space left" in text:
        return Message("ollama.pull.error.disk_full")
    if "pull model manifest" in text:
        return Message("ollama.pull.error.registry")
    if "invalid model name" in text:
        return Message("ollama.pull.error.invalid_name", name=name)
    return Message("ollama.pull.error.other", name=name, error=error)


def describe(status: str, name: str) -> Message:
    """What a pull is doing, from Ollama's status line, naming the model rather than a layer
    digest (``pulling 1a2b3c4d5e6f``)."""
    if status.startswith("pulling manifest"):
        return Message("ollama.pull.status.manifest", name=name)
    if status.startswith("pulling"):
        return Message("ollama.pull.status.downloading", name=name)
    if status.startswith("verifying"):
        return Message("ollama.pull.status.verifying", name=name)
    if status.startswith("writing manifest"):
        return Message("ollama.pull.status.writing", name=name)
    if status.startswith("removing"):
        return Message("ollama.pull.status.removing", name=name)
    if status == "success":
        return Message("ollama.pull.status.success", name=name)
    return Message("ollama.pull.status.other", name=name, status=status)


class PullTask:
    """Runs pulls for the Ollama service."""

    def __init__(self, service: OllamaService, retries: int, backoff: float) -> None:
        self._service = service
        self._retries = retries
        self._backoff = backoff

    def run(self, ctx: TaskContext) -> None:
        name = ctx.params["name"]
        try:
            url = self._service.endpoint(ctx.params["endpoint"])["url"]
            provider = self._service.provider()
        except errors.ApiError as exc:
            raise TaskError(exc.message, exc.details) from None
        ctx.progress(message=Message("ollama.pull.status.starting", name=name))
        with self._service.pull_layers(ctx.params["endpoint"]) as layer:
            self._pull_retrying(ctx, provider, url, name, layer)

    def _pull_retrying(
        self, ctx: TaskContext, provider: Any, url: str, name: str, layer: Callable[[str], None]
    ) -> None:
        """Pull until done, pulling again after a dropped connection up to the retries."""
        failures = 0
        while True:
            try:
                self._pull_once(ctx, provider, url, name, layer)
                return
            except errors.UpstreamUnavailable as exc:
                ctx.raise_if_cancelled()
                failures += 1
                if failures > self._retries:
                    raise TaskInterrupted(exc.message, {**exc.details, "attempts": failures}) from None
                delay = self._backoff * 2 ** (failures - 1)
                ctx.progress(
                    message=Message(
                        "ollama.pull.status.reconnecting",
                        name=name,
                        delay=f"{delay:g}",
                        attempt=failures,
                        retries=self._retries,
                    )
                )
                if ctx.wait(delay):
                    raise TaskCancelled() from None

    def _pull_once(self, ctx: TaskContext, provider: Any, url: str, name: str, layer: Callable[[str], None]) -> None:
        progress = PullProgress()
        stream = provider.pull(url, name)
        ctx.on_cancel(stream.close)  # a cancel ends the wait for the next line at once
        try:
            for line in stream:
                ctx.raise_if_cancelled()
                if "error" in line:
                    raise TaskError(explain(str(line["error"]), name), {"ollama": line["error"], "url": url})
                if line.get("digest"):
                    layer(str(line["digest"]))
                progress.update(line)
                status = str(line.get("status", ""))
                ctx.progress(
                    completed=progress.completed if progress.blobs else None,
                    total=progress.total or None,
                    message=describe(status, name),
                )
                if status == "success":
                    return
        except errors.UpstreamUnavailable:
            raise
        except errors.ApiError as exc:
            raise TaskError(exc.message, exc.details) from None
        finally:
            stream.close()  # closing the stream tells Ollama to stop; it keeps what it has
        raise errors.UpstreamUnavailable(
            Message("ollama.pull.error.unfinished", url=url, name=name), code="ollama_unreachable", details={"url": url}
        )
