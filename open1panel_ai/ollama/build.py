"""Build a model: a new model from a base one, with its own system prompt, parameters and
template, and optionally a LoRA adapter and a license, through Ollama's ``/api/create``.

The request is checked in full before anything is sent: the names, each parameter against
Ollama's documented names and types (:mod:`.parameters`), the adapter's path inside the import
folder. :meth:`Builds.preview` answers exactly the request a build would send, and
:meth:`Builds.recipe` fills a form from an existing model ("Edit as new model"). The build
itself is an ``ollama.build`` task: it uploads the adapter when the server lacks it, then
follows Ollama's create stream.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama import names, parameters
from open1panel_ai.ollama.imports import CHUNK, check_in_folder, open_in_folder
from open1panel_ai.tasks import TaskContext, TaskError, TaskInterrupted, TaskKind

if TYPE_CHECKING:
    from open1panel_ai.ollama.service import OllamaService
    from open1panel_ai.tasks import TaskRunner

KIND = "ollama.build"
CREATE_PATH = "/api/create"
#: What the preview shows for an adapter's digest, which is computed when the build runs.
ADAPTER_DIGEST_LATER = "sha256:<computed from the adapter when the build runs>"


def _parsed(text: str, field: str) -> names.ModelName:
    try:
        return names.parse(text)
    except names.InvalidModelName as exc:
        raise errors.BadRequest(
            exc.args[0], code="invalid_model_name", details={"fields": {field: [exc.args[0]]}}
        ) from None


class Builds:
    """Builds models on the Ollama service's endpoints."""

    def __init__(self, service: OllamaService, tasks: TaskRunner) -> None:
        self._service = service
        self._tasks = tasks
        tasks.register(TaskKind(KIND, self.run))

    def recipe(self, endpoint: str, model: str) -> dict[str, Any]:
        """The form of a new model based on ``model``, filled from its show answer: ``from``,
        ``system``, ``template``, ``parameters`` (typed; unknown or unreadable lines left out)
        and ``license``."""
        url = self._service.endpoint(endpoint)["url"]
        name = _parsed(model, "name").short
        shown = self._service.provider().show(url, name)

        def text(key: str) -> str:
            value = shown.get(key)
            return value if isinstance(value, str) else ""

        return {
            "endpoint": endpoint,
            "from": name,
            "system": text("system"),
            "template": text("template"),
            "parameters": parameters.parse_show_text(text("parameters")),
            "license": text("license"),
        }

    def preview(
        self,
        endpoint: str,
        name: str,
        base: str,
        *,
        system: str | None = None,
        template: str | None = None,
        parameters_: dict[str, Any] | None = None,
        license_: str | None = None,
        adapter: str | None = None,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        """The request a build would send: ``{"method", "url", "body"}``. Everything is
        checked as :meth:`start` checks it, so a preview that answers is a build that would be
        sent."""
        url = self._service.endpoint(endpoint)["url"]
        target = _parsed(name, "name")
        source = _parsed(base, "from")
        if target.key == source.key:
            message = Message("ollama.build.error.same_name", name=target.short)
            raise errors.BadRequest(message, code="same_name", details={"fields": {"name": [message]}})
        body: dict[str, Any] = {"model": target.short, "from": source.short}
        if system:
            body["system"] = system
        if template:
            body["template"] = template
        checked = parameters.check(parameters_, "parameters")
        if checked:
            body["parameters"] = checked
        if license_:
            body["license"] = license_
        if adapter:
            found = check_in_folder(self._service.import_folder, adapter)
            body["adapters"] = {found.name: ADAPTER_DIGEST_LATER}
        body["stream"] = True
        return {
            "method": "POST",
            "url": url.rstrip("/") + CREATE_PATH,
            "body": body,
            "adapter_path": adapter or None,
            "overwrite": overwrite,
        }

    def start(self, endpoint: str, name: str, base: str, **fields: Any) -> dict[str, Any]:
        """Check the build and start it as a task (202). A name already in use is refused with
        409 ``model_exists`` unless ``overwrite``; an unknown base with 404."""
        request = self.preview(endpoint, name, base, **fields)
        url = self._service.endpoint(endpoint)["url"]
        target = names.parse(name)
        if not request["overwrite"]:
            found = self._service.existing_model(url, target)
            if found is not None:
                message = Message("ollama.error.model_exists", name=found.get("name", target.short), endpoint=endpoint)
                raise errors.Conflict(
                    message,
                    code="model_exists",
                    details={
                        "name": found.get("name", target.short),
                        "endpoint": endpoint,
                        "fields": {"name": [message]},
                    },
                )
        if self._service.existing_model(url, names.parse(base)) is None:
            message = Message("ollama.build.error.no_base", name=request["body"]["from"], endpoint=endpoint)
            raise errors.NotFound(
                message, code="model_not_found", details={"fields": {"from": [message]}, "endpoint": endpoint}
            )
        params = {
            "endpoint": endpoint,
            "name": target.short,
            "body": request["body"],
            "adapter_path": request["adapter_path"],
        }
        return self._tasks.submit(KIND, f"{target.key}@{endpoint}", params)

    # -- the task ------------------------------------------------------------------------------

    def run(self, ctx: TaskContext) -> None:
        params = ctx.params
        name = params["name"]
        try:
            url = self._service.endpoint(params["endpoint"])["url"]
            provider = self._service.provider()
            body = dict(params["body"])
            if params.get("adapter_path"):
                body["adapters"] = self._adapter(ctx, provider, url, params["adapter_path"])
            model = body.pop("model")
            body.pop("stream", None)
            ctx.progress(completed=0, message=Message("ollama.build.status.starting", name=name))
            stream = provider.create(url, model, {}, body)
            ctx.on_cancel(stream.close)
            steps = 0
            try:
                for line in stream:
                    ctx.raise_if_cancelled()
                    if "error" in line:
                        raise TaskError(
                            Message("ollama.build.error.failed", name=name, error=str(line["error"])[:300]),
                            {"ollama": str(line["error"])[:300], "url": url},
                        )
                    steps += 1
                    status = str(line.get("status", ""))[:200]
                    if status == "success":
                        ctx.progress(
                            completed=steps, total=steps, message=Message("ollama.build.status.success", name=name)
                        )
                        return
                    ctx.progress(completed=steps, message=Message("ollama.build.status.step", name=name, status=status))
            finally:
                stream.close()
            ctx.raise_if_cancelled()
            raise TaskInterrupted(Message("ollama.build.error.unfinished", name=name), {"url": url})
        except errors.UpstreamUnavailable as exc:
            raise TaskInterrupted(exc.message, exc.details) from None
        except errors.ApiError as exc:
            raise TaskError(exc.message, exc.details) from None

    def _adapter(self, ctx: TaskContext, provider: Any, url: str, path: str) -> dict[str, str]:
        """Hash the adapter in the import folder and upload it when the server lacks it:
        ``{file name: digest}`` as create takes it."""
        with open_in_folder(self._service.import_folder, path) as file:
            size = os.fstat(file.fileno()).st_size
            hasher = hashlib.sha256()
            while chunk := file.read(CHUNK):
                ctx.raise_if_cancelled()
                hasher.update(chunk)
            digest = "sha256:" + hasher.hexdigest()
            if not provider.blob_exists(url, digest):
                ctx.progress(message=Message("ollama.build.status.adapter", name=ctx.params["name"]))
                file.seek(0)
                provider.upload_blob(url, digest, iter(lambda: file.read(CHUNK), b""), size)
        return {Path(path).name: digest}
