"""Always-current state of each Ollama endpoint: its models and its loaded models.

One :class:`EndpointWatcher` per endpoint asks the server for ``/api/tags`` and ``/api/ps`` in
a thread of its own, and keeps the answer. It polls every ``OPEN1PANEL_AI_OLLAMA_WATCH_INTERVAL``
seconds (1 by default) while somebody is subscribed to the ``ollama`` Socket.IO topic, while a
pull or an import runs on the endpoint, and for a while after an API request read its state;
otherwise every ``OPEN1PANEL_AI_OLLAMA_WATCH_IDLE_INTERVAL`` seconds (60; 0: not at all), which
keeps the record of when each model was last loaded (for the clean-up suggestions) current.

Each poll is compared with the last one, and what changed, made in the panel or outside it
(``ollama pull`` on the server, another client loading a model), is pushed as an ``ollama``
event (see :func:`changes`).

Requests read the state instead of asking Ollama (:meth:`EndpointWatcher.read`). A state is
fresh while it is at most ``OPEN1PANEL_AI_OLLAMA_MAX_AGE`` seconds old (2) and no change was
made through the panel since its poll began; otherwise the request waits for the next poll,
but never longer than ``OPEN1PANEL_AI_OLLAMA_REQUEST_WAIT`` seconds (5). Past that it gets
the last state, marked stale with its age and why, or, with none, an error that says how far
the poll got: the panel had not even sent it (``panel_busy``), Ollama did not take the
connection (``ollama_unreachable``) or Ollama took the request and has not answered
(``ollama_timeout``). So a slow or hung Ollama holds no request thread beyond that bound.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from open1panel_ai import errors
from open1panel_ai.i18n import Message
from open1panel_ai.ollama import provider as http_provider

if TYPE_CHECKING:
    from open1panel_ai.realtime import Realtime

log = logging.getLogger(__name__)

TOPIC = "ollama"
EVENT = "ollama"
#: Seconds an API read keeps its endpoint polled at the active pace.
DEMAND_SECONDS = 30.0
#: Seconds :meth:`EndpointWatcher.stop` waits for a poll under way.
STOP_WAIT = 0.5
#: Error codes of a poll that got no answer in time: the last state is still the best there
#: is (marked stale). Any other failure (Ollama down, a bad answer) is the answer itself.
NO_ANSWER = ("ollama_timeout", "panel_busy")


@dataclass(frozen=True)
class Snapshot:
    """One successful poll of an endpoint: its models (merged with what is loaded, as
    ``GET /ollama/models`` lists them) and its loaded models (as ``GET /ollama/running``)."""

    endpoint: str
    models: list[dict[str, Any]]
    running: list[dict[str, Any]]
    #: Wall-clock time the answer arrived, and the monotonic times the poll began and ended.
    fetched_at: float
    started: float
    finished: float
    #: Whether the poll ran at the active pace (see :meth:`EndpointWatcher.read`).
    active: bool = False

    def age(self) -> float:
        return max(0.0, time.monotonic() - self.finished)

    def freshness(self, stale_because: errors.ApiError | None = None) -> dict[str, Any]:
        """The fields an answer built from this state carries: ``fetched_at`` (ISO 8601,
        UTC), ``age`` in seconds, ``stale``, and ``error`` saying why a stale state is all
        there is (None when fresh)."""
        return {
            "fetched_at": iso(self.fetched_at),
            "age": round(self.age(), 3),
            "stale": stale_because is not None,
            "error": None
            if stale_because is None
            else {"code": stale_because.code, "message": stale_because.message, "details": stale_because.details},
        }


@dataclass
class _Poll:
    """The poll under way: when it began and how far its current request got."""

    started: float
    stage: str = "queued"  # queued, connecting, sent, answered

    def trace(self, event: str, info: dict) -> None:
        """httpcore's trace callback (see ``provider.request_trace``)."""
        if event.endswith(".started"):
            if "connect_tcp" in event or "connect_unix" in event:
                self.stage = "connecting"
            elif "send_request_headers" in event:
                self.stage = "sent"
        elif "receive_response_headers" in event and event.endswith(".complete"):
            self.stage = "answered"


class PollFailed(Exception):
    """A poll that could not make a state: the error for the model list (which needs both
    of Ollama's lists) and the one for the loaded models (which needs ``/api/ps`` only)."""

    def __init__(self, models_error: errors.ApiError, running_error: errors.ApiError | None = None) -> None:
        super().__init__(models_error.message)
        self.models_error = models_error
        self.running_error = running_error or models_error


