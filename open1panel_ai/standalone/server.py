"""Serves the standalone host with gunicorn: worker processes of many threads, WebSockets.

Socket.IO runs in Flask-SocketIO's threading mode, whose WebSocket transport (simple-websocket)
works on gunicorn's ``gthread`` worker. There is one worker unless ``OPEN1PANEL_AI_WORKERS``
asks for more; more need ``OPEN1PANEL_AI_REDIS_URL``, the message queue through which every
worker's clients get every event (see ``docs/scaling.md``). Whatever their number, tasks and
supervision run in one of them, the owner. On SIGTERM a worker stops the plugins first (tasks
are interrupted and saved, children reaped, Socket.IO connections closed), then lets in-flight
requests finish. WebSockets, long-polls and sessions that have not signed in are bounded, and
a session that does not sign in to a Socket.IO namespace in time is closed (:mod:`.sockets`).
A worker's allocator (glibc's) uses two arenas for all its threads, so that memory one thread
frees is found again by the next request of any other, and no thread keeps a cache of freed
blocks of its own (see ``docs/performance.md``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from types import FrameType

import flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from open1panel_ai.host import ENV_PREFIX, Settings, check_socket_path
from open1panel_ai.standalone import auth, sockets
from open1panel_ai.standalone.sockets import SignedIn, SignInDeadline, SocketGate

log = logging.getLogger(__name__)

#: Seconds in-flight requests get to finish once the plugins have stopped.
GRACEFUL_TIMEOUT = 10
#: glibc malloc arenas a worker uses at most (its default is eight per core).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
_TCACHE_TUNABLE = "glibc.malloc.tcache_count"
#: What the standalone panel sets in ``GLIBC_TUNABLES`` (:func:`run_without_thread_caches`).
ALLOCATOR_TUNABLES = f"{_TCACHE_TUNABLE}=0"


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (whose allocator the functions below tune), else None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def run_without_thread_caches() -> None:
    """Run this process again (same pid, same arguments) with glibc's per-thread caches of
    freed blocks turned off (:data:`ALLOCATOR_TUNABLES`), unless they already are, or the C
    library is not glibc. Called by ``open1panel-ai serve`` once its settings, token and
    secret are in place, before gunicorn starts: glibc reads its tunables only when a process
    starts, and the workers inherit them.

    Each thread keeps up to seven freed blocks of every size up to 1 KiB for itself, and
    counts them as in use. A worker has hundreds of long-lived threads (one per WebSocket, a
    pool for requests), so under load its memory crept up for as long as threads that had
    not yet filled their caches took a turn: +2 to +5 MiB a minute through a ten-minute soak,
    flat without the caches. Python allocates its small objects itself, so malloc's
    per-thread speed-up is worth little here."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if _glibc() is None or _TCACHE_TUNABLE in tunables:
        return
    os.environ["GLIBC_TUNABLES"] = ":".join(filter(None, [tunables, ALLOCATOR_TUNABLES]))
    os.execv(sys.executable, sys.orig_argv)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Have glibc's allocator use at most ``arenas`` arenas in this process; False where the C
    library is not glibc. Called in a worker before its threads start.

    glibc gives a new thread an arena of its own while fewer than eight per core exist, and
    an arena keeps the memory freed into it for its own later requests. A worker's hundreds
    of threads (one per WebSocket, a pool for requests) spread their short-lived allocations
    over all of those arenas, and each arena's free memory stays resident, scattered among
    blocks still in use, so the process grew under steady load while the memory in use did
    not. With two arenas, freed memory is found again by the next request of any thread."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, arenas))


class PanelWorker(ThreadWorker):
    """A gthread worker that stops the panel's plugins as soon as it is asked to exit, bounds
    its allocator's arenas (:func:`limit_malloc_arenas`) before it starts a thread, and does
    not log a WebSocket closed by both sides at once as an error
    (:func:`.sockets.quiet_closing_race`)."""

    def init_process(self) -> None:
        limit_malloc_arenas()
        threading.excepthook = sockets.quiet_closing_race(threading.excepthook)
        super().init_process()

    def _stop_host(self) -> None:
        host = getattr(self.wsgi, "extensions", {}).get("panel_host") if self.wsgi else None
        if host is not None:
            host.shutdown()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
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
        host, port = self.settings.values["host"], self.settings.get_int("port")
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

    def load(self) -> flask.Flask:
        from open1panel_ai.standalone.host import create_host

        host = create_host(self.settings)
        server = host.socketio.server
        # Flask's documented way to add WSGI middleware; its stubs declare wsgi_app a method.
        host.app.wsgi_app = SocketGate(  # type: ignore[method-assign]
            host.app.wsgi_app, self.settings.get_int("threads"), SignedIn(server), host.has_credentials
        )
        SignInDeadline(server, self.settings.get_int("sign_in_seconds"), host.auth.ended_sockets).start()
        return host.app


def check_settings(settings: Settings) -> None:
    """Refuse settings the server cannot start with, before anything starts: a ValueError that
    says what to change. Workers, threads and the sign-in deadline's seconds must be at least
    one, the trusted proxies a count, the scrape token long enough and not the admin token,
    more than one worker needs a Redis URL (the workers share events through it), and with
    Redis the owner's socket path must fit a unix socket address."""
    settings.get_int("port")
    auth.trusted_proxies(settings)
    for name in ("workers", "threads", "sign_in_seconds"):
        if (count := settings.get_int(name)) < 1:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be 1 or more, not {count}.")
    workers = settings.get_int("workers")
    if workers > 1 and not settings.get("redis_url"):
        raise ValueError(
            f"OPEN1PANEL_AI_WORKERS={workers} needs OPEN1PANEL_AI_REDIS_URL (for example "
            "redis://127.0.0.1:6379/0): without a message queue a worker's clients miss the "
            "events of the others. See docs/scaling.md."
        )
    if settings.get("redis_url"):
        check_socket_path(settings.data_dir)
    auth.check_metrics_token(settings.data_dir)


def serve(settings: Settings) -> None:
    """Run the panel until it is stopped, with settings :func:`check_settings` accepted and the
    session secret made (:func:`auth.load_or_create_session_secret`), before any worker starts,
    so that every worker reads the same secret."""
    PanelServer(settings).run()
