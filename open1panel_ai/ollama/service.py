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
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from hookspecs.ollama import ModelEntry, ModelInfo, RunningModel
from open1panel_ai import errors
from open1panel_ai.i18n import Message, human_bytes
from open1panel_ai.ollama import address, imports, names, pull, storage, watcher
from open1panel_ai.ollama.imports import FILES_VERSION, ImportTask, check_in_folder, version_tuple
from open1panel_ai.ollama.pull import PullProgress, PullTask
from open1panel_ai.ollama.uploads import UploadFolder
from open1panel_ai.store import timestamp
from open1panel_ai.tasks import TaskKind

if TYPE_CHECKING:
    from hookspecs.ai import OllamaProvider
    from open1panel_ai.config import Settings
    from open1panel_ai.context import AIContext
    from open1panel_ai.tasks import TaskContext

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
#: How old the loaded models another feature reads (GPU samples, metrics) may be.
OTHER_FEATURES_MAX_AGE = 10.0

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
                log.warning(
                    "an Ollama server listed a model whose name is not valid, shown flagged and without actions: %r",
                    entry["name"][:200],
                )
            listed.append({**entry, "name_valid": valid})
    return listed


def _vram_share(running: dict[str, Any]) -> float | None:
    """The part (0 to 1) of a loaded model's memory that is on the GPU; None when unknown."""
    size, in_vram = running.get("size"), running.get("size_vram")
    if not isinstance(size, int) or not isinstance(in_vram, int) or size <= 0:
        return None
    return round(min(max(in_vram / size, 0.0), 1.0), 4)


def _seconds_until(text: Any, now: float) -> float | None:
    """Seconds from ``now`` (epoch) to the RFC 3339 time ``text`` (Ollama writes nanoseconds,
    which are cut to microseconds); None when it is not such a time."""
    if not isinstance(text, str):
        return None
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text.strip())
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        moment = datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")
    except ValueError:
        return None
    return round(moment.timestamp() - now, 3)