@dataclass
class _Failure:
    error: errors.ApiError
    started: float
    running_error: errors.ApiError | None = None
    finished: float = field(default_factory=time.monotonic)

    def for_part(self, part: str) -> errors.ApiError:
        return self.running_error if part == "running" and self.running_error else self.error


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


class EndpointWatcher:
    """Polls one endpoint in a thread of its own, keeps the last answer and publishes changes.

    :param fetch: asks the server; returns ``(models, running)`` as the provider lists them,
        or raises an :class:`~open1panel_ai.errors.ApiError`.
    :param build: turns a fetch into a :class:`Snapshot` (merges, remembers what is loaded).
    :param publish: ``publish(payload)`` sends one ``ollama`` event.
    :param active: whether the endpoint is to be polled at the active pace now (somebody is
        subscribed, a task needs it); a read's demand counts too.
    :param interval: seconds between polls at the active pace; ``idle_interval`` otherwise
        (0: none).
    """

    def __init__(
        self,
        name: str,
        url: str,
        fetch: Callable[[], tuple[list, list]],
        build: Callable[[list, list, float, float], Snapshot],
        publish: Callable[[dict[str, Any]], None],
        active: Callable[[EndpointWatcher], bool],
        interval: float,
        idle_interval: float,
        max_age: float,
        request_wait: float,
    ) -> None:
        self.name = name
        self.url = url
        self._fetch = fetch
        self._build = build
        self._publish = publish
        self._active = active
        self.interval = interval
        self.idle_interval = idle_interval
        self.max_age = max_age
        self.request_wait = request_wait
        self._cond = threading.Condition()
        self._state: Snapshot | None = None
        self._failure: _Failure | None = None
        self._poll: _Poll | None = None
        self._changed_at = float("-inf")  # monotonic time of the last change made through the panel
        self._asked_at = float("-inf")  # monotonic time a reader last wanted a new poll
        self.demand_until = float("-inf")
        self.needed = 0  # tasks under way on this endpoint
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ollama-watch-{name}", daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=STOP_WAIT)

    def wake(self) -> None:
        """Re-read the pace now (somebody subscribed, a task started)."""
        self._wake.set()

    def changed(self) -> None:
        """Something was changed through the panel: the state is not fresh any more, and the
        next reader waits for a poll that began after now."""
        with self._cond:
            self._changed_at = time.monotonic()
        self._wake.set()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                due = max(self._asked_at, self._changed_at) > self._last_started()
            if not due:
                # Readers and changes set their time before waking, so a wake lost between
                # the check and the wait is caught by the next check.
                self._wake.wait(self.interval if self.is_active() else (self.idle_interval or None))
                self._wake.clear()
                if self._stopping.is_set():
                    return
            self._poll_once()

    def is_active(self) -> bool:
        return time.monotonic() < self.demand_until or self.needed > 0 or self._active(self)

    def _last_started(self) -> float:
        latest = [s.started for s in (self._state, self._failure) if s is not None]
        if self._poll is not None:
            latest.append(self._poll.started)
        return max(latest, default=float("-inf"))

    def _poll_once(self) -> None:
        poll = _Poll(time.monotonic())
        active = self.is_active()
        with self._cond:
            self._poll = poll
        token = http_provider.request_trace.set(poll.trace)
        try:
            models, running = self._fetch()
            if self._stopping.is_set():
                return
            snapshot = dataclasses.replace(self._build(models, running, poll.started, time.time()), active=active)
        except PollFailed as exc:
            self._failed(poll, exc.models_error, exc.running_error)
            return
        except errors.ApiError as exc:
            self._failed(poll, exc)
            return
        except Exception as exc:  # a bug or a store failure must not end the watching for good
            log.exception("watching the Ollama endpoint %s failed", self.name)
            self._failed(
                poll,
                errors.ApiError(
                    Message("ollama.error.watch_failed", endpoint=self.name, reason=f"{type(exc).__name__}: {exc}")
                ),
            )
            return
        finally:
            http_provider.request_trace.reset(token)
            with self._cond:
                if self._poll is poll:
                    self._poll = None
                self._cond.notify_all()
        with self._cond:
            previous, self._state = self._state, snapshot
            failure, self._failure = self._failure, None
            self._cond.notify_all()
        if failure is not None:
            self._send({"type": "status", "endpoint": self.name, "reachable": True, "error": None})
        if previous is not None:
            for event in changes(previous, snapshot):
                self._send(event)

    def _failed(self, poll: _Poll, exc: errors.ApiError, running_error: errors.ApiError | None = None) -> None:
        with self._cond:
            before, self._failure = self._failure, _Failure(exc, poll.started, running_error)
            self._cond.notify_all()
        if before is None or before.error.code != exc.code:
            log.info("the Ollama endpoint %s did not answer its watcher: %s", self.name, exc.message)
            self._send(
                {
                    "type": "status",
                    "endpoint": self.name,
                    "reachable": False,
                    "error": {
                        "code": exc.code,
                        "message": exc.message,
                        "i18n": exc.message.public() if isinstance(exc.message, Message) else None,
                        "details": _public_details(exc.details),
                    },
                }
            )

    def _send(self, payload: dict[str, Any]) -> None:
        try:
            self._publish(payload)
        except Exception:  # a lost push must not end the watching
            log.exception("pushing an ollama event failed")

    # -- readers -------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """The last state, however old (None before the first successful poll)."""
        return self._state

    def read(
        self, max_age: float | None = None, demand: bool = True, part: str = "models"
    ) -> tuple[Snapshot, errors.ApiError | None]:
        """The endpoint's state for a request: ``(snapshot, None)`` when fresh, or ``(last
        snapshot, why)`` when no fresh one came within the request wait, or the last poll
        timed out.

        :param max_age: the oldest state that counts as fresh (default: the setting).
        :param demand: keep the endpoint polled at the active pace for a while (a page or a
            script is reading it); False for the occasional look of another feature. A state
            is fresh for a demanding read only if its poll ran at the active pace: an idle
            poll is rare, so what changed outside since is not to be taken for current.
        :param part: ``models`` or ``running``: which error a failed poll answers with.
        :raises errors.ApiError: the last poll failed (Ollama down, a bad answer), or no poll
            ever succeeded and none answered within the wait.
        """
        max_age = self.max_age if max_age is None else max_age
        now = time.monotonic()
        if demand:
            self.demand_until = now + DEMAND_SECONDS
        deadline = now + self.request_wait
        with self._cond:
            wanted = max(now - max_age, self._changed_at)
            if self._outcome_after(wanted, demand) is None:
                self._asked_at = now
                self._wake.set()
                while self._outcome_after(wanted, demand) is None and not self._stopping.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            outcome = self._outcome_after(wanted, demand)
            state, poll = self._state, self._poll
        if isinstance(outcome, Snapshot):
            return outcome, None
        if isinstance(outcome, _Failure):
            error = outcome.for_part(part)
            if state is not None and error.code in NO_ANSWER:
                return state, error
            raise error
        why = self._no_answer(poll)
        if state is not None:
            return state, why
        raise why

    def _outcome_after(self, moment: float, active: bool) -> Snapshot | _Failure | None:
        """The latest finished poll, when it began at or after ``moment`` (and, a success,
        ran at the active pace when ``active`` says so)."""
        latest = max((s for s in (self._state, self._failure) if s is not None), key=lambda s: s.started, default=None)
        if latest is None or latest.started < moment:
            return None
        if active and isinstance(latest, Snapshot) and not latest.active:
            return None
        return latest

    def _no_answer(self, poll: _Poll | None) -> errors.ApiError:
        """Why no fresh state came within the request wait, as far as the poll under way got."""
        waited = f"{self.request_wait:g}"
        stage = poll.stage if poll is not None else "queued"
        if stage == "connecting":
            fix = Message("ollama.fix.unreachable")
            return errors.UpstreamUnavailable(
                Message("ollama.error.not_accepting", url=self.url, seconds=waited),
                code="ollama_unreachable",
                details={
                    "url": self.url,
                    "stage": "connect",
                    "connected": False,
                    "waited": self.request_wait,
                    "fix": fix,
                    "fix_i18n": fix.public(),
                },
            )
        if stage == "sent":
            return http_provider.ollama_timeout(self.url, waited=self.request_wait)
        # Not sent yet (or between its two requests): the panel itself is short of time.
        return http_provider.panel_busy(self.url, waited=self.request_wait)


