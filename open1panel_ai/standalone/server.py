"""Serves the standalone host with gunicorn: one worker process, many threads, WebSockets.

Socket.IO runs in Flask-SocketIO's threading mode, whose WebSocket transport (simple-websocket)
works on gunicorn's ``gthread`` worker. There is one worker on purpose: tasks and supervision
live in one process. On SIGTERM the worker stops the plugins first (tasks are interrupted and
saved, children reaped, Socket.IO connections closed), then lets in-flight requests finish.
"""

from __future__ import annotations

import logging
import threading

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from open1panel_ai.config import Settings

log = logging.getLogger(__name__)

#: Seconds in-flight requests get to finish once the plugins have stopped.
GRACEFUL_TIMEOUT = 10


class PanelWorker(ThreadWorker):
    """A gthread worker that stops the panel's plugins as soon as it is asked to exit."""

    def _stop_host(self) -> None:
        host = getattr(self.wsgi, "extensions", {}).get("panel_host") if self.wsgi else None
        if host is not None:
            host.shutdown()

    def handle_exit(self, sig, frame) -> None:
        if self.alive:
            threading.Thread(target=self._stop_host, name="panel-shutdown").start()
        super().handle_exit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._stop_host()


class PanelServer(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        host, port = self.settings.get("host"), self.settings.get_int("port")
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        for name, value in {
            "bind": [bind],
            "workers": 1,
            "worker_class": f"{__name__}.PanelWorker",
            # Each open WebSocket holds one thread for its lifetime.
            "threads": self.settings.get_int("threads"),
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "timeout": 60,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "open1panel-ai",
        }.items():
            self.cfg.set(name, value)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn 25+: no admin socket in $HOME
            self.cfg.set("control_socket_disable", True)

    def load(self):
        from open1panel_ai.standalone.host import create_host

        return create_host(self.settings).app


def serve(settings: Settings) -> None:
    PanelServer(settings).run()
