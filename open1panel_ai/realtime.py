"""The ``/ai`` Socket.IO namespace: authenticated connections, topic subscriptions, pushes.

A client emits ``subscribe`` with ``{"topic": T}``; the server then sends it every event
published on T. Services publish through :class:`Realtime`, which knows nothing of Flask
requests and may be called from any thread.

With several panel processes the events travel through Redis (see ``docs/scaling.md``), which
anyone who can reach it may write to. So every message a panel process publishes there is
signed (:class:`SignedRedisManager`), and what does not verify is dropped before it can reach a
page or touch a room.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import socketio
from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, join_room, leave_room

from open1panel_ai import private
from open1panel_ai.features import Event, Topic

if TYPE_CHECKING:  # pragma: no cover - typing only
    from open1panel_ai.context import AIContext

log = logging.getLogger(__name__)

NAMESPACE = "/ai"
#: The data dir's file whose secret the message queue's signing key is derived from.
QUEUE_SECRET_FILE = "message-queue-secret"
#: Seconds a signed message stays acceptable; an older one (a replay) is dropped.
MESSAGE_MAX_AGE = 60
#: Seconds between two log lines about dropped messages; the drops between are counted.
DROP_LOG_INTERVAL = 60
#: Seconds to wait for the secret file that another process is creating.
SECRET_WAIT = 2.0

#: The topics of the core, beside those each feature declares (its ``Feature.topics``).
CORE_TOPICS = (
    Topic("tasks", "tasks", (Event("task", "a task, on every change of any task"),)),
    Topic(
        r"task:[A-Za-z0-9_-]{1,64}",
        "task:<id>",
        (Event("task", "that task; progress is coalesced to a few events per second, the final state always sent"),),
    ),
)


class Realtime:
    """Publishes events to topic rooms and counts who listens to what."""

    def __init__(self, socketio: Any, topics: Iterable[Topic] = ()) -> None:
        self._socketio = socketio
        #: The topics a client may subscribe to: the core's, then the features'.
        self.topics = CORE_TOPICS + tuple(topics)
        self._topic = re.compile("^(?:" + "|".join(topic.pattern for topic in self.topics) + ")$")
        self._lock = threading.Lock()
        self._topics_of: dict[str, set[str]] = {}
        self._listeners: Counter[str] = Counter()
        self._watchers: list[tuple[str, Callable[[str, int], None]]] = []

    def accepts(self, topic: str) -> bool:
        """Whether ``topic`` is one a client may subscribe to."""
        return bool(self._topic.match(topic))

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


def _sid() -> str:
    """The Socket.IO session id of the client whose event is handled: Flask-SocketIO sets it on
    the request, which Flask's type does not declare."""
    sid: str = request.sid  # type: ignore[attr-defined]
    return sid


class AINamespace(Namespace):
    """Socket.IO handlers of ``/ai``. One instance per host; state lives in the app."""

    def __init__(self) -> None:
        super().__init__(NAMESPACE)

    @staticmethod
    def _context() -> AIContext | None:
        from open1panel_ai.web import EXTENSION_KEY

        return current_app.extensions.get(EXTENSION_KEY)

    def on_connect(self, auth: Any = None) -> None:
        context = self._context()
        if context is None or context.authenticate(request, auth) is None:
            raise ConnectionRefusedError({"code": "unauthorized", "message": "Sign in or send the admin token."})

    def on_disconnect(self, reason: Any = None) -> None:
        context = self._context()
        if context is not None:
            context.realtime.disconnected(_sid())

    def on_subscribe(self, data: Any) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        context = self._context()
        assert context is not None, "a client gets in through on_connect, which needs the context"
        realtime = context.realtime
        if not isinstance(topic, str) or not realtime.accepts(topic):
            shown = [t.shown for t in realtime.topics]
            return {
                "ok": False,
                "error": {
                    "code": "bad_topic",
                    "message": f"Unknown topic; use {', '.join(shown[:-1])} or {shown[-1]}.",
                },
            }
        join_room(topic)
        realtime.subscribed(_sid(), topic)
        return {"ok": True, "topic": topic}

    def on_unsubscribe(self, data: Any) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        if isinstance(topic, str):
            leave_room(topic)
            context = self._context()
            assert context is not None, "a client gets in through on_connect, which needs the context"
            context.realtime.unsubscribed(_sid(), topic)
        return {"ok": True, "topic": topic}