def _public_details(details: dict[str, Any]) -> dict[str, Any]:
    """Details as an event carries them: Messages as text, with their keys beside them."""
    public = {}
    for key, value in details.items():
        public[key] = str(value) if isinstance(value, Message) else value
    return public


def changes(old: Snapshot, new: Snapshot) -> list[dict[str, Any]]:
    """The ``ollama`` events from one poll to the next, each with ``type`` and ``endpoint``:

    - ``model_added`` / ``model_changed`` with ``model`` (as ``GET /ollama/models`` lists it),
      ``model_removed`` with ``name``: the model list changed (a new digest, size or time,
      or being loaded or unloaded, is a change);
    - ``running`` with ``models`` (as ``GET /ollama/running`` lists them, each with
      ``expires_at``, ``expires_in`` and ``vram_share``): what is loaded changed.
    """
    events: list[dict[str, Any]] = []
    stamp = {"endpoint": new.endpoint, "fetched_at": iso(new.fetched_at)}
    before = {m["name"]: m for m in old.models}
    after = {m["name"]: m for m in new.models}
    for name, model in after.items():
        if name not in before:
            events.append({"type": "model_added", **stamp, "model": model})
        elif _comparable(before[name]) != _comparable(model):
            events.append({"type": "model_changed", **stamp, "model": model})
    for name in before:
        if name not in after:
            events.append({"type": "model_removed", **stamp, "name": name})
    if [_comparable(m) for m in old.running] != [_comparable(m) for m in new.running]:
        events.append({"type": "running", **stamp, "models": new.running})
    return events


