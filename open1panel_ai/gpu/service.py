"""The GPU monitoring service: one sampler, live pushes to the ``gpu`` topic, history, metrics.

The sampler reads the chosen provider every ``OPEN1PANEL_AI_GPU_INTERVAL`` seconds (2 by
default) and pushes each sample as a ``gpu`` event, but only while somebody is subscribed to
the ``gpu`` topic. While nobody listens it samples every ``OPEN1PANEL_AI_GPU_HISTORY_INTERVAL``
seconds (10 by default; 0 stops sampling altogether) so the history has no holes. Every sample
goes into the round-robin history.

When several processes serve one data dir, each samples and pushes for its own subscribers
only, and only the owner process (see :mod:`open1panel_ai.ownership`) keeps the history.

A provider whose ``sample()`` raises makes ``GET /gpu`` answer 503 with its words
(:class:`ProviderFailed`); the sampler logs the failure and keeps its pace, so the history and
the pushes carry on once the provider reads again.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hookspecs.ai import GPUProvider
from open1panel_ai import errors, i18n
from open1panel_ai.gpu import doctor, metrics
from open1panel_ai.gpu.history import History
from open1panel_ai.i18n import Message
from open1panel_ai.interfaces import LoadedModels, MCPServers, MetricsSource

if TYPE_CHECKING:
    from open1panel_ai.config import Settings
    from open1panel_ai.context import AIContext

log = logging.getLogger(__name__)
T = TypeVar("T")

TOPIC = "gpu"
EVENT = "gpu"
#: How old the list of Ollama models on the CPU may grow before a sample asks for a new one.
OLLAMA_REFRESH_SECONDS = 10


def interval_setting(settings: Settings, name: str, default: float, minimum: float) -> float:
    """A sampling interval from the settings; a bad value falls back to the default."""
    raw = settings.get(name) or str(default)
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value != 0 and not minimum <= value <= 3600:
        log.warning(
            "OPEN1PANEL_AI_%s=%r is not a number of seconds between %s and 3600; using %s",
            name.upper(),
            raw,
            minimum,
            default,
        )
        return default
    return value


class ProviderFailed(errors.UpstreamUnavailable):
    """The GPU provider raised while reading the GPUs; the API answers 503 with its words."""

    code = "gpu_provider_failed"

    def __init__(self, provider_name: str, failure: Exception) -> None:
        words = f"{type(failure).__name__}: {failure}"
        super().__init__(
            Message("gpu.error.provider_failed", provider=repr(provider_name), error=words),
            details={"provider": provider_name, "error": words, "fix": Message("gpu.error.provider_failed_fix")},
        )
        self.words = words


class GPUService:
    """What the GPU views, the sampler and ``/metrics`` share."""

    def __init__(self, context: AIContext) -> None:
        self.context = context
        self.interval = interval_setting(context.settings, "gpu_interval", 2.0, 0.5) or 2.0
        self.idle_interval = interval_setting(context.settings, "gpu_history_interval", 10.0, 0.5)
        self.history = History(context.store)
        self.hostname = socket.gethostname()
        self._sample_lock = threading.Lock()
        self._latest: dict[str, Any] | None = None
        self._history_lock = threading.Lock()
        self._history_answer: dict[str, Any] | None = None
        self._history_reading = False
        self._ollama_cache: tuple[float, list[dict]] = (-OLLAMA_REFRESH_SECONDS, [])
        self._ollama_refreshing = threading.Lock()
        self._last_failure: str | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._ollama_on_cpu()  # ask Ollama now, so the first samples already have the list
        self.context.realtime.watch(TOPIC, self._listeners_changed)
        self._thread.start()
        self.context.when_owner(self._wake.set)  # start the history's idle pace

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _listeners_changed(self, topic: str, count: int) -> None:
        if topic == TOPIC:
            self._wake.set()  # start pushing now, or fall back to the idle pace

    def _run(self) -> None:
        while not self._stopping.is_set():
            listening = self.context.realtime.listeners(TOPIC) > 0
            idle_interval = self.idle_interval if self.context.is_owner else 0
            if listening or idle_interval:
                self._tick(publish=listening)
            pause = self.interval if listening else (idle_interval or None)
            self._wake.wait(pause)
            self._wake.clear()

    def _tick(self, publish: bool) -> None:
        sample = self._sample_or_none(self.sample)
        if sample is not None and publish:
            try:
                self.context.realtime.publish(EVENT, sample, [TOPIC], local=True)
            except Exception:  # a lost push must not end the sampling (and the history) for good
                log.exception("pushing a GPU sample failed")

    def _sample_or_none(self, take: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """``take()``'s sample, or None when no provider is usable or the provider failed.

        A broken provider fails the same way on every tick and every scrape, so a failure is
        logged once, and again only when it changes or after a good sample.
        """
        try:
            sample = take()
        except ProviderFailed as exc:
            if self._is_new_failure(exc.words):
                log.exception("the GPU provider failed: %s", exc.words)
            return None
        except errors.ApiError as exc:  # no usable provider: nothing to record
            log.debug("no GPU sample: %s", exc.message)
            return None
        except Exception as exc:  # the rest of a sample: the history write, say
            if self._is_new_failure(f"{type(exc).__name__}: {exc}"):
                log.exception("taking a GPU sample failed")
            return None
        self._last_failure = None
        return sample

    def _is_new_failure(self, failure: str) -> bool:
        """Whether ``failure`` differs from the last one, which it becomes."""
        new, self._last_failure = failure != self._last_failure, failure
        return new

    # -- readings -----------------------------------------------------------------------------

    def provider(self) -> GPUProvider:
        return self.context.providers.get("gpu")

    def sample(self) -> dict[str, Any]:
        """Take a sample now, record it in the history and keep it as the latest.

        :raises ProviderFailed: the provider's ``sample()`` raised.
        """
        return self._take()

    def current(self) -> dict[str, Any]:
        """The latest sample if it was taken within one interval or a new one is being taken
        (by the sampler or another request), else a new one.

        A busy panel may take a sample later than its interval says; requests then answer the
        latest at once, its ``time`` telling how old it is, rather than queue behind the
        provider's read and the history's write. Only without any sample yet do they wait
        for the one under way: however many ask at once, the provider is read, and the
        history written, once.
        """
        latest = self._latest
        if latest is not None and (time.time() - latest["time"] < self.interval or self._sample_lock.locked()):
            return latest
        return self._take(reuse_newer_than=latest)

    _NONE = object()

    def _take(self, reuse_newer_than: object = _NONE) -> dict[str, Any]:
        """A new sample; or, when ``reuse_newer_than`` is given (the latest sample the caller
        saw, or None) and another sample was taken while this call waited for its turn, that
        one."""
        provider = self.provider()
        ollama_cpu_models = self._ollama_on_cpu()
        with self._sample_lock:
            newer = self._latest
            if reuse_newer_than is not self._NONE and newer is not None and newer is not reuse_newer_than:
                return newer
            try:
                reading = provider.sample()
            except Exception as exc:
                raise ProviderFailed(provider.name, exc) from exc
            now = time.time()
            sample = {
                "time": now,
                "provider": provider.name,
                "mode": "cpu" if "cpu" in reading and not reading["devices"] else "gpu",
                "interval": self.interval,
                **reading,
                "ollama_cpu_models": ollama_cpu_models,
            }
            sample.setdefault("cpu", None)
            sample.setdefault("reason", None)
            sample.setdefault("fix", None)
            sample["reason_i18n"] = i18n.public(sample["reason"])  # pages show it in their language
            sample["fix_i18n"] = i18n.public(sample["fix"])
            self._latest = sample
        if self.context.is_owner:  # outside the lock: the store's write lock may be busy
            self.history.record(now, history_readings(sample))
        return sample

    def history_between(self, since: float | None, until: float | None) -> dict[str, Any]:
        """The history between ``since`` and ``until`` (by default the last hour up to now)."""
        if since is None and until is None:
            return self._last_hour()
        now = time.time()
        until = now if until is None else until
        since = until - 3600 if since is None else since
        if since >= until:
            raise errors.BadRequest(
                Message("gpu.error.bad_range"), details={"since": since, "until": until}, code="bad_range"
            )
        return self.history.query(since, until, now)

    def _last_hour(self) -> dict[str, Any]:
        """The last hour, read again only when the answer before is older than one of its
        points (``step``, 8 s for an hour of averages) or one sampling interval, whichever is
        longer; until then that answer is given again (its ``until`` says how old it is).

        Reading an hour of history is the dearest read of the API (every sample, or averages
        over them computed in SQLite), and clients that poll it would otherwise each repeat it.
        While one request reads a newer answer, the others get the one before rather than wait
        for it; only the first read of all is waited for.
        """
        now = time.time()
        with self._history_lock:
            answer = self._history_answer
            if answer is None:
                answer = self._history_answer = self.history.query(now - 3600, now, now)
                return answer
            fresh = 0 <= now - answer["until"] < max(self.interval, answer["step"] or 0)
            if fresh or self._history_reading:
                return answer
            self._history_reading = True
        read = None
        try:
            read = self.history.query(now - 3600, now, now)
        finally:
            with self._history_lock:
                self._history_reading = False
                if read is not None:
                    self._history_answer = read
        return read

    def summary(self) -> dict[str, Any]:
        """What the landing page says of the GPUs: ``mode`` is ``gpu``, ``cpu`` (no GPU is
        used here, so the CPU is watched instead) or ``unavailable`` (no provider, or it
        failed; ``reason`` says why), with the count of GPUs and of lost ones."""
        try:
            sample = self.current()
        except errors.ApiError as exc:
            return {
                "state": "attention",
                "mode": "unavailable",
                "provider": None,
                "devices": 0,
                "lost": 0,
                "reason": exc.message,
                "fix": exc.details.get("fix"),
            }
        devices = sample["devices"]
        lost = sum(1 for device in devices if device.get("lost"))
        state = "cpu" if sample["mode"] == "cpu" else ("attention" if lost else "ready")
        return {
            "state": state,
            "mode": sample["mode"],
            "provider": sample["provider"],
            "devices": len(devices),
            "lost": lost,
            "reason": sample.get("reason"),
            "fix": sample.get("fix"),
        }

    def checks(self) -> dict[str, Any]:
        """The provider in use and its compatibility checks (NVML's when none is usable)."""
        choice = self.context.providers.choose("gpu")
        if choice.usable:
            return {"provider": choice.provider.name, "checks": choice.provider.checks()}
        return {"provider": None, "checks": doctor.run()}

    def metrics(self) -> bytes:
        """The Prometheus text of this panel: GPUs, loaded Ollama models, MCP servers. Without
        a GPU sample (no provider, or it failed) the other features' gauges still go out."""
        sample = self._sample_or_none(self.current)
        extra = []
        for source in self.context.find_all(MetricsSource):
            extra += _asked(source.metric_families) or []
        return metrics.render(
            sample,
            self.hostname,
            self._ask(LoadedModels, lambda ollama: ollama.running_everywhere()),
            self._ask(MCPServers, lambda mcp: mcp.servers()),
            extra,
        )

    def _ask(self, interface: type[T], read: Callable[[T], list[Any]]) -> list[Any] | None:
        """``read(service)`` of the service offering ``interface``; None without one, or when
        it fails: another feature must not break GPU monitoring."""
        service = self.context.find(interface)
        return None if service is None else _asked(lambda: read(service))

    def _ollama_on_cpu(self) -> list[dict[str, Any]]:
        """Loaded Ollama models held entirely in system memory (``size_vram`` 0), as last known.

        Asking Ollama can take up to its read timeout on every endpoint, so a sample never
        waits for it: a list older than ``OLLAMA_REFRESH_SECONDS`` is refreshed by a background
        thread (one at a time) and the next sample shows the new list.
        """
        fetched_at, models = self._ollama_cache
        if time.monotonic() - fetched_at >= OLLAMA_REFRESH_SECONDS and self._ollama_refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_ollama, name="gpu-ollama", daemon=True).start()
        return models

    def _refresh_ollama(self) -> None:
        """Ask the Ollama service for its loaded models; on failure keep the last known list."""
        try:
            running = self._ask(LoadedModels, lambda ollama: ollama.running_everywhere())
            models = (
                self._ollama_cache[1]
                if running is None
                else [
                    {"endpoint": m.get("endpoint"), "name": m.get("name"), "size": m.get("size")}
                    for m in running
                    if not m.get("size_vram")
                ]
            )
            self._ollama_cache = (time.monotonic(), models)
        finally:
            self._ollama_refreshing.release()


def history_readings(sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The readings of a sample the history keeps, per device (lost GPUs have none)."""
    readings = {}
    for device in sample["devices"]:
        if not device.get("lost"):
            readings[device.get("uuid") or f"gpu{device['index']}"] = device
    if sample.get("cpu"):
        readings["cpu"] = {
            "utilization": sample["cpu"]["utilization"],
            "memory_used": sample["cpu"]["memory_used"],
            "memory_total": sample["cpu"]["memory_total"],
        }
    return readings


def _asked(read: Callable[[], list[Any]]) -> list[Any] | None:
    """What ``read()`` returns; None, logged, when it fails."""
    try:
        return read()
    except Exception:
        log.warning("asking %r failed", read, exc_info=True)
        return None
