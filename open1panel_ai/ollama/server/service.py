"""The local Ollama server's service: how it runs, its settings, control and log. No Flask here.

How the local server runs is chosen among the ``ai_ollama_server_providers`` classes with the
panel's provider machinery (:class:`~open1panel_ai.providers.ProviderRegistry`), by
``OPEN1PANEL_AI_OLLAMA_SERVER_PROVIDER``. The local server is the ``local`` endpoint; one at a
remote address is not managed here, whatever the setting.

A change of settings is a task (``ollama.server.apply``): it writes the settings, restarts the
server (after unloading every model, when asked, and moving the models folder, when asked)
and waits until ``/api/version`` answers again. If the server does not come back in time, it
writes the previous settings again (moving the models back), restarts the server, and fails
with the last lines of the server's log.

The page's state and log are pushed live over Socket.IO while it is open (:mod:`.live`).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama.imports import version_tuple
from open1panel_ai.ollama.server import settings as server_settings
from open1panel_ai.ollama.server.live import ServerLive
from open1panel_ai.providers import ProviderRegistry
from open1panel_ai.supervision import last_lines
from open1panel_ai.tasks import TaskError, TaskKind

if TYPE_CHECKING:
    from hookspecs.ai import OllamaServerProvider
    from open1panel_ai.config import Settings
    from open1panel_ai.context import AIContext
    from open1panel_ai.ollama.service import OllamaService
    from open1panel_ai.tasks import TaskContext

log = logging.getLogger(__name__)

KIND = "ollama.server.apply"
PROVIDER_KIND = "ollama_server"
#: The target of every apply task: the one local server.
TARGET = "local"
#: The most log lines one request returns.
MAX_TAIL = 2000
#: Both are what an Ollama models folder holds.
MODEL_FOLDERS = ("manifests", "blobs")


def _seconds(settings: Settings, name: str, default: float) -> float:
    raw = settings.get(name)
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        value = default
    if not 0 < value < 86400:
        log.warning("OPEN1PANEL_AI_%s=%r is not a usable number of seconds; using %s", name.upper(), raw, default)
        return default
    return value


def is_local(url: str) -> bool:
    """Whether the server at ``url`` is on this machine: loopback, a wildcard, ``localhost``."""
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


class ServerService:
    """Everything the server page and its API do; ``models`` is the Ollama feature's service
    (for the local endpoint's address, the version warnings and unloading models)."""

    def __init__(self, context: AIContext, models: OllamaService) -> None:
        self._context = context
        self._models = models
        settings = context.settings
        provider_settings = {**settings.values, "data_dir": str(context.data_dir)}
        self._setting = settings.provider_choice(PROVIDER_KIND)
        self._registry = ProviderRegistry(
            context.host.plugin_manager, provider_settings, {PROVIDER_KIND: self._setting}
        )
        #: How long an apply waits for ``/api/version`` after a restart.
        self.wait_seconds = _seconds(settings, "ollama_server_wait", 60.0)
        context.tasks.register(TaskKind(KIND, self._apply_task))
        #: The page's live state and log (see :mod:`.live`).
        self.live = ServerLive(context.realtime, lambda: self.provider(refresh=False))
        self._attached: Any = None
        context.when_owner(self._attach)

    # -- how the local server runs ----------------------------------------------------------

    def local_url(self) -> str:
        return self._models.endpoint("local")["url"]

    def mode(self, refresh: bool = True) -> dict[str, Any]:
        """``{"mode", "managed", "reason", "fix", "candidates"}``: the provider that runs the
        local server (``systemd``, ``supervised``, a plugin's), or ``unmanaged`` and why."""
        url = self.local_url()
        if self._setting != "none" and not is_local(url):
            return {
                "mode": "unmanaged",
                "managed": False,
                "provider": None,
                "reason": Message("ollama.server.unmanaged.remote", url=url),
                "fix": None,
                "candidates": [],
            }
        choice = self._registry.choose(PROVIDER_KIND, refresh=refresh)
        candidates = [{"name": c.name, "usable": c.usable, "reason": c.reason} for c in choice.candidates]
        if choice.provider is None:
            tried = [c for c in choice.candidates if c.usable is False]
            if self._setting == "none":
                reason = Message("ollama.server.unmanaged.turned_off")
            elif not tried:
                reason = Message(
                    "ollama.server.unmanaged.not_installed",
                    name=self._setting,
                    installed=", ".join(c.name for c in choice.candidates) or "-",
                )
            else:
                reason = Message(
                    "ollama.server.unmanaged.none_usable",
                    reasons=[Message("provider.candidate_reason", name=c.name, reason=c.reason) for c in tried],
                )
            return {
                "mode": "unmanaged",
                "managed": False,
                "provider": None,
                "reason": reason,
                "fix": next((c.fix for c in tried if c.fix), None),
                "candidates": candidates,
            }
        return {
            "mode": choice.provider.name,
            "managed": True,
            "provider": choice.provider,
            "reason": None,
            "fix": None,
            "candidates": candidates,
        }

    def provider(self, refresh: bool = False) -> Any:
        """The provider that runs the local server; a 409 ``server_not_managed`` when none does."""
        found = self.mode(refresh=refresh)
        if not found["managed"]:
            raise errors.Conflict(
                Message("ollama.server.error.not_managed", reason=found["reason"] or ""), code="server_not_managed"
            )
        return found["provider"]

    def gpu_devices(self) -> list[dict[str, Any]]:
        """The GPU provider's devices (``uuid``, ``index``, ``name``), read through the provider
        registry; none when no GPU provider is usable."""
        try:
            sample = self._context.providers.get("gpu").sample()
        except Exception:  # no GPU provider, or one that failed: no GPU to choose
            return []
        devices = []
        for device in sample.get("devices") or [] if isinstance(sample, dict) else []:
            if isinstance(device, dict) and isinstance(device.get("uuid"), str):
                devices.append(
                    {
                        "uuid": device["uuid"][:100],
                        "index": device.get("index"),
                        "name": str(device.get("name") or "")[:200],
                    }
                )
        return devices

    def status(self) -> dict[str, Any]:
        """What the page shows: the mode, the state, the version and its warnings, every
        setting with its meaning, default and value, and the GPUs to choose from."""
        found = self.mode()
        provider = found["provider"]
        values: dict[str, str] = {}
        inherited: dict[str, str] = {}
        state = None
        if provider is not None:
            values = provider.settings()
            inherited = provider.inherited()
            state = provider.state()
        url = self.local_url()
        if provider is not None:
            url = server_settings.listen_url(values.get("OLLAMA_HOST"), url)
        version, warnings = self._version(url)
        active = self._context.tasks.active(KIND, TARGET)
        return {
            "mode": found["mode"],
            "managed": found["managed"],
            "reason": found["reason"],
            "fix": found["fix"],
            "candidates": found["candidates"],
            "url": url,
            "state": state,
            "version": version,
            "warnings": warnings,
            "apply_task": active,
            "settings": [
                {**setting.public(), "value": values.get(setting.name), "inherited": inherited.get(setting.name)}
                for setting in server_settings.SETTINGS
            ],
            "gpus": self.gpu_devices(),
        }

    def _version(self, url: str) -> tuple[str | None, list[Message]]:
        """The server's version, and the feature warnings of the Ollama page's version check."""
        from open1panel_ai.ollama.service import VERSION_WARNINGS

        try:
            version = self._models.provider().version(url)
        except errors.ApiError:
            return None, []
        return version, [
            Message(key) for minimum, key in VERSION_WARNINGS if version and version_tuple(version) < minimum
        ]

    # -- settings ---------------------------------------------------------------------------

    def apply(self, values: Mapping[Any, Any], unload: bool = False, move_models: bool = False) -> dict:
        """Check ``values`` (the whole new set; a setting left out or empty goes back to its
        default) and start the task that applies them."""
        provider = self.provider()
        clean, problems = server_settings.validated(values, [gpu["uuid"] for gpu in self.gpu_devices()])
        if problems:
            raise errors.BadRequest(
                Message("ollama.server.error.invalid_settings", names=", ".join(sorted(problems))),
                details={"fields": {"settings": problems}},
                code="validation_error",
            )
        if self._context.tasks.active(KIND, TARGET) is not None:
            raise errors.Conflict(Message("ollama.server.error.applying"), code="apply_running")
        previous = provider.settings()
        moving = None
        if move_models:
            old, new = self._models_dir(provider, previous), self._models_dir(provider, clean)
            if old != new:
                self._check_move(old, new)
                moving = [old, new]
        return self._context.tasks.submit(
            KIND, TARGET, {"values": clean, "previous": previous, "unload": bool(unload), "move": moving}
        )

    def _models_dir(self, provider: OllamaServerProvider, values: Mapping[str, str]) -> str:
        inherited = provider.inherited()
        return values.get("OLLAMA_MODELS") or inherited.get("OLLAMA_MODELS") or str(Path.home() / ".ollama/models")

    @staticmethod
    def _check_move(old: str, new: str) -> None:
        """A move goes into a folder without models of its own, and never into itself."""
        old_path, new_path = Path(old), Path(new)
        if new_path == old_path or old_path in new_path.parents or new_path in old_path.parents:
            message = Message("ollama.server.error.move_nested")
            raise errors.BadRequest(message, details={"fields": {"move_models": [message]}}, code="validation_error")
        for folder in MODEL_FOLDERS:
            target = new_path / folder
            if target.is_dir() and any(target.iterdir()):
                raise errors.Conflict(
                    Message("ollama.server.error.folder_not_empty", folder=str(new_path)),
                    code="models_folder_not_empty",
                )

    def _apply_task(self, ctx: TaskContext) -> None:
        try:
            self._apply(ctx)
        finally:
            self.live.wake()

    def _apply(self, ctx: TaskContext) -> None:
        provider = self.provider(refresh=False)
        values, previous = ctx.params["values"], ctx.params["previous"]
        moving = ctx.params.get("move")
        if ctx.params.get("unload"):
            ctx.progress(message=Message("ollama.server.task.unloading"))
            self._unload_all(server_settings.listen_url(previous.get("OLLAMA_HOST"), self.local_url()))
        ctx.progress(message=Message("ollama.server.task.writing"))
        self._switch(provider, values, moving)
        url = server_settings.listen_url(values.get("OLLAMA_HOST"), self.local_url())
        ctx.progress(message=Message("ollama.server.task.waiting", url=url))
        if self._comes_back(provider, url):
            self._changed()
            return
        said = last_lines(provider.logs(20))
        ctx.progress(message=Message("ollama.server.task.restoring"))
        try:
            self._switch(provider, previous, list(reversed(moving)) if moving else None)
        except (errors.ApiError, OSError) as exc:
            raise TaskError(Message("ollama.server.task.restore_failed", error=str(exc)[:300], output=said)) from None
        old_url = server_settings.listen_url(previous.get("OLLAMA_HOST"), self.local_url())
        self._changed()
        if not self._comes_back(provider, old_url):
            raise TaskError(Message("ollama.server.task.restore_failed", error="", output=said))
        raise TaskError(Message("ollama.server.task.rolled_back", seconds=f"{self.wait_seconds:g}", output=said))

    def _switch(self, provider: OllamaServerProvider, values: Mapping[str, str], moving: list[str] | None) -> None:
        """Make ``values`` the server's settings and restart it; with ``moving`` (from, to),
        the models folder's contents move while the server is stopped."""
        if moving:
            provider.stop()
            move_models(*moving)
            provider.write(values)
            provider.start()
        else:
            provider.write(values)
            provider.restart()

    def _comes_back(self, provider: OllamaServerProvider, url: str) -> bool:
        """Whether ``/api/version`` answers at ``url`` within :attr:`wait_seconds`; a
        supervised server that gave up (``error``) does not come back."""
        from open1panel_ai.ollama.server.supervised import answers

        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            if answers(url):
                return True
            if provider.state().get("status") == "error":
                return False
            time.sleep(0.2)
        return False

    def _changed(self) -> None:
        """The local server was restarted, stopped or started by the panel: what the models'
        watcher holds of it is older than that, so the next read polls again."""
        self._models.watchers.changed("local")

    def _unload_all(self, url: str) -> None:
        """Drop every loaded model from memory, so a restart does not cut a request short;
        a server that cannot be reached has nothing loaded to drop."""
        ollama = self._models.provider()
        try:
            running = ollama.running_models(url)
        except errors.ApiError:
            return
        for model in running:
            name = model.get("name") if isinstance(model, dict) else None
            if isinstance(name, str):
                try:
                    ollama.unload(url, name)
                except errors.ApiError as exc:
                    log.warning("could not unload %s before a restart: %s", name[:200], exc)

    # -- control ----------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        provider = self.provider()
        provider.start()
        self.live.wake()
        self._changed()
        return provider.state()

    def stop(self) -> dict[str, Any]:
        provider = self.provider()
        provider.stop()
        self.live.wake()
        self._changed()
        return provider.state()

    def restart(self, unload: bool = False) -> dict[str, Any]:
        provider = self.provider()
        if unload:
            host = provider.settings().get("OLLAMA_HOST")
            self._unload_all(server_settings.listen_url(host, self.local_url()))
        provider.restart()
        self.live.wake()
        self._changed()
        return provider.state()

    def logs(self, tail: int) -> list[str]:
        return self.provider().logs(min(max(tail, 1), MAX_TAIL))

    # -- the panel's start and stop -----------------------------------------------------------

    def _attach(self) -> None:
        """Start a server the panel runs itself, if it was running when the panel stopped."""
        found = self.mode(refresh=True)
        if found["managed"]:
            self._attached = found["provider"]
            self._attached.attach()

    def close(self) -> None:
        self.live.close()
        if self._attached is not None:
            self._attached.detach()


def move_models(old: str, new: str) -> None:
    """Move the models (``manifests`` and ``blobs``) from folder ``old`` to folder ``new``,
    which is created with ``old``'s owner and mode; within one file system this is a rename."""
    source, target = Path(old), Path(new)
    if not source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    if not target.exists():
        target.mkdir(parents=True)
        stat = source.stat()
        try:
            shutil.chown(target, stat.st_uid, stat.st_gid)
        except PermissionError:
            pass
        target.chmod(stat.st_mode & 0o7777)
    for folder in MODEL_FOLDERS:
        if (source / folder).exists():
            if (target / folder).exists() and not any((target / folder).iterdir()):
                (target / folder).rmdir()
            shutil.move(str(source / folder), str(target / folder))


_SERVERS: dict[Any, ServerService] = {}


def start(models: OllamaService, context: AIContext) -> ServerService:
    """Start the server service beside the Ollama feature's ``models`` service."""
    server = _SERVERS[models] = ServerService(context, models)
    return server


def of(models: OllamaService) -> ServerService:
    """The server service started with ``models``."""
    return _SERVERS[models]


def stop(models: OllamaService) -> None:
    """Stop a server the panel runs itself (a systemd unit keeps running)."""
    server = _SERVERS.pop(models, None)
    if server is not None:
        server.close()