# -- the signed message queue ---------------------------------------------------------------


class SignedRedisManager(socketio.RedisManager):
    """python-socketio's Redis message queue, with every message signed (HMAC-SHA256).

    Each message this process publishes (an event, a room change, a disconnect) is wrapped as
    ``{"signed": <the message as JSON>, "at": <ms>, "nonce": ..., "mac": ...}``. A message
    received that is not so wrapped, whose MAC does not verify under this data dir's key, that
    is older than :data:`MESSAGE_MAX_AGE` or that was seen already (a replay) is dropped and
    counted in the log, so nobody without the key can make a page show an event, close a room
    or disconnect a client. Accepts ``redis://``, ``rediss://`` and ``unix://`` URLs, with a
    user and password as Redis ACLs want them.
    """

    name = "signed-redis"

    def __init__(self, url: str, channel: str, key: bytes, **kwargs: Any) -> None:
        super().__init__(url, channel=channel, **kwargs)
        self._key = key
        self._seen: dict[str, float] = {}  # MAC -> when it stops being acceptable (ms)
        self._dropped = 0
        self._last_drop_log: float | None = None

    def _mac(self, at: int, nonce: str, body: str) -> str:
        signed = f"{at}\n{nonce}\n".encode() + body.encode()
        return hmac.new(self._key, signed, hashlib.sha256).hexdigest()

    def _publish(self, data: Any) -> Any:
        body = self.json.dumps(data)
        at = int(time.time() * 1000)
        nonce = secrets.token_hex(12)
        return super()._publish({"signed": body, "at": at, "nonce": nonce, "mac": self._mac(at, nonce, body)})

    def _listen(self) -> Iterator[dict]:
        for raw in super()._listen():
            message = self._verified(raw)
            if message is not None:
                yield message

    def _verified(self, raw: Any) -> dict | None:
        """The message inside a signed wrapper, or None (and the drop counted) when it is not
        one this data dir's panel processes published just now."""
        try:
            wrapper = json.loads(raw)
            body, at, nonce, mac = wrapper["signed"], wrapper["at"], wrapper["nonce"], wrapper["mac"]
        except (ValueError, TypeError, KeyError):
            self._drop("not signed")
            return None
        if not (isinstance(body, str) and type(at) is int and isinstance(nonce, str) and isinstance(mac, str)):
            self._drop("not signed")
            return None
        if not hmac.compare_digest(self._mac(at, nonce, body), mac):
            self._drop("a signature that does not verify")
            return None
        now = time.time() * 1000
        if abs(now - at) > MESSAGE_MAX_AGE * 1000:
            self._drop("signed too long ago (a replay)")
            return None
        for seen, until in list(self._seen.items()):
            if until >= now:
                break  # in order of arrival, so the rest is newer
            del self._seen[seen]
        if mac in self._seen:
            self._drop("signed, but seen already (a replay)")
            return None
        self._seen[mac] = at + MESSAGE_MAX_AGE * 1000
        try:
            message = self.json.loads(body)
        except ValueError:
            message = None
        if isinstance(message, dict):
            return message
        self._drop("signed, but not a message")
        return None

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        now = time.monotonic()
        if self._last_drop_log is None or now - self._last_drop_log >= DROP_LOG_INTERVAL:
            log.warning(
                "dropped %d message(s) on the Redis channel %s that no panel process of "
                "this data dir sent (the last: %s): something else writes to this Redis; "
                "give it a password or an ACL user (see docs/scaling.md)",
                self._dropped,
                self.channel,
                reason,
            )
            self._dropped = 0
            self._last_drop_log = now
        return None


