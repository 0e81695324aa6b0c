"""The running AI module of one host: settings, store, tasks, realtime and providers.

With ``OPEN1PANEL_AI_REDIS_URL`` set, several processes may serve one data dir; only the one
holding the owner lock (:mod:`open1panel_ai.ownership`) runs background work, and the others
relay the API to it (:mod:`open1panel_ai.relay`). Without it, this process is the owner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from hookspecs.ai import PROVIDER_KINDS
from hookspecs.panel import PanelHost, PanelUser
from open1panel_ai.config import Settings
from open1panel_ai.ownership import Ownership
from open1panel_ai.providers import ProviderRegistry
from open1panel_ai.realtime import Realtime
from open1panel_ai.relay import OwnerSocket, Relay
from open1panel_ai.store import Store
from open1panel_ai.tasks import TaskRunner

log = logging.getLogger(__name__)

DATABASE_NAME = "open1panel-ai.sqlite3"


class AIContext:
    """Everything the feature services share, created at ``panel_startup``."""

    def __init__(self, host: PanelHost, settings: Settings,
                 features: Mapping[str, ModuleType] | None = None) -> None:
        self.host = host
        self.settings = settings
        self.features = dict(features or {})
        #: Each started feature's service, by feature name.
        self.services: dict[str, Any] = {}
        self.data_dir = host.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / DATABASE_NAME)
        self.realtime = Realtime(host.socketio)
        self.tasks = TaskRunner(self.store, self._publish_task, workers=settings.get_int("task_workers"))
        provider_settings = {**settings.values, "data_dir": str(self.data_dir)}
        self.providers = ProviderRegistry(
            host.plugin_manager, provider_settings,
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
        self._owner = self.ownership is None or self.ownership.try_acquire()
        for name, feature in self.features.items():
            try:
                self.services[name] = feature.start(self)
            except Exception:
                # One broken feature must not take the others down; its status says why.
                log.exception("the %s feature did not start", name)
        if self._owner:
            self._start_tasks()
            self._open_owner_socket()
        else:
            log.info("another process owns %s; this one relays the API to it", self.data_dir)
            self._relay = Relay(self.data_dir)
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
        return self._relay.forward(request)

    def _take_over(self) -> None:
        """Become the owner after the last one ended: start its work as a fresh start would."""
        with self._ownership_lock:
            if self._stopped:
                return
            # The tasks first: once the API is answered here, new tasks must not be taken for
            # ones the last owner left unfinished.
            self._start_tasks()
            self._owner = True
            self._open_owner_socket()
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

    def _open_owner_socket(self) -> None:
        """Let the other processes relay to this one (only once it answers the API itself)."""
        if self.ownership is not None:
            self._owner_socket = OwnerSocket(self.host.app, self.data_dir)
            self._owner_socket.start()

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

    def service(self, name: str) -> Any:
        """The running service of feature ``name``; a 503 error when it is not running."""
        from open1panel_ai import errors

        service = self.services.get(name)
        if service is None:
            raise errors.UpstreamUnavailable(
                f"The {name} feature is not running; see the panel's log.", code="feature_not_running")
        return service

    def authenticate(self, request: Any, auth: Any = None) -> PanelUser | None:
        """Ask the host who ``request`` acts for (None: nobody)."""
        return self.host.plugin_manager.hook.panel_authenticate(request=request, auth=auth)

    def _publish_task(self, task: dict) -> None:
        self.realtime.publish("task", task, ["tasks", f"task:{task['id']}"])