def _comparable(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without what changes by the clock alone."""
    return {key: value for key, value in entry.items() if key != "expires_in"}


class Watchers:
    """The watchers of every endpoint, made and stopped as endpoints come and go.

    :param endpoints: the endpoints as ``OllamaService.endpoints()`` lists them.
    :param fetch: ``fetch(url) -> (models, running)``, asking the server.
    :param build: ``build(endpoint, models, running, started, fetched_at) -> Snapshot``.
    """

    def __init__(
        self,
        realtime: Realtime,
        endpoints: Callable[[], list[dict[str, Any]]],
        fetch: Callable[[str], tuple[list, list]],
        build: Callable[[str, list, list, float, float], Snapshot],
        *,
        interval: float,
        idle_interval: float,
        max_age: float,
        request_wait: float,
    ) -> None:
        self._realtime = realtime
        self._endpoints = endpoints
        self._fetch = fetch
        self._build = build
        self.interval = interval
        self.idle_interval = idle_interval
        self.max_age = max_age
        self.request_wait = request_wait
        self._lock = threading.Lock()
        self._watchers: dict[str, EndpointWatcher] = {}
        self._stopped = False

    def start(self) -> None:
        self._realtime.watch(TOPIC, self._listeners_changed)
        self.sync()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.stop()

    def sync(self) -> None:
        """One watcher per endpoint: new endpoints get one, removed ones lose theirs."""
        wanted = {e["name"]: e["url"] for e in self._endpoints()}
        stale = []
        with self._lock:
            if self._stopped:
                return
            for name, watcher in list(self._watchers.items()):
                if wanted.get(name) != watcher.url:
                    stale.append(self._watchers.pop(name))
            for name, url in wanted.items():
                if name not in self._watchers:
                    self._watchers[name] = watcher = self._make(name, url)
                    watcher.start()
        for watcher in stale:
            watcher.stop()

    def get(self, name: str, url: str) -> EndpointWatcher:
        """The watcher of endpoint ``name`` (made now if the endpoint is new)."""
        watcher = self._watchers.get(name)
        if watcher is None or watcher.url != url:
            self.sync()
            watcher = self._watchers.get(name)
            if watcher is None:  # stopping, or the endpoint went meanwhile
                raise errors.UpstreamUnavailable(
                    Message("error.feature_not_running", feature="ollama"), code="feature_not_running"
                )
        return watcher

    def changed(self, name: str) -> None:
        """A change was made to endpoint ``name`` through the panel."""
        watcher = self._watchers.get(name)
        if watcher is not None:
            watcher.changed()

    def need(self, name: str) -> Callable[[], None]:
        """Keep endpoint ``name`` polled at the active pace (a task runs on it) until the
        function returned is called; that call also counts as a change."""
        watcher = self._watchers.get(name)
        if watcher is None:
            return lambda: None
        with self._lock:
            watcher.needed += 1
        watcher.wake()

        def release() -> None:
            with self._lock:
                watcher.needed -= 1
            watcher.changed()

        return release

    def _make(self, name: str, url: str) -> EndpointWatcher:
        return EndpointWatcher(
            name,
            url,
            fetch=lambda: self._fetch(url),
            build=lambda models, running, started, at: self._build(name, models, running, started, at),
            publish=lambda payload: self._realtime.publish(EVENT, payload, [TOPIC], local=True),
            active=lambda watcher: self._realtime.listeners(TOPIC) > 0,
            interval=self.interval,
            idle_interval=self.idle_interval,
            max_age=self.max_age,
            request_wait=self.request_wait,
        )

    def _listeners_changed(self, topic: str, count: int) -> None:
        if topic == TOPIC:
            for watcher in list(self._watchers.values()):
                watcher.wake()