def queue_key(data_dir: Path, channel: str) -> bytes:
    """The key that signs the messages of ``channel``: derived (HMAC-SHA256) from the data dir's
    message-queue secret, which is made (mode 0600) on first use. Every panel process of a
    data dir reads the same file, so they share the key; nobody else can read it."""
    secret = _read_or_create_secret(data_dir / QUEUE_SECRET_FILE)
    return hmac.new(secret, b"open1panel-ai message queue\0" + channel.encode(), hashlib.sha256).digest()


def message_queue(url: str, channel: str, data_dir: Path) -> SignedRedisManager:
    """The signed message queue for a host's ``SocketIO(client_manager=...)``.

    Flask-SocketIO's own ``message_queue=`` takes ``redis://`` URLs to Redis but hands any
    other (``unix://`` included) to kombu; a host that builds the queue here gets Redis for
    ``redis://``, ``rediss://`` and ``unix://``, and signed messages from the first one on."""
    _warn_if_open(url)
    return SignedRedisManager(url, channel, queue_key(data_dir, channel))


def sign_message_queue(socketio_: Any, data_dir: Path) -> None:
    """Make the host's Socket.IO message queue a signed one, before any client connects.

    A host that built its queue with :func:`message_queue` has one already. One that passed a
    Redis URL to Flask-SocketIO has a plain ``RedisManager``: it is replaced by a signed one on
    the same URL and channel. Other queues (kombu, Kafka, ZeroMQ) cannot be signed here, and a
    queue already listening cannot be replaced; both are logged as errors."""
    server = socketio_.server
    manager = server.manager
    if isinstance(manager, SignedRedisManager) or not isinstance(manager, socketio.PubSubManager):
        return
    if type(manager) is not socketio.RedisManager or server.manager_initialized:
        log.error(
            "the Socket.IO message queue (%s) cannot be signed, so anyone who can write to it "
            "can send events to the panel's pages; give the panel a redis://, rediss:// or "
            "unix:// URL before it serves (see docs/scaling.md)",
            manager.name,
        )
        return
    _warn_if_open(manager.redis_url)
    signed = SignedRedisManager(
        manager.redis_url,
        manager.channel,
        queue_key(data_dir, manager.channel),
        redis_options=manager.redis_options,
        logger=manager.logger,
    )
    if manager.redis is not None:
        manager.redis.close()
    signed.set_server(server)
    server.manager = signed


def _warn_if_open(url: str) -> None:
    """Log a warning when the Redis at ``url`` takes no password: every local user could then
    read the panel's events (though not forge any, as they are signed)."""
    parts = urlsplit(url)
    if parts.password or parse_qs(parts.query).get("password"):
        return
    if parts.scheme == "unix":
        try:
            mode = os.stat(parts.path).st_mode
        except OSError:
            return  # not there yet; connecting will say so
        if stat.S_IMODE(mode) & 0o077 == 0:
            return  # only its owner may connect
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
    log.warning(
        "the Redis at %s takes no password: every local user who can reach it can read "
        "the panel's live events. Give it a password or an ACL user, or use a unix "
        "socket of mode 0600 (see docs/scaling.md)",
        where,
    )


def _read_or_create_secret(path: Path) -> bytes:
    """The secret in ``path``, which is made whole (written beside it, then linked into place,
    mode 0600) if it is missing, so processes starting together agree on one. A file that is
    a link, is not this user's, or that others may read is refused with a ValueError."""
    deadline = time.monotonic() + SECRET_WAIT
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            private.create_whole(path, secrets.token_urlsafe(32))
            continue  # read what is there now: this process's, or the one that won the race
        except OSError as exc:
            raise ValueError(
                f"Cannot read {path} ({exc.strerror}); it must be a file of this "
                f"user, mode 0600. Delete it to have a new one made."
            ) from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            secret = handle.read().strip()
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise ValueError(
                f"{path} must be a file of this user that only it may read (mode "
                f"0600); delete it to have a new one made."
            )
        if secret:
            return secret
        if time.monotonic() > deadline:
            raise ValueError(f"{path} is empty. Delete it to have a new one made.")
        time.sleep(0.05)
