"""Serves the standalone host with gunicorn: worker processes of many threads, WebSockets.

Socket.IO runs in Flask-SocketIO's threading mode, whose WebSocket transport (simple-websocket)
works on gunicorn's ``gthread`` worker. There is one worker unless ``OPEN1PANEL_AI_WORKERS``
asks for more; more need ``OPEN1PANEL_AI_REDIS_URL``, the message queue through which every
worker's clients get every event (see ``docs/scaling.md``). Whatever their number, tasks and
supervision run in one of them, the owner. On SIGTERM a worker stops the plugins first (tasks
are interrupted and saved, children reaped, Socket.IO connections closed), then lets in-flight
requests finish. A WebSocket that does not sign in to a Socket.IO namespace in time is closed
(:class:`SignInDeadline`).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from open1panel_ai.config import ENV_PREFIX, Settings
from open1panel_ai.relay import check_socket_path

log = logging.getLogger(__name__)

#: Seconds in-flight requests get to finish once the plugins have stopped.
GRACEFUL_TIMEOUT = 10


def websocket_limit(threads: int) -> int:
    """How many WebSockets a worker keeps open at once: three quarters of its threads, so a
    quarter always serves pages, API calls and ``/healthz``."""
    return max(1, threads - threads // 4)


class WebSocketLimit:
    """WSGI middleware that keeps request threads free for HTTP.

    Each open WebSocket holds a ``gthread`` thread for its whole life, and a WebSocket is open
    before Socket.IO asks for credentials. Without a limit, enough sockets (anyone's) would take
    every thread and leave the whole panel waiting. Past ``limit`` open WebSockets a new one is
    refused with a 503, which Socket.IO clients retry later.
    """

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            return self.app(environ, start_response)
        with self._lock:
            refused = self._open >= self.limit
            if not refused:
                self._open += 1
        if refused:
            body = json.dumps({"error": {
                "code": "too_many_websockets", "details": {"limit": self.limit},
                "message": f"This panel already holds {self.limit} open WebSockets; try again later, "
                           "or raise OPEN1PANEL_AI_THREADS."}}).encode()
            start_response("503 Service Unavailable", [
                ("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Retry-After", "5")])
            return [body]
        try:
            # In threading mode the WebSocket is served inside this call, until it closes.
            return self.app(environ, start_response)
        finally:
            with self._lock:
                self._open -= 1


class SignInDeadline:
    """Closes Engine.IO sessions that have not joined a Socket.IO namespace in time.

    Credentials are checked when a client connects to a namespace (``/ai``), not when it opens
    its Engine.IO session, yet an open WebSocket already holds a thread and a place under
    :class:`WebSocketLimit`. A client that opens sockets and never signs in would keep those
    places, and live updates would stop for everyone. A background task looks at the sessions
    four times per deadline and closes those that are past it with no namespace, so such a
    session lives from ``seconds`` to about 1.25 × ``seconds``. Clients that sign in (the
    pages, Socket.IO clients) connect to their namespace at once and are never touched; a
    refused or ended namespace connection leaves the session to be closed like one that never
    tried.
    """

    def __init__(self, server, seconds: float) -> None:
        self.server = server  # a python-socketio Server
        self.seconds = seconds
        self._first_seen: dict[str, float] = {}

    def start(self) -> None:
        self.server.start_background_task(self._run)

    def _run(self) -> None:
        while True:
            self.server.sleep(self.seconds / 4)
            try:
                self.sweep(time.monotonic())
            except Exception:  # a sweep must never end the task that guards every later one
                log.exception("sign-in deadline sweep failed")

    def sweep(self, now: float) -> None:
        """Close every session first seen ``seconds`` or more before ``now`` that has no namespace."""
        engine = self.server.eio
        self._first_seen = {sid: self._first_seen.get(sid, now) for sid in engine.sockets.copy()}
        for sid, first_seen in self._first_seen.items():
            if now - first_seen >= self.seconds and not self._in_a_namespace(sid):
                log.info("closing Socket.IO session %s: no sign-in within %s s", sid, self.seconds)
                engine.disconnect(sid)

    def _in_a_namespace(self, eio_sid: str) -> bool:
        """Whether the session has joined a namespace, or is being let into one now."""
        manager = self.server.manager
        return any(manager.sid_from_eio_sid(eio_sid, namespace) is not None
                   for namespace in list(manager.get_namespaces()))


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
            "workers": self.settings.get_int("workers"),
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

        host = create_host(self.settings)
        host.app.wsgi_app = WebSocketLimit(host.app.wsgi_app, websocket_limit(self.settings.get_int("threads")))
        SignInDeadline(host.socketio.server, self.settings.get_int("sign_in_seconds")).start()
        return host.app


def check_settings(settings: Settings) -> None:
    """Refuse settings the server cannot start with, before anything starts: a ValueError that
    says what to change. Workers, threads and the sign-in deadline's seconds must be at least
    one, more than one worker needs a Redis URL (the workers share events through it), and with
    Redis the owner's socket path must fit a unix socket address."""
    settings.get_int("port")
    for name in ("workers", "threads", "sign_in_seconds"):
        if (count := settings.get_int(name)) < 1:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be 1 or more, not {count}.")
    workers = settings.get_int("workers")
    if workers > 1 and not settings.get("redis_url"):
        raise ValueError(
            f"OPEN1PANEL_AI_WORKERS={workers} needs OPEN1PANEL_AI_REDIS_URL (for example "
            "redis://127.0.0.1:6379/0): without a message queue a worker's clients miss the "
            "events of the others. See docs/scaling.md.")
    if settings.get("redis_url"):
        check_socket_path(settings.data_dir)


def serve(settings: Settings) -> None:
    """Run the panel until it is stopped, with settings :func:`check_settings` accepted and the
    session secret made (:func:`auth.load_or_create_session_secret`), before any worker starts,
    so that every worker reads the same secret."""
    PanelServer(settings).run()