def _setting(settings: Settings, name: str, default: Any, kind: type) -> Any:
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

    def __init__(self, context: AIContext, environ: Mapping[str, str] | None = None) -> None:
        env: Mapping[str, str] = os.environ if environ is None else environ
        self._context = context
        self._store = context.store
        self._tasks = context.tasks
        settings = context.settings
        self._local_url = address.from_ollama_host(env.get("OLLAMA_HOST"))
        self._local_models_dir = env.get("OLLAMA_MODELS") or None
        self._import_dir = settings.get("ollama_import_dir") or None
        self._uploads = Path(context.data_dir) / "ollama-uploads"
        self._upload_folder = UploadFolder(self._uploads, _setting(settings, "ollama_upload_margin", None, int))
        #: Targets (``name@endpoint``) whose import request is being received now.
        self._importing: set[str] = set()
        self._importing_lock = threading.Lock()
        self._unused_days = _setting(settings, "ollama_unused_days", 30, int)
        #: The layers (``sha256:<hex>``) each running pull downloads, by endpoint; an empty set
        #: is a pull that has not named its layers yet. Read before partials are deleted.
        self._pull_layers: dict[str, list[set[str]]] = {}
        self._pull_layers_lock = threading.Lock()
        self._store.migrate("ollama", MIGRATIONS)
        self.watchers = watcher.Watchers(
            context.realtime,
            self.endpoints,
            self._fetch_state,
            self._snapshot,
            interval=_setting(settings, "ollama_watch_interval", 1.0, float) or 1.0,
            idle_interval=_setting(settings, "ollama_watch_idle_interval", 60.0, float),
            max_age=_setting(settings, "ollama_max_age", 2.0, float),
            request_wait=_setting(settings, "ollama_request_wait", 5.0, float) or 5.0,
        )
        self._tasks.register(
            TaskKind(
                pull.KIND,
                self.watched(
                    PullTask(
                        self,
                        retries=_setting(settings, "ollama_pull_retries", 3, int),
                        backoff=_setting(settings, "ollama_pull_backoff", 2.0, float),
                    ).run
                ),
                resumable=True,
            )
        )
        self._tasks.register(TaskKind(imports.KIND, self.watched(ImportTask(self).run), resumable=True))
        self._clear_orphan_uploads()

    def _clear_orphan_uploads(self) -> None:
        """Delete uploads no import can use any more: those of a request cut off by a panel
        crash, and those whose import was cancelled or finished while the panel was down.
        Uploads of imports that may still run or be retried stay."""
        if not self._uploads.is_dir():
            return
        wanted = set()
        for row in self._store.query(
            "SELECT params FROM tasks WHERE kind = ? AND status IN ('queued', 'running', 'interrupted', 'failed')",
            (imports.KIND,),
        ):
            wanted.add(json.loads(row["params"]).get("path"))
        for path in self._uploads.iterdir():
            if str(path) not in wanted and path.is_file():
                log.info("removing the unused upload %s", path)
                path.unlink(missing_ok=True)

    def start(self) -> None:
        """Start watching every endpoint (see :mod:`.watcher`)."""
        self.watchers.start()

    def stop(self) -> None:
        self.watchers.stop()

    def watched(self, run: Callable[[TaskContext], None]) -> Callable[[TaskContext], None]:
        """A task function whose endpoint (``params["endpoint"]``) is watched at the active
        pace while it runs, and whose end counts as a change, so the next read shows what
        it made."""

        def run_watched(ctx: TaskContext) -> None:
            release = self.watchers.need(ctx.params.get("endpoint", LOCAL))
            try:
                run(ctx)
            finally:
                release()

        return run_watched

    def provider(self) -> OllamaProvider:
        """The model runtime provider in use (raises ``ProviderUnavailable`` when none works)."""
        return self._context.providers.get("ollama")

    # -- endpoints ---------------------------------------------------------------------------

    def endpoints(self) -> list[dict[str, Any]]:
        """Every managed Ollama server: ``name``, ``url``, ``models_dir``, ``builtin``."""
        rows = self._store.query("SELECT name, url, models_dir FROM ollama_endpoints ORDER BY name")
        return [self.endpoint(LOCAL)] + [{**dict(r), "builtin": False} for r in rows]

    def endpoint(self, name: str) -> dict[str, Any]:
        """The managed Ollama server called ``name`` (``local`` is answered without the store:
        most requests name it)."""
        if name == LOCAL:
            return {"name": LOCAL, "url": self._local_url, "models_dir": self._local_models_dir, "builtin": True}
        row = self._store.query_one("SELECT name, url, models_dir FROM ollama_endpoints WHERE name = ?", (name,))
        if row is not None:
            return {**dict(row), "builtin": False}
        raise errors.NotFound(
            Message("ollama.error.endpoint_not_found", endpoint=name),
            code="endpoint_not_found",
            details={"endpoint": name},
        )

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
        status["warnings"] = [
            Message(key) for minimum, key in VERSION_WARNINGS if version and version_tuple(version) < minimum
        ]
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
            raise errors.Conflict(
                message, code="endpoint_exists", details={"endpoint": name, "fields": {"name": [message]}}
            )
        self._store.execute(
            "INSERT INTO ollama_endpoints (name, url, models_dir, created_at) VALUES (?, ?, ?, ?)",
            (name, url, models_dir or None, timestamp()),
        )
        self.watchers.sync()
        return self._with_status(self.endpoint(name))

    def remove_endpoint(self, name: str) -> None:
        if name == LOCAL:
            raise errors.Conflict(Message("ollama.error.builtin_endpoint"), code="builtin_endpoint")
        self.endpoint(name)
        self._store.execute("DELETE FROM ollama_endpoints WHERE name = ?", (name,))
        self.watchers.sync()
        # What was kept for it goes too, so a server added again by that name starts afresh.
        self._store.execute("DELETE FROM ollama_model_use WHERE endpoint = ?", (name,))
        from open1panel_ai.ollama import workbench

        workbench.forget_endpoint(self, name)

    # -- models ----------------------------------------------------------------------------

    def models(self, endpoint: str) -> list[dict[str, Any]]:
        """The endpoint's models, each with whether it is loaded, its memory, VRAM and expiry.
        A copy shares its original's loaded instance (loaded models are keyed by weights)."""
        return self.models_state(endpoint)["models"]

    def models_state(self, endpoint: str, max_age: float | None = None) -> dict[str, Any]:
        """``{"models", "endpoint", "fetched_at", "age", "stale", "error"}``: the endpoint's
        models from its watcher's state (:meth:`.watcher.EndpointWatcher.read`)."""
        snapshot, why = self._read(endpoint, max_age)
        return {"models": snapshot.models, "endpoint": endpoint, **snapshot.freshness(why)}

    def running_state(self, endpoint: str | None = None, max_age: float | None = None) -> dict[str, Any]:
        """``{"models", "fetched_at", "age", "stale", "error"}``: the loaded models of one
        endpoint, or of every reachable one (then the age is the oldest's)."""
        if endpoint is not None:
            snapshot, why = self._read(endpoint, max_age, part="running")
            return {"models": snapshot.running, "endpoint": endpoint, **snapshot.freshness(why)}

        def read_or_none(name: str) -> tuple[watcher.Snapshot, Any] | None:
            try:
                return self._read(name, max_age, part="running")
            except errors.ApiError:
                return None

        reads = [r for r in _for_each_at_once(read_or_none, [e["name"] for e in self.endpoints()]) if r]
        models = [model for snapshot, _ in reads for model in snapshot.running]
        if not reads:
            return {"models": [], "endpoint": None, "fetched_at": None, "age": None, "stale": False, "error": None}
        oldest, why = max(reads, key=lambda r: (r[1] is not None, r[0].age()))
        return {"models": models, "endpoint": None, **oldest.freshness(why)}

    def _read(
        self, endpoint: str, max_age: float | None = None, demand: bool = True, part: str = "models"
    ) -> tuple[watcher.Snapshot, errors.ApiError | None]:
        url = self.endpoint(endpoint)["url"]
        return self.watchers.get(endpoint, url).read(max_age, demand=demand, part=part)

    def _fetch_state(self, url: str) -> tuple[list[ModelEntry], list[RunningModel]]:
        """What the watcher of the endpoint at ``url`` asks the server, in its own thread. A
        server that answered the model list with an error is still asked what is loaded
        (each route then reports its own error); one that gave no answer is not asked again."""
        provider = self.provider()
        try:
            models = provider.list_models(url)
        except errors.UpstreamUnavailable:
            raise
        except errors.ApiError as exc:
            try:
                provider.running_models(url)
            except errors.ApiError as running_error:
                raise watcher.PollFailed(exc, running_error) from None
            raise watcher.PollFailed(exc, None) from None
        try:
            return models, provider.running_models(url)
        except errors.ApiError as exc:
            raise watcher.PollFailed(exc) from None

    def _snapshot(self, endpoint: str, listed: Any, loaded: Any, started: float, fetched_at: float) -> watcher.Snapshot:
        """The watcher's state from one fetch: the models merged with what is loaded, the
        loaded models with ``expires_in`` (seconds, by the panel's clock at the fetch) and
        ``vram_share`` (0 to 1); their loading is remembered for the clean-up suggestions."""
        running = _listed(loaded)
        self._remember_loaded(endpoint, running)
        running = [
            {
                **r,
                "endpoint": endpoint,
                "vram_share": _vram_share(r),
                "expires_in": _seconds_until(r.get("expires_at"), fetched_at),
            }
            for r in running
        ]
        return watcher.Snapshot(
            endpoint,
            self._merged(endpoint, _listed(listed), running),
            running,
            fetched_at=fetched_at,
            started=started,
            finished=time.monotonic(),
        )

    @staticmethod
    def _merged(endpoint: str, models: list[dict[str, Any]], running: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_name = {r.get("name", "").lower(): r for r in running}
        by_digest = {r.get("digest"): r for r in running}
        merged = []
        for model in models:
            loaded = by_name.get(model.get("name", "").lower()) or by_digest.get(model.get("digest"))
            merged.append(
                {
                    **model,
                    "endpoint": endpoint,
                    "loaded": loaded is not None,
                    "memory": loaded.get("size") if loaded else None,
                    "size_vram": loaded.get("size_vram") if loaded else None,
                    "expires_at": loaded.get("expires_at") if loaded else None,
                }
            )
        return merged

    def model(self, endpoint: str, name: str) -> ModelInfo:
        return self.provider().show(self.endpoint(endpoint)["url"], self._name(name))

    def delete_model(self, endpoint: str, name: str) -> None:
        url = self.endpoint(endpoint)["url"]
        try:
            self.provider().delete(url, self._name(name))
        finally:
            self.watchers.changed(endpoint)

    def copy_model(self, endpoint: str, name: str, destination: str, overwrite: bool = False) -> None:
        """Give model ``name`` a second name. Ollama's copy replaces a model that already has
        the destination name without a word, so that is refused (409 ``model_exists``) unless
        ``overwrite`` says the replacement is meant."""
        url = self.endpoint(endpoint)["url"]
        source = self._parse(name)
        target = self._parse(destination, field="destination")
        if source.key == target.key:
            message = Message("ollama.error.same_name", name=target.short)
            raise errors.BadRequest(message, code="same_name", details={"fields": {"destination": [message]}})
        if not overwrite:
            self._refuse_existing(url, endpoint, target, field="destination")
        try:
            self.provider().copy(url, source.short, target.short)
        finally:
            self.watchers.changed(endpoint)

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
        raise errors.Conflict(
            message,
            code="model_exists",
            details={
                "name": found.get("name", name.short),
                "endpoint": endpoint,
                "size": found.get("size"),
                "digest": found.get("digest"),
                "fields": {field: [message]},
            },
        )

    def load_model(self, endpoint: str, name: str, keep_alive: str | int, cpu_only: bool) -> None:
        options = {"num_gpu": 0} if cpu_only else {}
        try:
            self.provider().load(self.endpoint(endpoint)["url"], self._name(name), keep_alive, options)
        finally:
            self.watchers.changed(endpoint)
        self._store.execute(
            "INSERT OR REPLACE INTO ollama_model_use (endpoint, model, last_loaded_at) VALUES (?, ?, ?)",
            (endpoint, self._name(name), timestamp()),
        )

    def unload_model(self, endpoint: str, name: str) -> None:
        try:
            self.provider().unload(self.endpoint(endpoint)["url"], self._name(name))
        finally:
            self.watchers.changed(endpoint)

    def running(self, endpoint: str, max_age: float | None = None, demand: bool = True) -> list[dict[str, Any]]:
        """The loaded models of ``endpoint`` (see :meth:`running_state`)."""
        return self._read(endpoint, max_age, demand, part="running")[0].running

    def running_everywhere(self) -> list[dict[str, Any]]:
        """The loaded models of every reachable endpoint, from the watchers' states (up to
        :data:`OTHER_FEATURES_MAX_AGE` old), read at the same time so that one slow or
        unreachable server delays the answer by the request wait at most."""

        def running_or_none(name: str) -> list[dict[str, Any]]:
            try:
                return self.running(name, OTHER_FEATURES_MAX_AGE, demand=False)
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
                (endpoint, model.get("name", ""), now),
            )

    @classmethod
    def _name(cls, text: str) -> str:
        return cls._parse(text).short

    @staticmethod
    def _parse(text: str, field: str = "name") -> names.ModelName:
        try:
            return names.parse(text)
        except names.InvalidModelName as exc:
            message = exc.args[0]
            raise errors.BadRequest(
                message, code="invalid_model_name", details={"fields": {field: [message]}}
            ) from None

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
        usage = storage.disk_usage(found["models_dir"])
        if usage is not None:
            needed = self._first_layer_need(found["url"], model)
            if needed:
                fits, warning = storage.fit_check(found["models_dir"], needed)
                if not fits:
                    # Read again for the message; the folder may have gone since (unmounted).
                    free, _ = storage.disk_usage(found["models_dir"]) or usage
                    raise errors.InsufficientStorage(
                        Message(
                            "ollama.error.insufficient_storage",
                            name=model,
                            needed=human_bytes(needed),
                            free=human_bytes(free),
                            folder=found["models_dir"],
                        ),
                        details={"needed": needed, "free": free, "models_dir": found["models_dir"]},
                    )
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

    def start_import(
        self,
        endpoint: str,
        name: str,
        *,
        path: str | None = None,
        upload: BinaryIO | None = None,
        filename: str | None = None,
        length: int | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
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
                params.update(
                    path=str(saved), digest=digest, uploaded=True, filename=Path(filename or "model.gguf").name
                )
            elif path:
                found = check_in_folder(self._import_dir, path)
                params.update(path=str(found), filename=found.name)
            else:
                message = Message("ollama.import.error.no_source")
                raise errors.BadRequest(message, code="validation_error", details={"fields": {"path": [message]}})
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
                raise errors.Conflict(
                    message,
                    code="import_in_progress",
                    details={"name": model, "endpoint": endpoint, "fields": {"name": [message]}},
                )
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
            raise errors.Conflict(
                message, code="import_in_progress", details={"name": model, "endpoint": endpoint, "task": task["id"]}
            )
        return task

    # -- disk ------------------------------------------------------------------------------

    @contextmanager
    def pull_layers(self, endpoint: str) -> Iterator[Callable[[str], None]]:
        """Register a pull running on ``endpoint`` while the block runs; the block gets a
        function to call with each layer digest the pull reports, so that
        :meth:`delete_partials` keeps the partial files it writes."""
        layers: set[str] = set()
        with self._pull_layers_lock:
            self._pull_layers.setdefault(endpoint, []).append(layers)

        def add(digest: str) -> None:
            with self._pull_layers_lock:
                layers.add(digest)

        try:
            yield add
        finally:
            with self._pull_layers_lock:
                running = self._pull_layers.get(endpoint, [])
                running[:] = [other for other in running if other is not layers]
                if not running:
                    self._pull_layers.pop(endpoint, None)

    def delete_partials(self, endpoint: str) -> dict[str, Any]:
        """Delete the endpoint's partial downloads that no pull is writing
        (:func:`storage.delete_partials`): ``{"endpoint", "freed", "deleted", "skipped"}``.
        Those of the panel's running pulls are skipped (``pulling``), every one while a pull
        has not named its layers yet. A models folder the panel cannot see is a 409."""
        found = self.endpoint(endpoint)
        models_dir = found["models_dir"]
        if storage.disk_usage(models_dir) is None:
            raise errors.Conflict(
                Message("ollama.error.models_dir_not_visible", endpoint=endpoint),
                code="models_dir_not_visible",
                details={"endpoint": endpoint, "models_dir": models_dir},
            )
        with self._pull_layers_lock:
            running = self._pull_layers.get(endpoint, [])
            pulling = None if any(not layers for layers in running) else {d for layers in running for d in layers}
            result = storage.delete_partials(Path(models_dir), pulling)
        if result["deleted"]:
            log.info(
                "deleted %d partial download(s) of %s, %d bytes", len(result["deleted"]), endpoint, result["freed"]
            )
        return {"endpoint": endpoint, **result}

    def storage(self, endpoint: str) -> dict[str, Any]:
        found = self.endpoint(endpoint)
        models = self.models(endpoint)
        rows = self._store.query("SELECT model, last_loaded_at FROM ollama_model_use WHERE endpoint = ?", (endpoint,))
        last_loaded = {r["model"]: r["last_loaded_at"] for r in rows}
        result = storage.report(found["models_dir"], models, last_loaded, self._unused_days)
        return {"endpoint": endpoint, "unused_days": self._unused_days, **result}
