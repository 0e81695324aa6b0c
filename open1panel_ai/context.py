"""The running AI module of one host: settings, store, tasks, realtime and providers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from hookspecs.ai import PROVIDER_KINDS
from hookspecs.panel import PanelHost, PanelUser
from open1panel_ai.config import Settings
from open1panel_ai.providers import ProviderRegistry
from open1panel_ai.realtime import Realtime
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

    def start(self) -> None:
        for name, feature in self.features.items():
            try:
                self.services[name] = feature.start(self)
            except Exception:
                # One broken feature must not take the others down; its status says why.
                log.exception("the %s feature did not start", name)
        resumed = self.tasks.start()
        if resumed:
            log.info("resumed %d interrupted task(s)", len(resumed))

    def stop(self) -> None:
        for name in reversed(list(self.services)):
            try:
                self.features[name].stop(self.services.pop(name))
            except Exception:
                log.exception("the %s feature did not stop cleanly", name)
        self.tasks.shutdown()
        self.store.close()

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
