"""The ``/ai`` Socket.IO namespace: authenticated connections, topic subscriptions, pushes.

A client emits ``subscribe`` with ``{"topic": T}``; the server then sends it every event
published on T. Services publish through :class:`Realtime`, which knows nothing of Flask
requests and may be called from any thread.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room

NAMESPACE = "/ai"

#: Topics a client may subscribe to, as in DESIGN.md.
TOPIC = re.compile(r"^(?:tasks|gpu|mcp|task:[A-Za-z0-9_-]{1,64}|mcp:[A-Za-z0-9_-]{1,64}:logs)$")


class Realtime:
    """Publishes events to topic rooms and counts who listens to what."""

    def __init__(self, socketio) -> None:
        self._socketio = socketio
        self._lock = threading.Lock()
        self._topics_of: dict[str, set[str]] = {}
        self._listeners: Counter[str] = Counter()
        self._watchers: list[tuple[str, Callable[[str, int], None]]] = []

    def publish(self, event: str, payload: Any, topics: Iterable[str], local: bool = False) -> None:
        """Send ``event`` with ``payload`` to every client subscribed to any of ``topics``.

        With a message queue (several panel processes), an event reaches the subscribers of
        every process. ``local=True`` keeps it to this process's own subscribers: for events
        that each process produces for its own listeners (see :meth:`watch`), which would
        otherwise reach a client once per producing process.
        """
        self._socketio.emit(event, payload, namespace=NAMESPACE, to=list(topics), ignore_queue=local)

    def listeners(self, topic: str) -> int:
        """How many connected clients are subscribed to ``topic`` now."""
        with self._lock:
            return self._listeners[topic]

    def watch(self, prefix: str, callback: Callable[[str, int], None]) -> None:
        """Call ``callback(topic, listeners)`` whenever the listener count of a topic starting
        with ``prefix`` changes (a sampler can run only while somebody watches). Counts are of
        this process's clients; what such a sampler sends should be published ``local``."""
        self._watchers.append((prefix, callback))

    def subscribed(self, sid: str, topic: str) -> None:
        with self._lock:
            topics = self._topics_of.setdefault(sid, set())
            if topic in topics:
                return
            topics.add(topic)
            self._listeners[topic] += 1
            count = self._listeners[topic]
        self._notify(topic, count)

    def unsubscribed(self, sid: str, topic: str) -> None:
        with self._lock:
            topics = self._topics_of.get(sid, set())
            if topic not in topics:
                return
            topics.discard(topic)
            self._listeners[topic] -= 1
            count = self._listeners[topic]
        self._notify(topic, count)

    def disconnected(self, sid: str) -> None:
        with self._lock:
            topics = self._topics_of.pop(sid, set())
        for topic in topics:
            with self._lock:
                self._listeners[topic] -= 1
                count = self._listeners[topic]
            self._notify(topic, count)

    def _notify(self, topic: str, count: int) -> None:
        for prefix, callback in self._watchers:
            if topic.startswith(prefix):
                callback(topic, count)


class AINamespace(Namespace):
    """Socket.IO handlers of ``/ai``. One instance per host; state lives in the app."""

    def __init__(self) -> None:
        super().__init__(NAMESPACE)

    @staticmethod
    def _context():
        from open1panel_ai.web import EXTENSION_KEY

        return current_app.extensions.get(EXTENSION_KEY)

    def on_connect(self, auth: Any = None) -> None:
        context = self._context()
        if context is None or context.authenticate(request, auth) is None:
            raise ConnectionRefusedError({"code": "unauthorized",
                                          "message": "Sign in or send the admin token."})

    def on_disconnect(self, reason: Any = None) -> None:
        context = self._context()
        if context is not None:
            context.realtime.disconnected(request.sid)

    def on_subscribe(self, data: Any) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        if not isinstance(topic, str) or not TOPIC.match(topic):
            return {"ok": False, "error": {"code": "bad_topic", "message":
                    "Unknown topic; use tasks, task:<id>, gpu, mcp or mcp:<id>:logs."}}
        join_room(topic)
        self._context().realtime.subscribed(request.sid, topic)
        return {"ok": True, "topic": topic}

    def on_unsubscribe(self, data: Any) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        if isinstance(topic, str):
            leave_room(topic)
            self._context().realtime.unsubscribed(request.sid, topic)
        return {"ok": True, "topic": topic}
