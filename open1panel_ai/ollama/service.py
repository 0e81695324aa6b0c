"""The Ollama service: endpoints, models, memory, pulls, imports and disk. No Flask here.

Endpoints are the Ollama servers the panel manages: ``local`` comes from ``OLLAMA_HOST`` (and
its models folder from ``OLLAMA_MODELS``); others are stored in SQLite. Every call names an
endpoint and goes through the chosen Ollama provider.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from open1panel_ai import errors
from open1panel_ai.i18n import Message, human_bytes
from open1panel_ai.ollama import address, imports, names, pull, storage
from open1panel_ai.ollama.imports import FILES_VERSION, ImportTask, check_in_folder, version_tuple
from open1panel_ai.ollama.pull import PullProgress, PullTask
from open1panel_ai.ollama.uploads import UploadFolder
from open1panel_ai.store import timestamp
from open1panel_ai.tasks import TaskKind

log = logging.getLogger(__name__)

LOCAL = "local"
ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
#: A version check when the endpoint list is shown: (minimum, what needs it).
VERSION_WARNINGS = [
    (FILES_VERSION, "ollama.warning.version_files"),
    ((0, 6, 4), "ollama.warning.version_capabilities"),
    ((0, 9, 7), "ollama.warning.version_context"),
]
#: How long, and for how many lines, the disk check waits for Ollama to announce the size
#: of the first layer (Ollama first fetches the manifest from the registry).
PREFLIGHT_SECONDS = 15.0
PREFLIGHT_LINES = 50
#: The most endpoints asked at the same time by one listing.
PARALLEL_ENDPOINTS = 8

MIGRATIONS = [
    """
    CREATE TABLE ollama_endpoints (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        models_dir TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE ollama_model_use (
        endpoint TEXT NOT NULL,
        model TEXT NOT NULL,
        last_loaded_at TEXT NOT NULL,
        PRIMARY KEY (endpoint, model)
    );
    """,
]


def _for_each_at_once(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``function`` of every item, in order. Several items run at the same time in threads that
    live only for this call (endpoints are few and rarely many); one runs in the caller's
    thread, so the common single-server panel starts no thread at all."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(PARALLEL_ENDPOINTS, len(items))) as pool:
        return list(pool.map(function, items))


#: Invalid names already logged (each once, and a bounded number of them).
_REPORTED_NAMES: set[str] = set()


def _listed(entries: Any) -> list[dict[str, Any]]:
    """The models a server listed, each with ``name_valid``: whether its name is one the API
    takes (:func:`names.is_valid`). A server at an endpoint may be hostile and list a name such
    as ``../../mcp/servers/<id>``, which a page would put in a request path; such a model is
    kept, to be seen, but flagged, and nothing acts on it. Entries that are not objects with a
    text name cannot even be shown, and are left out."""
    if not isinstance(entries, list):
        return []
    listed = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            valid = names.is_valid(entry["name"])
            if not valid and entry["name"] not in _REPORTED_NAMES and len(_REPORTED_NAMES) < 1000:
                _REPORTED_NAMES.add(entry["name"])
                log.warning("an Ollama server listed a model whose name is not valid, shown flagged "
                            "and without actions: %r", entry["name"][:200])
            listed.append({**entry, "name_valid": valid})
    return listed


def _setting(settings: Any, name: str, default: Any, kind: type) -> Any:
    """A non-negative number from the settings; a bad value falls back to ``default`` with a
    warning rather than stopping the feature."""
    raw = settings.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value >= 0 or value == float("inf"):
        log.warning("OPEN1PANEL_AI_%s=%r is not a usable number; using %s", name.upper(), raw, default)
        return default
    return value


class OllamaService:
    """Everything the Ollama page, API and command line do."""

    def __init__(self, context: Any, environ: dict[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._context = context
        self._store = context.store
        self._tasks = context.tasks
        settings = context.settings
        self._local_url = address.from_ollama_host(environ.get("OLLAMA_HOST"))
        self._local_models_dir = environ.get("OLLAMA_MODELS") or None
        self._import_dir = settings.get("ollama_import_dir") or None
        self._uploads = Path(context.data_dir) / "ollama-uploads"
        self._upload_folder = UploadFolder(self._uploads, _setting(settings, "ollama_upload_margin", None, int))
        #: Targets (``name@endpoint``) whose import request is being received now.
        self._importing: set[str] = set()
        self._importing_lock = threading.Lock()
        self._unused_days = _setting(settings, "ollama_unused_days", 30, int)
        self._store.migrate("ollama", MIGRATIONS)
        self._tasks.register(TaskKind(pull.KIND, PullTask(
            self, retries=_setting(settings, "ollama_pull_retries", 3, int),
            backoff=_setting(settings, "ollama_pull_backoff", 2.0, float)).run, resumable=True))
        self._tasks.register(TaskKind(imports.KIND, ImportTask(self).run, resumable=True))
        self._clear_orphan_uploads()

    def _clear_orphan_uploads(self) -> None:
        """Delete uploads no import can use any more: those of a request cut off by a panel
        crash, and those whose import was cancelled or finished while the panel was down.
        Uploads of imports that may still run or be retried stay."""
        if not self._uploads.is_dir():
            return
        wanted = set()
        for row in self._store.query(
                "SELECT params FROM tasks WHERE kind = ? AND status IN "
                "('queued', 'running', 'interrupted', 'failed')", (imports.KIND,)):
            wanted.add(json.loads(row["params"]).get("path"))
        for path in self._uploads.iterdir():
            if str(path) not in wanted and path.is_file():
                log.info("removing the unused upload %s", path)
                path.unlink(missing_ok=True)

    def provider(self) -> Any:
        return self._context.providers.get("ollama")

    # -- endpoints ---------------------------------------------------------------------------

    def endpoints(self) -> list[dict[str, Any]]:
        """Every managed Ollama server: ``name``, ``url``, ``models_dir``, ``builtin``."""
        rows = self._store.query("SELECT name, url, models_dir FROM ollama_endpoints ORDER BY name")
        return [{"name": LOCAL, "url": self._local_url, "models_dir": self._local_models_dir,
                 "builtin": True}] + [{**dict(r), "builtin": False} for r in rows]

    def endpoint(self, name: str) -> dict[str, Any]:
        for endpoint in self.endpoints():
            if endpoint["name"] == name:
                return endpoint
        raise errors.NotFound(Message("ollama.error.endpoint_not_found", endpoint=name),
                              code="endpoint_not_found", details={"endpoint": name})

    def endpoints_status(self) -> list[dict[str, Any]]:
        """The endpoints, each asked for its version at the same time."""
        return _for_each_at_once(self._with_status, self.endpoints())

    def _with_status(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        status = {**endpoint, "reachable": False, "version": None, "error": None, "warnings": []}
        try:
            if not endpoint["builtin"]:  # stored by an earlier version, it may be unusable now
                address.normalise(endpoint["url"])
        except address.InvalidAddress as exc:
            status["error"] = {"code": "bad_address", "message": exc.args[0], "details": {"url": endpoint["url"]}}
            return status
        try:
            version = self.provider().version(endpoint["url"])
        except errors.ApiError as exc:
            status["error"] = {"code": exc.code, "message": exc.message, "details": exc.details}
            return status
        status.update(reachable=True, version=version)
        status["warnings"] = [Message(key) for minimum, key in VERSION_WARNINGS
                              if version and version_tuple(version) < minimum]
        return status

    def add_endpoint(self, name: str, url: str, models_dir: str | None = None) -> dict[str, Any]:
        if not ENDPOINT_NAME.match(name or ""):
            message = Message("ollama.validation.endpoint_name")
            raise errors.BadRequest(message, details={"fields": {"name": [message]}})
        try:
            url = address.normalise(url)
        except address.InvalidAddress as exc:
            message = exc.args[0]
            raise errors.BadRequest(message, details={"fields": {"url": [message]}}) from None
        if models_dir and not Path(models_dir).is_absolute():
            message = Message("ollama.validation.models_dir")
            raise errors.BadRequest(message, details={"fields": {"models_dir": [message]}})
        if name == LOCAL or self._store.query_one("SELECT 1 FROM ollama_endpoints WHERE name = ?", (name,)):
            message = Message("ollama.error.endpoint_exists", endpoint=name)
            raise errors.Conflict(message, code="endpoint_exists",
                                  details={"endpoint": name, "fields": {"name": [message]}})
        self._store.execute("INSERT INTO ollama_endpoints (name, url, models_dir, created_at) VALUES (?, ?, ?, ?)",
                            (name, url, models_dir or None, timestamp()))
        return self._with_status(self.endpoint(name))

    def remove_endpoint(self, name: str) -> None:
        if name == LOCAL:
            raise errors.Conflict(Message("ollama.error.builtin_endpoint"), code="builtin_endpoint")
        self.endpoint(name)
        self._store.execute("DELETE FROM ollama_endpoints WHERE name = ?", (name,))

    # -- models ----------------------------------------------------------------------------

    def models(self, endpoint: str) -> list[dict[str, Any]]:
        """The endpoint's models, each with whether it is loaded, its memory, VRAM and expiry.
        A copy shares its original's loaded instance (loaded models are keyed by weights)."""
        url = self.endpoint(endpoint)["url"]
        provider = self.provider()
        models = _listed(provider.list_models(url))
        running = _listed(provider.running_models(url))
        self._remember_loaded(endpoint, running)
        by_name = {r.get("name", "").lower(): r for r in running}
        by_digest = {r.get("digest"): r for r in running}
        merged = []
        for model in models:
            loaded = by_name.get(model.get("name", "").lower()) or by_digest.get(model.get("digest"))
            merged.append({**model, "endpoint": endpoint, "loaded": loaded is not None,
                           "memory": loaded.get("size") if loaded else None,
                           "size_vram": loaded.get("size_vram") if loaded else None,
                           "expires_at": loaded.get("expires_at") if loaded else None})
        return merged

    def model(self, endpoint: str, name: str) -> dict[str, Any]:
        return self.provider().show(self.endpoint(endpoint)["url"], self._name(name))

    def delete_model(self, endpoint: str, name: str) -> None:
        self.provider().delete(self.endpoint(endpoint)["url"], self._name(name))

    def copy_model(self, endpoint: str, name: str, destination: str, overwrite: bool = False) -> None:
        """Give model ``name`` a second name. Ollama's copy replaces a model that already has
        the destination name without a word, so that is refused (409 ``model_exists``) unless
        ``overwrite`` says the replacement is meant."""
        url = self.endpoint(endpoint)["url"]
        source = self._parse(name)
        target = self._parse(destination, field="destination")
        if source.key == target.key:
            message = Message("ollama.error.same_name", name=target.short)
            raise errors.BadRequest(message, code="same_name",
                                    details={"fields": {"destination": [message]}})
        if not overwrite:
            self._refuse_existing(url, endpoint, target, field="destination")
        self.provider().copy(url, source.short, target.short)

    def existing_model(self, url: str, name: names.ModelName) -> dict[str, Any] | None:
        """The endpoint's model called ``name`` (compared as Ollama compares names), if any."""
        for model in _listed(self.provider().list_models(url)):
            if model["name_valid"] and names.parse(model["name"]).key == name.key:
                return model
        return None

    def _refuse_existing(self, url: str, endpoint: str, name: names.ModelName, field: str) -> None:
        """409 ``model_exists`` when the endpoint has a model called ``name``: the operation
        would replace it. The details name it, with its size and digest, so a page can ask."""
        found = self.existing_model(url, name)
        if found is None:
            return
        message = Message("ollama.error.model_exists", name=found.get("name", name.short), endpoint=endpoint)
        raise errors.Conflict(message, code="model_exists", details={
            "name": found.get("name", name.short), "endpoint": endpoint, "size": found.get("size"),
            "digest": found.get("digest"), "fields": {field: [message]}})

    def load_model(self, endpoint: str, name: str, keep_alive: str | int, cpu_only: bool) -> None:
        options = {"num_gpu": 0} if cpu_only else {}
        self.provider().load(self.endpoint(endpoint)["url"], self._name(name), keep_alive, options)
        self._store.execute(
            "INSERT OR REPLACE INTO ollama_model_use (endpoint, model, last_loaded_at) VALUES (?, ?, ?)",
            (endpoint, self._name(name), timestamp()))

    def unload_model(self, endpoint: str, name: str) -> None:
        self.provider().unload(self.endpoint(endpoint)["url"], self._name(name))

    def running(self, endpoint: str) -> list[dict[str, Any]]:
        running = _listed(self.provider().running_models(self.endpoint(endpoint)["url"]))
        self._remember_loaded(endpoint, running)
        return [{**r, "endpoint": endpoint} for r in running]

    def running_everywhere(self) -> list[dict[str, Any]]:
        """The loaded models of every reachable endpoint, asked at the same time so that one
        slow or unreachable server delays the answer by its timeout at most."""

        def running_or_none(name: str) -> list[dict[str, Any]]:
            try:
                return self.running(name)
            except errors.ApiError:
                return []

        names_ = [endpoint["name"] for endpoint in self.endpoints()]
        return [model for models in _for_each_at_once(running_or_none, names_) for model in models]

    def _remember_loaded(self, endpoint: str, running: list[dict[str, Any]]) -> None:
        now = timestamp()
        for model in running:
            if not model["name_valid"]:
                continue
            self._store.execute(
                "INSERT OR REPLACE INTO ollama_model_use (endpoint, model, last_loaded_at) VALUES (?, ?, ?)",
                (endpoint, model.get("name", ""), now))

    @classmethod
    def _name(cls, text: str) -> str:
        return cls._parse(text).short

    @staticmethod
    def _parse(text: str, field: str = "name") -> names.ModelName:
        try:
            return names.parse(text)
        except names.InvalidModelName as exc:
            message = exc.args[0]
            raise errors.BadRequest(message, code="invalid_model_name",
                                    details={"fields": {field: [message]}}) from None

    # -- pulls and imports -------------------------------------------------------------------

    def start_pull(self, endpoint: str, name: str) -> dict[str, Any]:
        """Start (or join) the pull of ``name``; refuse with 507 when it cannot fit on a disk
        the panel can see. Returns the task with ``warnings``."""
        parsed = self._parse(name)
        model = parsed.short
        found = self.endpoint(endpoint)
        # Ollama compares names case-insensitively: Llama3.2 and llama3.2 are one pull.
        target = f"{parsed.key}@{endpoint}"
        joined = self._tasks.active(pull.KIND, target)
        if joined is not None:
            return {**joined, "warnings": []}
        warnings = []
        try:
            existing = self.existing_model(found["url"], parsed)
        except errors.ApiError:
            existing = None  # the task reports an unreachable server itself, with retries
        if existing is not None:
            # A pull of a name the server has updates that model from the registry (what
            # ``ollama pull`` is for): allowed, but said, since it may replace a local model
            # that only shares the name.
            warnings.append(Message("ollama.pull.warning.updates", name=existing.get("name", model)))
        if storage.disk_usage(found["models_dir"]) is not None:
            needed = self._first_layer_need(found["url"], model)
            if needed:
                fits, warning = storage.fit_check(found["models_dir"], needed)
                if not fits:
                    free, _ = storage.disk_usage(found["models_dir"])
                    raise errors.InsufficientStorage(
                        Message("ollama.error.insufficient_storage", name=model,
                                needed=human_bytes(needed), free=human_bytes(free),
                                folder=found["models_dir"]),
                        details={"needed": needed, "free": free, "models_dir": found["models_dir"]})
                if warning:
                    warnings.append(warning)
        task = self._tasks.submit(pull.KIND, target, {"endpoint": endpoint, "name": model})
        return {**task, "warnings": warnings}

    def _first_layer_need(self, url: str, model: str) -> int | None:
        """The bytes still to download of the first (largest, the weights) layer, read from
        the start of a pull; None when Ollama does not say within :data:`PREFLIGHT_SECONDS`
        (then the pull goes ahead and Ollama reports a full disk itself)."""
        answer: queue.Queue[int | None] = queue.Queue(maxsize=1)
        stream = self.provider().pull(url, model)

        def read() -> None:
            need = None
            try:
                for count, line in enumerate(stream):
                    if "error" in line or count > PREFLIGHT_LINES or line.get("status") == "success":
                        break
                    if line.get("digest") and line.get("total"):
                        progress = PullProgress()
                        progress.update(line)
                        need = progress.total - progress.completed
                        break
            except errors.ApiError:
                need = None
            finally:
                stream.close()
            answer.put(need)

        threading.Thread(target=read, name="ollama-preflight", daemon=True).start()
        try:
            return answer.get(timeout=PREFLIGHT_SECONDS)
        except queue.Empty:
            stream.close()  # ends the reading thread and its connection now
            return None

    @property
    def import_folder(self) -> str | None:
        """The folder imports may read from (``OPEN1PANEL_AI_OLLAMA_IMPORT_DIR``), or None."""
        return self._import_dir

    def start_import(self, endpoint: str, name: str, *, path: str | None = None,
                     upload: BinaryIO | None = None, filename: str | None = None,
                     length: int | None = None, overwrite: bool = False,
                     **options: Any) -> dict[str, Any]:
        """Import a GGUF from a path inside the import folder, or from an upload stream of
        ``length`` bytes. ``options``: template, system, parameters, quantize. A model that
        already has the name is replaced only with ``overwrite`` (else 409 ``model_exists``,
        before an upload is read). A request for a model whose import request is still being
        received is refused with 409 ``import_in_progress``; an upload that would leave less
        than the margin free on the data folder's disk, with 507 (:mod:`.uploads`)."""
        parsed = self._parse(name)
        model = parsed.short
        url = self.endpoint(endpoint)["url"]
        target = f"{parsed.key}@{endpoint}"
        with self._receiving(target, model, endpoint):
            joined = self._tasks.active(imports.KIND, target)
            if joined is not None:
                return joined  # before reading an upload that the running import would not use
            if not overwrite:
                try:
                    self._refuse_existing(url, endpoint, parsed, field="name")
                except errors.UpstreamUnavailable:
                    pass  # Ollama is away: the task asks again before it creates the model
            params = {"endpoint": endpoint, "name": model, **{k: v for k, v in options.items() if v}}
            if overwrite:
                params["overwrite"] = True
            if upload is not None:
                saved, digest, _ = self._upload_folder.save(upload, length)
                params.update(path=str(saved), digest=digest, uploaded=True,
                              filename=Path(filename or "model.gguf").name)
            elif path:
                found = check_in_folder(self._import_dir, path)
                params.update(path=str(found), filename=found.name)
            else:
                message = Message("ollama.import.error.no_source")
                raise errors.BadRequest(message, code="validation_error",
                                        details={"fields": {"path": [message]}})
            return self._submit_import(target, params, model, endpoint)

    @contextmanager
    def _receiving(self, target: str, model: str, endpoint: str) -> Iterator[None]:
        """Hold ``target`` while its import request is checked and its upload received: a
        second request for it meanwhile (another upload of the same name, say) is refused with
        409 ``import_in_progress`` before its body is read, so two requests never make one
        task and a file left over."""
        with self._importing_lock:
            if target in self._importing:
                message = Message("ollama.import.error.in_progress", name=model, endpoint=endpoint)
                raise errors.Conflict(message, code="import_in_progress",
                                      details={"name": model, "endpoint": endpoint,
                                               "fields": {"name": [message]}})
            self._importing.add(target)
        try:
            yield
        finally:
            with self._importing_lock:
                self._importing.discard(target)

    def _submit_import(self, target: str, params: dict[str, Any], model: str, endpoint: str) -> dict[str, Any]:
        """Start the import task. Should the task of another request come back instead (one
        retried meanwhile), this request's upload is removed and the answer is 409."""
        task = self._tasks.submit(imports.KIND, target, params)
        row = self._store.query_one("SELECT params FROM tasks WHERE id = ?", (task["id"],))
        if row is not None and json.loads(row["params"]).get("path") != params["path"]:
            if params.get("uploaded"):
                Path(params["path"]).unlink(missing_ok=True)
            message = Message("ollama.import.error.in_progress", name=model, endpoint=endpoint)
            raise errors.Conflict(message, code="import_in_progress",
                                  details={"name": model, "endpoint": endpoint, "task": task["id"]})
        return task

    # -- disk ------------------------------------------------------------------------------

    def storage(self, endpoint: str) -> dict[str, Any]:
        found = self.endpoint(endpoint)
        models = self.models(endpoint)
        rows = self._store.query("SELECT model, last_loaded_at FROM ollama_model_use WHERE endpoint = ?",
                                 (endpoint,))
        last_loaded = {r["model"]: r["last_loaded_at"] for r in rows}
        result = storage.report(found["models_dir"], models, last_loaded, self._unused_days)
        return {"endpoint": endpoint, "unused_days": self._unused_days, **result}
