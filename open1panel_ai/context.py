"""The running AI module of one host: settings, store, tasks, realtime and providers.

With ``OPEN1PANEL_AI_REDIS_URL`` set, several processes may serve one data dir; only the one
holding the owner lock (:mod:`open1panel_ai.ownership`) runs background work, and the others
relay the API to it (:mod:`open1panel_ai.relay`). Without it, this process is the owner.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hookspecs.ai import PROVIDER_KINDS
from hookspecs.panel import PanelHost, PanelUser
from open1panel_ai import private
from open1panel_ai.config import Settings
from open1panel_ai.features import Feature
from open1panel_ai.ownership import Ownership
from open1panel_ai.providers import ProviderRegistry
from open1panel_ai.realtime import Realtime, sign_message_queue
from open1panel_ai.relay import OwnerSocket, Relay, check_socket_path
from open1panel_ai.store import Store
from open1panel_ai.tasks import TaskRunner

log = logging.getLogger(__name__)

DATABASE_NAME = "open1panel-ai.sqlite3"

T = TypeVar("T")


class AIContext:
    """Everything the feature services share, created at ``panel_startup``."""

    def __init__(self, host: PanelHost, settings: Settings, features: Mapping[str, Feature] | None = None) -> None:
        if settings.get("redis_url"):
            check_socket_path(host.data_dir)  # before anything opens, as processes share it
        self.host = host
        self.settings = settings
        self.features = dict(features or {})
        #: Each started feature's service, by feature name.
        self.services: dict[str, Any] = {}
        self.data_dir = host.data_dir
        private.repair(self.data_dir)
        # With a message queue, this process signs what it publishes there and drops what no
        # process of this data dir signed, before anything is published or received.
        sign_message_queue(host.socketio, self.data_dir)
        self.store = Store(self.data_dir / DATABASE_NAME)
        self.realtime = Realtime(
            host.socketio, [topic for feature in self.features.values() for topic in feature.topics]
        )
        self.tasks = TaskRunner(self.store, self._publish_task, workers=settings.get_int("task_workers"))
        provider_settings = {**settings.values, "data_dir": str(self.data_dir)}
        self.providers = ProviderRegistry(
            host.plugin_manager,
            provider_settings,
            {kind: settings.provider_choice(kind) for kind in PROVIDER_KINDS},
        )
        #: The claim on the data dir's owner lock; None when this is the only process.
        self.ownership = Ownership(self.data_dir) if settings.get("redis_url") else None
        self._owner = False
        self._until_owner: list[Callable[[], None]] = []
        self._owner_socket: OwnerSocket | None = None
        self._relay: Relay | None = None
        self._ownership_lock = threading.RLock()
        self._stopped = False

    @property
    def is_owner(self) -> bool:
        """Whether this process runs the background work (and answers the API itself)."""
        return self._owner

    def start(self) -> None:
        """Start the features, then decide whether this process is the owner of the data dir.

        The owner (the only process, or the one that takes the owner lock) starts the tasks,
        opens its socket to the others and runs the features' owner work. Any other process
        relays the API to the owner, and waits in a thread to take over when it ends.
        """
        for name, feature in self.features.items():
            try:
                self.services[name] = feature.start(self)
            except Exception:
                # One broken feature must not take the others down; its status says why.
                log.exception("the %s feature did not start", name)
        if self.ownership is None:
            self._become_owner()
            return
        self._relay = Relay(self.data_dir)
        if self.ownership.try_acquire():
            self._take_over()
        else:
            log.info("another process owns %s; this one relays the API to it", self.data_dir)
            self.ownership.acquire_later(self._take_over)

    def when_owner(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` now if this process is the owner, else once it becomes the
        owner. Features start the work that must run once per data dir through it."""
        with self._ownership_lock:
            if not self._owner:
                self._until_owner.append(callback)
                return
        callback()

    def relayed(self, request: Any) -> Any:
        """The owner's answer to an API ``request`` when this process is not the owner (a
        Flask response); None when it is, and answers itself."""
        if self._owner:
            return None
        if self._relay is None:
            raise RuntimeError("AIContext.start() makes the relay before the API is answered")
        return self._relay.forward(request)

    def _take_over(self) -> None:
        """Become the owner, having just taken the lock. When that fails part way (the owner's
        socket cannot be bound, the tasks cannot start), undo what started and give the lock
        up, so that another process can be the owner; this one goes on relaying.

        No failure ends this process or the thread that took the lock while the lock is held:
        a ``SystemExit`` raised on the way (a library that exits instead of raising) is given
        up on like any error, so a worker cannot reboot in a loop, nor a takeover thread die
        holding the lock."""
        with self._ownership_lock:
            if self._stopped:
                return
            try:
                self._become_owner()
            except (Exception, SystemExit):
                log.exception(
                    "process %d could not become the owner of %s; it gives the owner "
                    "lock up for another process to take, and relays the API",
                    os.getpid(),
                    self.data_dir,
                )
                self._owner = False
                if self._owner_socket is not None:
                    self._owner_socket.stop()
                    self._owner_socket = None
                self.tasks.shutdown()
                if self.ownership is not None:  # always set when a lock was taken
                    self.ownership.release()

    def _become_owner(self) -> None:
        """Start the owner's work as a fresh start would."""
        with self._ownership_lock:
            # The socket first, as it is what fails when the data dir is in a bad state, and
            # nothing is started yet then; it answers only once this process answers the API.
            self._listen_owner_socket()
            # The tasks next: once the API is answered here, new tasks must not be taken for
            # ones the last owner left unfinished.
            self._start_tasks()
            self._owner = True
            if self._owner_socket is not None:
                self._owner_socket.serve()
            for callback in self._until_owner:
                try:
                    callback()
                except Exception:
                    log.exception("starting the owner's work failed in %r", callback)
            self._until_owner.clear()

    def _start_tasks(self) -> None:
        resumed = self.tasks.start()
        if resumed:
            log.info("resumed %d interrupted task(s)", len(resumed))

    def _listen_owner_socket(self) -> None:
        """Bind the socket the other processes relay to (an OwnerSocketError when it cannot)."""
        if self.ownership is not None:
            self._owner_socket = OwnerSocket(self.host.app, self.data_dir)
            self._owner_socket.listen()

    def stop(self) -> None:
        with self._ownership_lock:
            self._stopped = True
        if self._owner_socket is not None:
            self._owner_socket.stop()  # no more relayed requests while the rest stops
        for name in reversed(list(self.services)):
            try:
                self.features[name].stop(self.services.pop(name))
            except Exception:
                log.exception("the %s feature did not stop cleanly", name)
        self.tasks.shutdown()
        self.store.close()
        if self._relay is not None:
            self._relay.close()
        if self.ownership is not None:
            # Last, so the next owner starts once this one's children and tasks are put away.
            self.ownership.release()

    def find(self, interface: type[T]) -> T | None:
        """The running service that offers ``interface`` (one of :mod:`open1panel_ai.interfaces`,
        listed in its feature's ``offers``); None when no running feature offers it."""
        for found in self.find_all(interface):
            return found
        return None

    def find_all(self, interface: type[T]) -> list[T]:
        """Every running service that offers ``interface``, in the features' order."""
        return [
            self.services[name]
            for name, feature in self.features.items()
            if interface in feature.offers and name in self.services
        ]

    def service(self, name: str) -> Any:
        """The running service of feature ``name``; a 503 error when it is not running."""
        from open1panel_ai import errors
        from open1panel_ai.i18n import Message

        service = self.services.get(name)
        if service is None:
            raise errors.UpstreamUnavailable(
                Message("error.feature_not_running", feature=name), code="feature_not_running"
            )
        return service

    def authenticate(self, request: Any, auth: Any = None) -> PanelUser | None:
        """Ask the host who ``request`` acts for (None: nobody)."""
        return self.host.plugin_manager.hook.panel_authenticate(request=request, auth=auth)

    def _publish_task(self, task: dict) -> None:
        self.realtime.publish("task", task, ["tasks", f"task:{task['id']}"])
